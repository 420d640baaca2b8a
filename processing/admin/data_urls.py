"""The data pages' URLs, under /admin/data/ (``DataflowAdminSite.get_urls``), behind the admin's login."""

from django.contrib import admin
from django.urls import URLPattern, path

from .data import data_export_view, data_page_view

urlpatterns: list[URLPattern] = [
    path("<slug:slug>/", admin.site.admin_view(data_page_view), name="processing_data"),
    path("<slug:slug>/export/<str:fmt>/", admin.site.admin_view(data_export_view), name="processing_data_export"),
]
