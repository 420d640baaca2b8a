"""An OpenAPI 3 document for one dataset's records endpoints.

The project schema (``/api/schema/``) cannot know each dataset's fields;
this one does: the typed shape of ``data``, every filter parameter the
records list accepts for this schema version, and the ordering values.
Built from the field-type registry (``ingestion.fieldtypes``) the filters
use too (``processing.record_queries``).
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from ingestion.fieldtypes import field_type
from ingestion.models import Dataset
from ingestion.schema import FieldSpec, SchemaSpec
from processing.record_queries import MAX_IN_VALUES, record_orderings

from .pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from .schema import ERROR_DESCRIPTIONS, ERROR_SCHEMA


def _value_schema(field: FieldSpec) -> dict[str, Any]:
    """The JSON type of a stored value (docs/schema.md, "Types and how they are stored")."""
    schema: dict[str, Any] = dict(field_type(field.type).openapi)
    if field.description:
        schema["description"] = field.description
    schema["nullable"] = True
    return schema


def _query_schema(field: FieldSpec, op: str) -> dict[str, Any]:
    """The type of a filter's query value."""
    if op == "in":
        return {"type": "string", "description": f"comma-separated, at most {MAX_IN_VALUES} values"}
    if op == "contains":
        return {"type": "string"}
    return dict(field_type(field.type).openapi_filter)


_OP_TEXT = {
    "eq": "equal to",
    "gte": "at least",
    "lte": "at most",
    "in": "one of",
    "contains": "containing (case-sensitive)",
}


def _filter_parameters(spec: SchemaSpec) -> list[dict[str, Any]]:
    params = []
    for field in spec.fields:
        for op in field_type(field.type).operators:
            params.append(
                {
                    "name": field.name if op == "eq" else f"{field.name}__{op}",
                    "in": "query",
                    "required": False,
                    "description": f"{field.name} ({field.type}) {_OP_TEXT[op]} the value.",
                    "schema": _query_schema(field, op),
                }
            )
    return params


def _errors() -> dict[str, Any]:
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {code: {"description": ERROR_DESCRIPTIONS[code], "content": ref} for code in ("400", "401", "404", "429")}


def dataset_openapi(dataset: Dataset, spec: SchemaSpec, schema_version: int, request: Any) -> dict[str, Any]:
    """The OpenAPI document of ``dataset``'s records endpoints for its current schema."""
    list_path = reverse("api:record-list", kwargs={"slug": dataset.slug})
    detail_path = list_path + "{key}/"
    data_schema = {
        "type": "object",
        "properties": {f.name: _value_schema(f) for f in spec.fields},
        "additionalProperties": True,
        "description": "Values written under an earlier schema version keep the shape of that version.",
    }
    record = {
        "type": "object",
        "properties": {
            "key": {"type": "string", "description": f"The natural key ({', '.join(spec.key)})."},
            "data": {"$ref": "#/components/schemas/Data"},
            "schema_version": {"type": "integer"},
            "first_run": {"type": "integer"},
            "last_run": {"type": "integer"},
            "source_line": {"type": "integer"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "url": {"type": "string", "format": "uri"},
        },
        "required": ["key", "data"],
    }
    page = {
        "type": "object",
        "properties": {
            "next": {"type": "string", "format": "uri", "nullable": True},
            "previous": {"type": "string", "format": "uri", "nullable": True},
            "results": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
        },
        "required": ["next", "previous", "results"],
    }
    common = [
        {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
        {
            "name": "page_size",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
        },
        {
            "name": "ordering",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": record_orderings(spec), "default": "key"},
        },
        {"name": "run", "in": "query", "required": False, "schema": {"type": "integer"}},
    ]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{dataset.name}: records",
            "version": f"schema v{schema_version}",
            "description": (
                f"Records of dataset `{dataset.slug}`. Filters are typed by the schema: numbers compare "
                "numerically, dates and date-times in time order (a date-time without an offset is read in "
                "the field's time zone), text exactly. A value that does not parse is a 400 naming the "
                "parameter."
            ),
        },
        "servers": [{"url": request.build_absolute_uri("/").rstrip("/")}],
        "security": [{"jwtAuth": []}],
        "paths": {
            list_path: {
                "get": {
                    "operationId": f"{dataset.slug}_records_list",
                    "summary": f"Records of {dataset.slug}, a keyset page at a time",
                    "parameters": common + _filter_parameters(spec),
                    "responses": {
                        "200": {
                            "description": "A page of records.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RecordPage"}}},
                        },
                        **_errors(),
                    },
                }
            },
            detail_path: {
                "get": {
                    "operationId": f"{dataset.slug}_records_retrieve",
                    "summary": "One record by natural key, with its lineage",
                    "parameters": [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {
                            "description": "The record.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Record"}}},
                        },
                        **_errors(),
                    },
                }
            },
        },
        "components": {
            "schemas": {"Data": data_schema, "Record": record, "RecordPage": page, "Error": ERROR_SCHEMA},
            "securitySchemes": {"jwtAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
