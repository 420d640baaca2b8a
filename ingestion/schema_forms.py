"""The schema as a form: one row per field, for the console's "New dataset from a file" and "Edit schema".

The form only gathers a schema file; ``schema_parse`` judges it, as for a
file imported or sent to the API, and its messages are put back on the row
they name (``field 'price': …``) or above the fields.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from .fieldtypes import FIELD_TYPES
from .schema import MAX_FIELDS, TRANSFORMS, SchemaSpec, schema_parse

# What a row edits itself; every other key of a field is in its "constraints" box (JSON).
ROW_KEYS = ("name", "source", "type", "required", "transforms", "indexed")
_FIELD_MESSAGE_RE = re.compile(r"^field '([^']*)'(?: [^:]*)?: ")
_INDEX_MESSAGE_RE = re.compile(r"^fields\[(\d+)\][^:]*: ")


class FieldRowForm(forms.Form):
    """One field of the schema."""

    name = forms.CharField(max_length=63, widget=forms.TextInput(attrs={"size": 12}))
    source = forms.CharField(
        label="Column in the file",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"size": 12}),
        help_text="Empty: the column named like the field.",
    )
    # The select's first choice as the initial value: an extra row left blank stays "unchanged".
    type = forms.ChoiceField(choices=[(t.name, t.label) for t in FIELD_TYPES.values()], initial=next(iter(FIELD_TYPES)))
    required = forms.BooleanField(required=False)
    key = forms.BooleanField(required=False, help_text="Part of the dataset's key (must be required).")
    transforms = forms.MultipleChoiceField(
        choices=[(t, t) for t in TRANSFORMS], required=False, widget=forms.CheckboxSelectMultiple
    )
    constraints = forms.CharField(
        label="Constraints and options",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 26, "class": "df-constraints"}),
        help_text='A JSON object, e.g. {"min": 0, "pattern": "^[A-Z]+$", "null_values": ["N/A"]} (docs/schema.md).',
    )
    indexed = forms.BooleanField(required=False, help_text="Index record filters on this field.")

    def clean_constraints(self) -> dict[str, Any]:
        text = (self.cleaned_data.get("constraints") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('Enter a JSON object, e.g. {"min": 0}.')
        taken = sorted(set(value) & {*ROW_KEYS, "key"})
        if taken:
            raise forms.ValidationError(f"Set {', '.join(taken)} with the row's own inputs, not here.")
        return value

    def field_definition(self) -> dict[str, Any]:
        """The field as a schema file writes it."""
        data = self.cleaned_data
        out: dict[str, Any] = {"name": data["name"].strip(), "type": data["type"]}
        if data.get("required"):
            out["required"] = True
        if data.get("source", "").strip():
            out["source"] = data["source"].strip()
        if data.get("transforms"):
            out["transforms"] = list(data["transforms"])
        out.update(data.get("constraints") or {})
        if data.get("indexed"):
            out["indexed"] = True
        return out


class BaseFieldRowFormSet(forms.BaseFormSet):
    def kept_forms(self) -> list[FieldRowForm]:
        """The rows that make the schema: neither deleted nor a blank extra row."""
        kept = []
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue  # an extra row left blank
            if form.cleaned_data.get("DELETE"):
                continue
            kept.append(form)
        return kept


FieldRowFormSet = cast(
    type[BaseFieldRowFormSet],
    forms.formset_factory(
        FieldRowForm, formset=BaseFieldRowFormSet, extra=1, can_delete=True, max_num=MAX_FIELDS, validate_max=True
    ),
)


class DatasetIdentityForm(forms.Form):
    """The dataset's slug (new datasets only) and name."""

    slug = forms.SlugField(max_length=64, help_text="Lowercase letters, digits, hyphens or underscores; cannot change.")
    name = forms.CharField(max_length=200, required=False, help_text="Empty: the slug.")

    def __init__(self, *args: Any, slug_fixed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if slug_fixed:
            self.fields["slug"].disabled = True


def field_rows_initial(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the form for a schema file (its ``fields`` and ``key``)."""
    key = definition.get("key") or []
    key = [key] if isinstance(key, str) else key
    rows = []
    for raw in definition.get("fields") or []:
        rest = {k: v for k, v in raw.items() if k not in ROW_KEYS}
        rows.append(
            {
                "name": raw.get("name", ""),
                "source": raw.get("source", ""),
                "type": raw.get("type", "string"),
                "required": bool(raw.get("required")),
                "key": raw.get("name") in key,
                "transforms": list(raw.get("transforms") or []),
                "constraints": json.dumps(rest, ensure_ascii=False) if rest else "",
                "indexed": bool(raw.get("indexed")),
            }
        )
    return rows


def schema_from_forms(
    *, identity: DatasetIdentityForm, rows: BaseFieldRowFormSet, base: dict[str, Any]
) -> SchemaSpec | None:
    """The schema the forms describe, checked by ``schema_parse``; None when a form has errors.

    ``base`` holds the dataset-level keys the form does not show (description,
    delimiter, encoding, threshold…), kept as they are. The parser's messages
    go back on the row they name, the others above the fields.
    """
    if not (identity.is_valid() and rows.is_valid()):
        return None
    kept = rows.kept_forms()
    definitions = [form.field_definition() for form in kept]
    document = {
        **{k: v for k, v in base.items() if k not in ("slug", "name", "key", "fields")},
        "slug": identity.cleaned_data["slug"],
        "name": identity.cleaned_data.get("name") or identity.cleaned_data["slug"],
        "key": [d["name"] for d, form in zip(definitions, kept, strict=True) if form.cleaned_data.get("key")],
        "fields": definitions,
    }
    if not definitions:
        rows.non_form_errors().append("Keep at least one field.")
        return None
    if not document["key"]:
        rows.non_form_errors().append("Tick 'key' on at least one field: records are stored under their key.")
        return None
    try:
        return schema_parse(document)
    except ValidationError as exc:
        schema_errors_place(exc, identity=identity, rows=kept, formset=rows)
        return None


def schema_errors_place(
    exc: ValidationError, *, identity: DatasetIdentityForm, rows: list[FieldRowForm], formset: BaseFieldRowFormSet
) -> None:
    """Put each of ``schema_parse``'s messages on the row (or the identity input) it is about."""
    by_name = {form.cleaned_data["name"].strip(): form for form in rows}
    for message in exc.messages:
        named = _FIELD_MESSAGE_RE.match(message)
        indexed = _INDEX_MESSAGE_RE.match(message)
        if named and named.group(1) in by_name:
            by_name[named.group(1)].add_error(None, message[named.end() :])
        elif indexed and int(indexed.group(1)) < len(rows):
            rows[int(indexed.group(1))].add_error(None, message[indexed.end() :])
        elif message.startswith("schema: 'slug'"):
            identity.add_error("slug", message.removeprefix("schema: "))
        elif message.startswith("schema: 'name'"):
            identity.add_error("name", message.removeprefix("schema: "))
        else:
            formset.non_form_errors().append(message.removeprefix("schema: "))
