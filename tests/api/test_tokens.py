"""The outstanding-token list is flushed of expired tokens, daily, by a django-q2 schedule."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from api.tasks import flush_expired_tokens
from api.tokens import tokens_flush_expired

pytestmark = pytest.mark.django_db
SCHEDULE = "dataflow: flush expired tokens"


def expire(token: RefreshToken) -> None:
    OutstandingToken.objects.filter(jti=token["jti"]).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_flushing_removes_expired_tokens_and_keeps_live_ones(viewer: Any) -> None:
    live, revoked_live = RefreshToken.for_user(viewer), RefreshToken.for_user(viewer)
    expired, revoked_expired = RefreshToken.for_user(viewer), RefreshToken.for_user(viewer)
    revoked_live.blacklist()
    revoked_expired.blacklist()
    expire(expired)
    expire(revoked_expired)

    counts = tokens_flush_expired()

    assert counts == {"outstanding": 2, "blacklisted": 1}
    assert set(OutstandingToken.objects.values_list("jti", flat=True)) == {live["jti"], revoked_live["jti"]}
    assert list(BlacklistedToken.objects.values_list("token__jti", flat=True)) == [revoked_live["jti"]]


def test_a_revoked_token_that_has_not_expired_stays_revoked_after_a_flush(viewer: Any) -> None:
    refresh = RefreshToken.for_user(viewer)
    refresh.blacklist()

    tokens_flush_expired()

    response = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": str(refresh)}, format="json")
    assert response.status_code == 401


def test_the_task_calls_the_flush(viewer: Any) -> None:
    expire(RefreshToken.for_user(viewer))

    assert flush_expired_tokens() == {"outstanding": 1, "blacklisted": 0}
    assert not OutstandingToken.objects.exists()


def test_migrating_leaves_one_daily_flush_schedule_that_points_at_the_task() -> None:
    schedule = Schedule.objects.get(name=SCHEDULE)

    assert schedule.schedule_type == Schedule.DAILY
    assert schedule.repeats == -1
    assert import_string(schedule.func) is flush_expired_tokens


def test_creating_the_schedule_again_does_not_duplicate_it() -> None:
    migration = importlib.import_module("api.migrations.0001_token_flush_schedule")
    Schedule.objects.filter(name=SCHEDULE).update(schedule_type=Schedule.HOURLY)

    migration.create_schedule(apps, None)
    migration.create_schedule(apps, None)

    assert Schedule.objects.filter(name=SCHEDULE).count() == 1
    assert Schedule.objects.get(name=SCHEDULE).schedule_type == Schedule.DAILY
