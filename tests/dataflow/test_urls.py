"""The site's front door: ``/`` and the admin's "View site" lead to the dashboard."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import clear_script_prefix, set_script_prefix

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def view_site_link(html: str) -> str:
    match = re.search(r'<a href="([^"]*)">View site</a>', html)
    assert match, "no View site link on the page"
    return match.group(1)


def test_the_root_redirects_to_the_dashboard(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_a_visitor_who_is_not_signed_in_is_sent_on_to_the_login(client: Client) -> None:
    response = client.get("/", follow=True)

    assert [url for url, _ in response.redirect_chain] == ["/admin/", "/admin/login/?next=/admin/"]
    assert response.status_code == 200


def test_view_site_in_the_admin_leads_to_the_dashboard(client: Client) -> None:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.get("/admin/")

    assert view_site_link(response.content.decode()) == "/admin/"


def test_view_site_keeps_the_prefix_of_a_deployment_under_a_path(client: Client) -> None:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    # What Django's WSGI handler does for a request with SCRIPT_NAME=/dataflow
    # (the test client does not).
    set_script_prefix("/dataflow/")
    try:
        response = client.get("/admin/")
    finally:
        clear_script_prefix()

    assert view_site_link(response.content.decode()) == "/dataflow/admin/"
