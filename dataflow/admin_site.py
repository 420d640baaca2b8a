"""The admin site: Django's, with the operations dashboard on the index page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from processing.charts import SERIES_COLOURS, STATUS_COLOURS, grouped_bars, stacked_bars
from processing.selectors import datasets_with_last_run, rows_per_day, runs_in_progress, runs_per_day_by_status


class DataflowAdminSite(admin.AdminSite):
    site_header = "DataFlow Analytics"
    site_title = "DataFlow"
    index_title = "Operations"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = dict(extra_context or {})
        if request.user.has_perm("processing.view_run"):
            context["dashboard"] = {
                "runs_chart": stacked_bars("Runs per day by status", runs_per_day_by_status(), STATUS_COLOURS),
                "rows_chart": grouped_bars("Rows loaded and rejected per day", rows_per_day(), SERIES_COLOURS),
                "datasets": datasets_with_last_run(),
                "in_progress": runs_in_progress(),
                "can_upload": request.user.has_perm("processing.upload_file"),
            }
        return super().index(request, context)
