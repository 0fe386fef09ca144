"""Tests of spawnkit.core.timeutils: the clock, and Duration's readings of it."""

from __future__ import annotations

import time
import unittest
from unittest import mock

from spawnkit.core import timeutils


class WallclockTest(unittest.TestCase):
    def test_is_time_time(self) -> None:
        with mock.patch.object(time, "time", return_value=1234.5):
            self.assertEqual(1234.5, timeutils.wallclock())

    def test_real_clock_in_seconds(self) -> None:
        before = time.time()
        now = timeutils.wallclock()
        self.assertIsInstance(now, float)
        self.assertLessEqual(before, now)
        self.assertLess(now - before, 60)


class DurationTest(unittest.TestCase):
    def setUp(self) -> None:
        patcher = mock.patch.object(timeutils, "wallclock", return_value=100.0)
        self.wallclock = patcher.start()
        self.addCleanup(patcher.stop)

    def test_endtime(self) -> None:
        self.assertEqual(107.5, timeutils.Duration(7.5).endtime())
        self.assertEqual(1, self.wallclock.call_count)

    def test_default_timeout_is_zero(self) -> None:
        duration = timeutils.Duration()
        self.assertEqual(100.0, duration.endtime())
        self.assertFalse(duration.expired())

    def test_expired_strictly_after_the_end(self) -> None:
        duration = timeutils.Duration(10)
        self.wallclock.return_value = 109.9
        self.assertFalse(duration.expired())
        self.wallclock.return_value = 110.0
        self.assertFalse(duration.expired())
        self.wallclock.return_value = 110.1
        self.assertTrue(duration.expired())

    def test_one_reading_at_creation_and_one_per_expired(self) -> None:
        duration = timeutils.Duration(10)
        self.assertEqual(1, self.wallclock.call_count)
        duration.expired()
        duration.expired()
        self.assertEqual(3, self.wallclock.call_count)
        duration.endtime()
        self.assertEqual(3, self.wallclock.call_count)

    def test_clock_looked_up_at_call_time(self) -> None:
        duration = timeutils.Duration(10)
        with mock.patch.object(timeutils, "wallclock", return_value=500.0) as later:
            self.assertTrue(duration.expired())
            later.assert_called_once_with()

    def test_negative_timeout_is_already_expired(self) -> None:
        self.assertTrue(timeutils.Duration(-1).expired())
