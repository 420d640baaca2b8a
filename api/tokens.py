"""Housekeeping of the JWT outstanding-token list.

Every refresh token issued is recorded (simplejwt's ``OutstandingToken``) so
it can be revoked; nothing removes the rows on its own, so the table grows
with every login and refresh. Expired tokens cannot be used any more,
revoked or not, so their rows (and their blacklist entries) can go.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken


@transaction.atomic
def tokens_flush_expired(*, now: datetime | None = None) -> dict[str, int]:
    """Delete outstanding tokens that expired before ``now`` (and their blacklist entries); return the counts."""
    expired = OutstandingToken.objects.filter(expires_at__lte=now or timezone.now())
    blacklisted = BlacklistedToken.objects.filter(token__in=expired).count()
    outstanding = expired.count()
    expired.delete()  # the blacklist entries go with them (on_delete=CASCADE)
    return {"outstanding": outstanding, "blacklisted": blacklisted}
