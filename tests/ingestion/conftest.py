"""Fixtures for the HTTP fetching tests: seeing which sockets were really connected."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

# Python's audit hooks report every socket.connect with its address: a way to prove the
# guard refused a destination before any connection, with no mock in the way.
_recorders: list[list[Any]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and _recorders:
        address = args[1]
        _recorders[-1].append(address[0] if isinstance(address, tuple) else address)


sys.addaudithook(_audit)  # hooks cannot be removed; this one only records while a test asks


@pytest.fixture
def connections() -> Iterator[list[Any]]:
    """The host addresses of every socket connected while the test runs."""
    seen: list[Any] = []
    _recorders.append(seen)
    yield seen
    _recorders.remove(seen)


@pytest.fixture
def no_private_networks(settings: Any) -> None:
    """Production's default: loopback (where the test servers listen) is refused too."""
    settings.SOURCES = {**settings.SOURCES, "ALLOWED_NETWORKS": []}
