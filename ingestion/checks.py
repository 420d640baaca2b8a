"""System checks for the ingestion app."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register

from .fieldtypes import FIELD_TYPES
from .models import FieldType


def field_type_mismatches() -> list[str]:
    """How ``FieldType`` (the model's choices, frozen into migrations) differs from the field-type registry."""
    choices = dict(FieldType.choices)
    registered = {name: t.label for name, t in FIELD_TYPES.items()}
    problems = [f"{name!r} is registered but not a FieldType choice" for name in registered if name not in choices]
    problems += [f"FieldType {name!r} has no registered field type" for name in choices if name not in registered]
    problems += [
        f"FieldType {name!r} is labelled {choices[name]!r}, the registry says {label!r}"
        for name, label in registered.items()
        if name in choices and choices[name] != label
    ]
    if not problems and list(choices) != list(registered):
        problems.append("FieldType lists the types in another order than the registry")
    return problems


@register()
def field_types_match_choices(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """``FieldType`` stays a plain ``TextChoices`` (migrations name it) but must say what the registry says."""
    return [
        Error(
            problem,
            hint="Add the type's module to ingestion/fieldtypes/__init__.py and its member to FieldType "
            "(then run makemigrations), or remove both.",
            id="ingestion.E001",
        )
        for problem in field_type_mismatches()
    ]
