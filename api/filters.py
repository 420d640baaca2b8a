"""Query filters for lists that are plain model columns (django-filter)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from rest_framework.exceptions import NotFound

from ingestion.selectors import datasets_visible_to
from processing.models import Run, RunStatus, RunTrigger


class RunFilter(django_filters.FilterSet):
    """``?dataset=slug`` (404 when you have no grant on it), ``?status=``, ``?trigger=``."""

    dataset = django_filters.CharFilter(method="filter_dataset", help_text="A dataset slug.")
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    trigger = django_filters.ChoiceFilter(choices=RunTrigger.choices)

    class Meta:
        model = Run
        fields = ["dataset", "status", "trigger"]

    def filter_dataset(self, queryset: QuerySet[Run], name: str, value: str) -> QuerySet[Run]:
        dataset = datasets_visible_to(self.request.user).filter(slug=value).first() if len(value) <= 64 else None
        if dataset is None:
            # The 404 rule holds in filters too: an invisible dataset is no dataset.
            raise NotFound(f"No dataset {value!r}.")
        return queryset.filter(dataset=dataset)
