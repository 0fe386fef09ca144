"""Fixtures of the fault suite: the shared engines (as in tests/engines), and engine
daemons of a test's own, to kill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engines.conftest import CONTAINER_BACKENDS, engine_name, in_ci, require_engine
from tests.faults.daemons import PrivateDaemon, StartFailed, private_daemon

__all__ = ["engine_name", "private_engine"]


@pytest.fixture(params=CONTAINER_BACKENDS)
def private_engine(request: pytest.FixtureRequest) -> Iterator[PrivateDaemon]:
    """A daemon of this test's own (dockerd, or a Podman service), removed with all it holds
    after the test. The CI=true rule holds: one that cannot start fails the test there."""
    name: str = request.param
    require_engine(name)  # the shared engine gives it the test image
    try:
        daemon = private_daemon(name)
    except StartFailed as exc:
        if in_ci():
            pytest.fail(f"CI=true and a {name} daemon of the test's own cannot start: {exc}",
                        pytrace=False)
        pytest.skip(f"a {name} daemon of the test's own cannot start: {exc}")
    try:
        yield daemon
    finally:
        daemon.cleanup()
