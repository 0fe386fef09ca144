"""A base test case for the scheduler tests: what Heat's ``HeatTestCase`` gave its own tests.

Tests ported from OpenStack Heat need three things of it: ``patchobject``, an ``assertRaises``
that returns the exception (testtools' behaviour), and ``scheduler.ENABLE_SLEEP`` off. On top of
that, no test may really sleep or read the real clock: each test gets a fake clock, which
``time.sleep`` advances instead of sleeping.
"""

from __future__ import annotations

import time
import unittest
from collections.abc import Callable
from typing import Any, TypeVar, overload
from unittest import mock

from spawnkit.core import scheduler, timeutils

__all__ = ["FakeClock", "SchedulerTestCase"]

_E = TypeVar("_E", bound=BaseException)


class FakeClock:
    """A clock that moves only when slept on."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def wallclock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class SchedulerTestCase(unittest.TestCase):
    """Base of the scheduler tests: fake time, no sleeping, and Heat's test helpers."""

    def setUp(self) -> None:
        super().setUp()
        self.addCleanup(setattr, scheduler, "ENABLE_SLEEP", scheduler.ENABLE_SLEEP)
        scheduler.ENABLE_SLEEP = False
        self.clock = FakeClock()
        # Plain functions, not mocks: a test that counts clock readings patches its own.
        self.patchobject(timeutils, "wallclock", new=self.clock.wallclock)
        self.patchobject(time, "sleep", new=self.clock.sleep)

    def patchobject(self, obj: object, attr: str, **kwargs: Any) -> Any:
        """Patch ``obj.attr`` for the rest of the test, and return the patch (a mock)."""
        patcher = mock.patch.object(obj, attr, **kwargs)
        patched = patcher.start()
        self.addCleanup(patcher.stop)
        return patched

    @overload  # type: ignore[override]
    def assertRaises(
        self, expected_exception: type[_E] | tuple[type[_E], ...]
    ) -> unittest.case._AssertRaisesContext[_E]: ...

    @overload
    def assertRaises(
        self,
        expected_exception: type[_E] | tuple[type[_E], ...],
        callable_obj: Callable[..., object],
        *args: Any,
        **kwargs: Any,
    ) -> _E: ...

    def assertRaises(
        self,
        expected_exception: type[_E] | tuple[type[_E], ...],
        callable_obj: Callable[..., object] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> _E | unittest.case._AssertRaisesContext[_E]:
        """Assert that ``callable_obj(*args, **kwargs)`` raises, and return the exception.

        Without ``callable_obj``, the context manager of ``unittest``, as usual.
        """
        if callable_obj is None:
            return super().assertRaises(expected_exception)
        with super().assertRaises(expected_exception) as context:
            callable_obj(*args, **kwargs)
        return context.exception
