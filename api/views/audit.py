"""``/api/v1/audit/``: who did what on the datasets you manage."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.exceptions import NotFound

from ingestion.models import AuditAction, AuditEvent, DatasetRole
from ingestion.selectors import datasets_visible_to

from ..pagination import CursorPage
from ..serializers.audit import AuditEventSerializer
from .base import StrictQueryMixin


class AuditFilter(django_filters.FilterSet):
    """``?dataset=slug`` (404 unless you manage it) and ``?action=``."""

    dataset = django_filters.CharFilter(method="filter_dataset", help_text="A dataset slug.")
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)

    class Meta:
        model = AuditEvent
        fields = ["dataset", "action"]

    def filter_dataset(self, queryset: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        managed = datasets_visible_to(self.request.user, DatasetRole.MANAGER)
        dataset = managed.filter(slug=value).first() if len(value) <= 64 else None
        if dataset is None:
            raise NotFound(f"No dataset {value!r}.")
        return queryset.filter(dataset=dataset)


@extend_schema(tags=["audit"], summary="Audit events of the datasets you manage, newest first (manager)")
class AuditEventViewSet(StrictQueryMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Superusers also see events that belong to no dataset (logins, deleted datasets)."""

    serializer_class = AuditEventSerializer
    pagination_class = CursorPage
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditFilter
    query_params_allowed = {"list": ("cursor", "page_size", "dataset", "action")}

    def get_queryset(self) -> Any:
        user = self.request.user
        if user.is_superuser:
            return AuditEvent.objects.all()
        return AuditEvent.objects.filter(dataset__in=datasets_visible_to(user, DatasetRole.MANAGER))
