"""The admin site: Django's, with the operations dashboard on the index page."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.validators import MaxLengthValidator
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, include, path, reverse

from processing.charts import SERIES_COLOURS, STATUS_COLOURS, grouped_bars, stacked_bars
from processing.selectors import datasets_with_last_run, rows_per_day, runs_in_progress, runs_per_day_by_status


class AdminLoginForm(AdminAuthenticationForm):
    """The admin login, refusing a username longer than any account's as a form error.

    Django's form sets the field's ``max_length`` after the field is built,
    which changes the HTML attribute but adds no validator, so a longer name
    reached ``authenticate()`` and django-axes' attempt log (255 characters):
    a database error on PostgreSQL.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        if isinstance(field, forms.CharField) and field.max_length is not None:
            field.validators.append(MaxLengthValidator(field.max_length))


# Plumbing the operators do not work with: login lockouts (django-axes), the job queue's own tables
# (django-q2) and the API's refresh-token blacklist. Shown to superusers only, in one "System" section.
SYSTEM_APP_LABELS = ("axes", "django_q", "token_blacklist")
SYSTEM_SECTION = "System"


class DataflowAdminSite(admin.AdminSite):
    site_header = "DataFlow Analytics"
    site_title = "DataFlow"
    index_title = "Operations"
    login_form = AdminLoginForm

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        # "View site" leads to the dashboard: the site has no other home page
        # (``/`` redirects here too). Reversed per request, so a deployment
        # under a URL prefix (SCRIPT_NAME) gets the prefixed address.
        context = super().each_context(request)
        context["site_url"] = reverse("admin:index", current_app=self.name)
        return context

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        context = dict(extra_context or {})
        user = request.user
        # Figures of the datasets this user may see, as the API would show them (per-dataset grants).
        if user.has_perm("processing.view_run"):
            context["dashboard"] = {
                "runs_chart": stacked_bars("Runs per day by status", runs_per_day_by_status(user), STATUS_COLOURS),
                "rows_chart": grouped_bars("Rows loaded and rejected per day", rows_per_day(user), SERIES_COLOURS),
                "datasets": datasets_with_last_run(user),
                "in_progress": runs_in_progress(user),
                "can_upload": request.user.has_perm("processing.upload_file"),
            }
        return super().index(request, context)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        """The index and the side bar: the product's apps, then the plumbing under "System" (superusers only).

        An app's own page (``/admin/axes/``) is left as Django builds it.
        """
        app_list = super().get_app_list(request, app_label)
        if app_label is not None:
            return app_list
        product = [app for app in app_list if app["app_label"] not in SYSTEM_APP_LABELS]
        system_models = [
            {**model, "name": f"{model['name']} ({app['name']})"}
            for app in app_list
            if app["app_label"] in SYSTEM_APP_LABELS
            for model in app["models"]
        ]
        if not system_models or not request.user.is_superuser:
            return product
        system = {
            "name": SYSTEM_SECTION,
            "app_label": "system",
            "app_url": reverse("admin:index", current_app=self.name) + "#system",
            "has_module_perms": True,
            "models": sorted(system_models, key=lambda model: model["name"].lower()),
        }
        return [*product, system]

    def get_urls(self) -> list[URLResolver | URLPattern]:
        # The data pages belong to no model admin: /admin/data/<slug>/, behind the admin's login. Named by
        # module so it loads with the URLs: the console's modules register their admins on this site.
        return [path("data/", include("processing.admin.data_urls")), *super().get_urls()]
