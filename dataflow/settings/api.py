"""REST API settings: Django REST framework, JWT, OpenAPI. Imported by base.py."""

from __future__ import annotations
