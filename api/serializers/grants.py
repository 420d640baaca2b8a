"""Grants: a role on one dataset for a user or a group."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from rest_framework import serializers

from ingestion.models import DatasetGrant, DatasetRole


class GrantSerializer(serializers.ModelSerializer):
    user: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    group: serializers.SlugRelatedField[Group] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = DatasetGrant
        fields = ["id", "user", "group", "role", "created_at", "url"]
        read_only_fields = fields

    def get_url(self, grant: DatasetGrant) -> str:
        path = reverse("api:grant-detail", kwargs={"slug": self.context["dataset"].slug, "pk": grant.pk})
        return self.context["request"].build_absolute_uri(path)


class GrantCreateSerializer(serializers.Serializer):
    """Who gets the role: a username or a group name (exactly one). Granting again replaces the role."""

    user = serializers.CharField(required=False, max_length=150, help_text="A username.")
    group = serializers.CharField(required=False, max_length=150, help_text="A group name.")
    role = serializers.ChoiceField(choices=DatasetRole.choices)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("user" in attrs) == ("group" in attrs):
            raise serializers.ValidationError("Give exactly one of 'user' or 'group'.")
        if "user" in attrs:
            user = get_user_model().objects.filter(username=attrs["user"]).first()
            if user is None:
                raise serializers.ValidationError({"user": [f"no user {attrs['user']!r}"]})
            return {"user": user, "role": attrs["role"]}
        group = Group.objects.filter(name=attrs["group"]).first()
        if group is None:
            raise serializers.ValidationError({"group": [f"no group {attrs['group']!r}"]})
        return {"group": group, "role": attrs["role"]}


class GrantRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=DatasetRole.choices)
