"""OpenAPI: the project schema, Swagger UI, and each dataset's own records document."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from ingestion.models import Dataset
from processing.models import Run

from .conftest import API

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(db: None) -> dict[str, Any]:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_is_public_and_valid_openapi(schema: dict[str, Any]) -> None:
    validate_schema(schema)
    assert schema["components"]["securitySchemes"]["jwtAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_every_operation_documents_its_error_responses_in_the_error_shape(schema: dict[str, Any]) -> None:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"400", "401", "403", "404", "405", "429"} <= codes, (method, path)
            if "requestBody" in operation:
                assert {"413", "415"} <= codes, (method, path)
            for code in codes - {"200", "201", "202", "204"}:
                content = operation["responses"][code]["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, code)


def test_protected_operations_require_the_jwt_and_token_endpoints_do_not(schema: dict[str, Any]) -> None:
    assert schema["paths"]["/api/v1/runs/"]["get"]["security"] == [{"jwtAuth": []}]
    assert schema["paths"]["/api/v1/auth/token/"]["post"].get("security", []) in ([], [{}])


def test_the_upload_documents_both_body_types_and_its_limits(schema: dict[str, Any]) -> None:
    upload = schema["paths"]["/api/v1/datasets/{slug}/uploads/"]["post"]

    assert set(upload["requestBody"]["content"]) == {"multipart/form-data", "text/csv"}
    assert {"202", "200", "413", "415", "422"} <= set(upload["responses"])


def test_swagger_ui_is_served_without_a_token(db: None) -> None:
    response = APIClient().get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_a_dataset_publishes_its_own_records_document(as_viewer: APIClient, loaded: Run) -> None:
    response = as_viewer.get(f"{API}/datasets/sales/openapi.json")

    assert response.status_code == 200
    document = response.json()
    validate_schema(document)
    operation = document["paths"]["/api/v1/datasets/sales/records/"]["get"]
    params = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert params["quantity__gte"] == {"type": "integer", "format": "int64"}
    assert params["timestamp__lte"]["format"] == "date-time"
    assert params["value"]["pattern"].startswith("^-?")
    assert params["is_active"] == {"type": "boolean"}
    assert "email__contains" in params
    assert "quantity__contains" not in params
    assert "-value" in params["ordering"]["enum"]
    data = document["components"]["schemas"]["Data"]["properties"]
    assert data["quantity"]["type"] == "integer"
    assert data["value"]["type"] == "string"


def test_the_dataset_document_lists_only_filters_the_list_accepts(as_viewer: APIClient, loaded: Run) -> None:
    document = as_viewer.get(f"{API}/datasets/sales/openapi.json").json()
    operation = document["paths"]["/api/v1/datasets/sales/records/"]["get"]
    samples = {"integer": "1", "string": "x", "boolean": "true", "number": "1.5"}
    formats = {"date-time": "2024-01-02T03:04:05Z", "date": "2024-01-02"}
    schemas = {p["name"]: p["schema"] for p in operation["parameters"]}

    for name in schemas:
        if name in ("cursor", "ordering", "run", "page_size"):
            continue
        field = name.split("__")[0]
        typed = schemas[field]  # the equality filter carries the field's type
        value = formats.get(typed.get("format", ""), "1.5" if typed.get("pattern") else samples[typed["type"]])
        response = as_viewer.get(f"{API}/datasets/sales/records/", {name: value})
        assert response.status_code == 200, (name, response.content)


def test_a_stranger_gets_no_dataset_document(as_stranger: APIClient, sales: Dataset) -> None:
    assert as_stranger.get(f"{API}/datasets/sales/openapi.json").status_code == 404
