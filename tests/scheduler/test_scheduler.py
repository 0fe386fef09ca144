#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.
#
# Ported from OpenStack Heat (Apache-2.0): heat/tests/engine/test_scheduler.py of
# openstack-heat 27.0.1, and its WrapperTaskTest from 20.0.0 (the last release with
# wrappertask). Changed: the imports, HeatTestCase replaced by common.SchedulerTestCase,
# type hints, ruff's style fixes, DummyTask.do_step made an attribute, and test_sleep_none
# (see there). spawnkit's own tests follow the ported ones, after the marked line.
"""Tests of spawnkit.core.scheduler: Heat's own tests, then spawnkit's for the rest of the spec."""

import contextlib
import functools
import itertools
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any
from unittest import mock

from spawnkit.core import dependencies, scheduler, timeutils

from . import common


class DummyTask:
    def __init__(self, num_steps: int = 3, delays: Iterable[int | None] | None = None) -> None:
        self.num_steps = num_steps
        self.delays: Iterator[int | None]
        if delays is not None:
            self.delays = iter(delays)
        else:
            self.delays = itertools.repeat(None)
        # spawnkit: an attribute rather than Heat's method, so that mypy lets tests replace it.
        self.do_step: Any = self._do_step

    def __call__(self, *args: Any, **kwargs: Any) -> Iterator[int | None]:
        for i in range(1, self.num_steps + 1):
            self.do_step(i, *args, **kwargs)
            yield next(self.delays)

    def _do_step(self, step_num: int, *args: Any, **kwargs: Any) -> None:
        pass


class ExceptionGroupTest(common.SchedulerTestCase):
    def test_contains_exceptions(self) -> None:
        exception_group = scheduler.ExceptionGroup()
        self.assertIsInstance(exception_group.exceptions, list)

    def test_can_be_initialized_with_a_list_of_exceptions(self) -> None:
        ex1 = Exception("ex 1")
        ex2 = Exception("ex 2")

        exception_group = scheduler.ExceptionGroup([ex1, ex2])
        self.assertIn(ex1, exception_group.exceptions)
        self.assertIn(ex2, exception_group.exceptions)

    def test_can_add_exceptions_after_init(self) -> None:
        ex = Exception()
        exception_group = scheduler.ExceptionGroup()

        exception_group.exceptions.append(ex)
        self.assertIn(ex, exception_group.exceptions)

    def test_str_representation_aggregates_all_exceptions(self) -> None:
        ex1 = Exception("ex 1")
        ex2 = Exception("ex 2")

        exception_group = scheduler.ExceptionGroup([ex1, ex2])
        self.assertEqual("['ex 1', 'ex 2']", str(exception_group))


class StepTracker:
    def __init__(self) -> None:
        self.expected_groups: list[set[tuple[int, str]]] = []
        self.side_effects: dict[tuple[int, str], BaseException | float | None] = {}

    def expect_call_group(self, step_num: int, targets: Iterable[str]) -> None:
        self.expected_groups.append(set((step_num, t) for t in targets))

    def expect_call(self, step_num: int, target: str) -> None:
        self.expect_call_group(step_num, (target,))

    def raise_on(self, step_num: int, target: str, exc: BaseException | None) -> None:
        self.side_effects[(step_num, target)] = exc

    def sleep_on(self, step_num: int, target: str, sleep_time: float) -> None:
        self.side_effects[(step_num, target)] = float(sleep_time)

    def side_effect(self, step_num: int, target: str) -> None:
        se = self.side_effects.get((step_num, target), None)
        if isinstance(se, BaseException):
            raise se
        if isinstance(se, float):
            time.sleep(se)

    def verify_calls(self, mock_step: mock.Mock) -> None:
        actual_calls = mock_step.mock_calls
        CallList = type(actual_calls)
        idx = 0

        try:
            for group in self.expected_groups:
                group_len = len(group)
                group_actual = CallList(actual_calls[idx : idx + group_len])
                idx += group_len
                mock_step.mock_calls = group_actual
                mock_step.assert_has_calls([mock.call(s, t) for s, t in group], any_order=True)
        finally:
            mock_step.actual_calls = actual_calls

        if len(actual_calls) > idx:
            raise AssertionError(f"Unexpected calls: {CallList(actual_calls[idx:])}")


class DependencyTaskGroupTest(common.SchedulerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.aggregate_exceptions = False
        self.error_wait_time: scheduler.GracePeriod = None
        self.reverse_order = False

    @contextlib.contextmanager
    def _dep_test(self, *edges: tuple[str, str | None]) -> Iterator[StepTracker]:
        dummy = DummyTask(getattr(self, "steps", 3))

        deps = dependencies.Dependencies(edges)

        tg = scheduler.DependencyTaskGroup(
            deps,
            dummy,
            reverse=self.reverse_order,
            error_wait_time=self.error_wait_time,
            aggregate_exceptions=self.aggregate_exceptions,
        )

        tracker = StepTracker()

        yield tracker

        dummy.do_step = mock.Mock(side_effect=tracker.side_effect)
        scheduler.TaskRunner(tg)(wait_time=None)

        tracker.verify_calls(dummy.do_step)

    def test_test(self) -> None:
        def failing_test() -> None:
            with self._dep_test(("only", None)) as track:
                track.expect_call(1, "only")
                track.expect_call(3, "only")

        self.assertRaises(AssertionError, failing_test)

    @mock.patch.object(scheduler.TaskRunner, "_sleep")
    def test_no_steps(self, mock_sleep: mock.Mock) -> None:
        self.steps = 0
        with self._dep_test(("second", "first")):
            pass

    def test_single_node(self) -> None:
        with self._dep_test(("only", None)) as track:
            track.expect_call(1, "only")
            track.expect_call(2, "only")
            track.expect_call(3, "only")

    def test_disjoint(self) -> None:
        with self._dep_test(("1", None), ("2", None)) as track:
            track.expect_call_group(1, ("1", "2"))
            track.expect_call_group(2, ("1", "2"))
            track.expect_call_group(3, ("1", "2"))

    def test_single_fwd(self) -> None:
        with self._dep_test(("second", "first")) as track:
            track.expect_call(1, "first")
            track.expect_call(2, "first")
            track.expect_call(3, "first")
            track.expect_call(1, "second")
            track.expect_call(2, "second")
            track.expect_call(3, "second")

    def test_chain_fwd(self) -> None:
        with self._dep_test(("third", "second"), ("second", "first")) as track:
            track.expect_call(1, "first")
            track.expect_call(2, "first")
            track.expect_call(3, "first")
            track.expect_call(1, "second")
            track.expect_call(2, "second")
            track.expect_call(3, "second")
            track.expect_call(1, "third")
            track.expect_call(2, "third")
            track.expect_call(3, "third")

    def test_diamond_fwd(self) -> None:
        with self._dep_test(
            ("last", "mid1"), ("last", "mid2"), ("mid1", "first"), ("mid2", "first")
        ) as track:
            track.expect_call(1, "first")
            track.expect_call(2, "first")
            track.expect_call(3, "first")
            track.expect_call_group(1, ("mid1", "mid2"))
            track.expect_call_group(2, ("mid1", "mid2"))
            track.expect_call_group(3, ("mid1", "mid2"))
            track.expect_call(1, "last")
            track.expect_call(2, "last")
            track.expect_call(3, "last")

    def test_complex_fwd(self) -> None:
        with self._dep_test(
            ("last", "mid1"),
            ("last", "mid2"),
            ("mid1", "mid3"),
            ("mid1", "first"),
            ("mid3", "first"),
            ("mid2", "first"),
        ) as track:
            track.expect_call(1, "first")
            track.expect_call(2, "first")
            track.expect_call(3, "first")
            track.expect_call_group(1, ("mid2", "mid3"))
            track.expect_call_group(2, ("mid2", "mid3"))
            track.expect_call_group(3, ("mid2", "mid3"))
            track.expect_call(1, "mid1")
            track.expect_call(2, "mid1")
            track.expect_call(3, "mid1")
            track.expect_call(1, "last")
            track.expect_call(2, "last")
            track.expect_call(3, "last")

    def test_many_edges_fwd(self) -> None:
        with self._dep_test(
            ("last", "e1"),
            ("last", "mid1"),
            ("last", "mid2"),
            ("mid1", "e2"),
            ("mid1", "mid3"),
            ("mid2", "mid3"),
            ("mid3", "e3"),
        ) as track:
            track.expect_call_group(1, ("e1", "e2", "e3"))
            track.expect_call_group(2, ("e1", "e2", "e3"))
            track.expect_call_group(3, ("e1", "e2", "e3"))
            track.expect_call(1, "mid3")
            track.expect_call(2, "mid3")
            track.expect_call(3, "mid3")
            track.expect_call_group(1, ("mid2", "mid1"))
            track.expect_call_group(2, ("mid2", "mid1"))
            track.expect_call_group(3, ("mid2", "mid1"))
            track.expect_call(1, "last")
            track.expect_call(2, "last")
            track.expect_call(3, "last")

    def test_dbldiamond_fwd(self) -> None:
        with self._dep_test(
            ("last", "a1"),
            ("last", "a2"),
            ("a1", "b1"),
            ("a2", "b1"),
            ("a2", "b2"),
            ("b1", "first"),
            ("b2", "first"),
        ) as track:
            track.expect_call(1, "first")
            track.expect_call(2, "first")
            track.expect_call(3, "first")
            track.expect_call_group(1, ("b1", "b2"))
            track.expect_call_group(2, ("b1", "b2"))
            track.expect_call_group(3, ("b1", "b2"))
            track.expect_call_group(1, ("a1", "a2"))
            track.expect_call_group(2, ("a1", "a2"))
            track.expect_call_group(3, ("a1", "a2"))
            track.expect_call(1, "last")
            track.expect_call(2, "last")
            track.expect_call(3, "last")

    def test_circular_deps(self) -> None:
        d = dependencies.Dependencies(
            [("first", "second"), ("second", "third"), ("third", "first")]
        )
        self.assertRaises(
            dependencies.CircularDependencyException, scheduler.DependencyTaskGroup, d
        )

    def test_aggregate_exceptions_raises_all_at_the_end(self) -> None:
        def run_tasks_with_exceptions(
            e1: Exception | None = None, e2: Exception | None = None
        ) -> None:
            self.aggregate_exceptions = True
            tasks = (("A", None), ("B", None), ("C", None))
            with self._dep_test(*tasks) as track:
                track.expect_call_group(1, ("A", "B", "C"))
                track.raise_on(1, "C", e1)

                track.expect_call_group(2, ("A", "B"))
                track.raise_on(2, "B", e2)

                track.expect_call(3, "A")

        e1 = Exception("e1")
        e2 = Exception("e2")

        exc = self.assertRaises(scheduler.ExceptionGroup, run_tasks_with_exceptions, e1, e2)
        self.assertEqual(set([e1, e2]), set(exc.exceptions))

    def test_aggregate_exceptions_cancels_dependent_tasks_recursively(self) -> None:
        def run_tasks_with_exceptions(
            e1: Exception | None = None, e2: Exception | None = None
        ) -> None:
            self.aggregate_exceptions = True
            tasks = (("A", None), ("B", "A"), ("C", "B"))
            with self._dep_test(*tasks) as track:
                track.expect_call(1, "A")
                track.raise_on(1, "A", e1)

        e1 = Exception("e1")

        exc = self.assertRaises(scheduler.ExceptionGroup, run_tasks_with_exceptions, e1)
        self.assertEqual([e1], exc.exceptions)

    def test_aggregate_exceptions_cancels_tasks_in_reverse_order(self) -> None:
        def run_tasks_with_exceptions(
            e1: Exception | None = None, e2: Exception | None = None
        ) -> None:
            self.reverse_order = True
            self.aggregate_exceptions = True
            tasks = (("A", None), ("B", "A"), ("C", "B"))
            with self._dep_test(*tasks) as track:
                track.expect_call(1, "C")
                track.raise_on(1, "C", e1)

        e1 = Exception("e1")

        exc = self.assertRaises(scheduler.ExceptionGroup, run_tasks_with_exceptions, e1)
        self.assertEqual([e1], exc.exceptions)

    def test_exceptions_on_cancel(self) -> None:
        class TestException(Exception):
            pass

        class ExceptionOnExit(Exception):
            pass

        cancelled = []

        def task_func(arg: str) -> Generator[None, None, None]:
            for i in range(4):
                if i > 1:
                    raise TestException

                try:
                    yield
                except GeneratorExit:
                    cancelled.append(arg)
                    raise ExceptionOnExit  # noqa: B904 - on purpose, as in Heat

        tasks = (("A", None), ("B", None), ("C", None))
        deps = dependencies.Dependencies(tasks)

        tg = scheduler.DependencyTaskGroup(deps, task_func)
        task = tg()

        next(task)
        next(task)
        self.assertRaises(TestException, next, task)
        self.assertEqual(len(tasks) - 1, len(cancelled))

    def test_exception_grace_period(self) -> None:
        e1 = Exception("e1")

        def run_tasks_with_exceptions() -> None:
            self.error_wait_time = 5
            tasks = (("A", None), ("B", None), ("C", "A"))
            with self._dep_test(*tasks) as track:
                track.expect_call_group(1, ("A", "B"))
                track.expect_call_group(2, ("A", "B"))
                track.raise_on(2, "B", e1)
                track.expect_call(3, "B")

        exc = self.assertRaises(type(e1), run_tasks_with_exceptions)
        self.assertEqual(e1, exc)

    def test_exception_grace_period_expired(self) -> None:
        e1 = Exception("e1")

        def run_tasks_with_exceptions() -> None:
            self.steps = 5
            self.error_wait_time = 0.05

            def sleep() -> None:
                time.sleep(self.error_wait_time)  # type: ignore[arg-type]

            tasks = (("A", None), ("B", None), ("C", "A"))
            with self._dep_test(*tasks) as track:
                track.expect_call_group(1, ("A", "B"))
                track.expect_call_group(2, ("A", "B"))
                track.raise_on(2, "B", e1)
                track.expect_call(3, "B")
                track.expect_call(4, "B")
                track.sleep_on(4, "B", self.error_wait_time)

        exc = self.assertRaises(type(e1), run_tasks_with_exceptions)
        self.assertEqual(e1, exc)

    def test_exception_grace_period_per_task(self) -> None:
        e1 = Exception("e1")

        def get_wait_time(key: str) -> float | None:
            if key == "B":
                return 5
            else:
                return None

        def run_tasks_with_exceptions() -> None:
            self.error_wait_time = get_wait_time
            tasks = (("A", None), ("B", None), ("C", "A"))
            with self._dep_test(*tasks) as track:
                track.expect_call_group(1, ("A", "B"))
                track.expect_call_group(2, ("A", "B"))
                track.raise_on(2, "A", e1)
                track.expect_call(3, "B")

        exc = self.assertRaises(type(e1), run_tasks_with_exceptions)
        self.assertEqual(e1, exc)

    def test_thrown_exception_order(self) -> None:
        e1 = Exception("e1")
        e2 = Exception("e2")

        tasks = (("A", None), ("B", None), ("C", "A"))
        deps = dependencies.Dependencies(tasks)

        tg = scheduler.DependencyTaskGroup(
            deps,
            DummyTask(),
            reverse=self.reverse_order,
            error_wait_time=1,
            aggregate_exceptions=self.aggregate_exceptions,
        )
        task = tg()

        next(task)
        task.throw(e1)
        next(task)
        tg.error_wait_time = None
        exc = self.assertRaises(type(e2), task.throw, e2)
        self.assertIs(e2, exc)


class TaskTest(common.SchedulerTestCase):
    def setUp(self) -> None:
        super().setUp()
        scheduler.ENABLE_SLEEP = True
        self.mock_sleep = self.patchobject(scheduler.TaskRunner, "_sleep", return_value=None)

    def test_run(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        scheduler.TaskRunner(task)()

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.assertEqual(3, self.mock_sleep.call_count)

    def test_run_as_task(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        tr = scheduler.TaskRunner(task)
        rt = tr.as_task()
        for _step in rt:
            pass
        self.assertTrue(tr.done())

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_not_called()

    def test_run_as_task_started(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        tr = scheduler.TaskRunner(task)
        tr.start()
        for _step in tr.as_task():
            pass
        self.assertTrue(tr.done())

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_not_called()

    def test_run_as_task_cancel(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        tr = scheduler.TaskRunner(task)
        rt = tr.as_task()
        next(rt)
        rt.close()

        self.assertTrue(tr.done())

        task.do_step.assert_called_once_with(1)
        self.mock_sleep.assert_not_called()

    def test_run_as_task_exception(self) -> None:
        class TestException(Exception):
            pass

        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        m_post_call = mock.Mock()
        tr = scheduler.TaskRunner(task)
        rt = tr.as_task(post_func=m_post_call)
        next(rt)
        self.assertRaises(TestException, rt.throw, TestException)

        self.assertTrue(tr.done())
        self.assertFalse(m_post_call.called)
        task.do_step.assert_called_once_with(1)
        self.mock_sleep.assert_not_called()

    def test_run_as_task_swallow_exception(self) -> None:
        class TestException(Exception):
            pass

        def task() -> Generator[Any, Any, None]:
            try:
                yield
            except TestException:
                yield

        tr = scheduler.TaskRunner(task)
        rt = tr.as_task()
        next(rt)
        rt.throw(TestException)

        self.assertFalse(tr.done())
        self.assertRaises(StopIteration, next, rt)
        self.assertTrue(tr.done())

    def test_run_as_task_with_post_func(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)
        m_post_call = mock.Mock()
        tr = scheduler.TaskRunner(task)
        rt = tr.as_task(post_func=m_post_call)
        for _step in rt:
            pass
        self.assertTrue(tr.done())

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_not_called()
        self.assertTrue(m_post_call.called)

    def test_run_delays(self) -> None:
        task = DummyTask(delays=itertools.repeat(2))
        task.do_step = mock.Mock(return_value=None)

        scheduler.TaskRunner(task)()

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_has_calls(
            [mock.call(0), mock.call(1), mock.call(1), mock.call(1), mock.call(1), mock.call(1)]
        )
        self.assertEqual(6, self.mock_sleep.call_count)

    def test_run_delays_dynamic(self) -> None:
        task = DummyTask(delays=[2, 4, 1])
        task.do_step = mock.Mock(return_value=None)

        scheduler.TaskRunner(task)()

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_has_calls(
            [
                mock.call(0),
                mock.call(1),
                mock.call(1),
                mock.call(1),
                mock.call(1),
                mock.call(1),
                mock.call(1),
            ]
        )
        self.assertEqual(7, self.mock_sleep.call_count)

    def test_run_wait_time(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        scheduler.TaskRunner(task)(wait_time=42)

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_has_calls([mock.call(0), mock.call(42), mock.call(42)])
        self.assertEqual(3, self.mock_sleep.call_count)

    def test_start_run(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)
        runner.start()
        runner.run_to_completion()

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_has_calls([mock.call(1), mock.call(1)])
        self.assertEqual(2, self.mock_sleep.call_count)

    def test_start_run_wait_time(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)
        runner.start()
        runner.run_to_completion(wait_time=24)

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_has_calls([mock.call(24), mock.call(24)])
        self.assertEqual(2, self.mock_sleep.call_count)

    def test_run_progress(self) -> None:
        progress_count: list[None] = []

        def progress() -> None:
            progress_count.append(None)

        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        scheduler.TaskRunner(task)(progress_callback=progress)
        self.assertEqual(task.num_steps, len(progress_count))

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_has_calls([mock.call(0), mock.call(1), mock.call(1)])
        self.assertEqual(3, self.mock_sleep.call_count)

    def test_start_run_progress(self) -> None:
        progress_count: list[None] = []

        def progress() -> None:
            progress_count.append(None)

        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)
        runner.start()
        runner.run_to_completion(progress_callback=progress)
        self.assertEqual(task.num_steps - 1, len(progress_count))

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_has_calls([mock.call(1), mock.call(1)])
        self.assertEqual(2, self.mock_sleep.call_count)

    def test_run_as_task_progress(self) -> None:
        progress_count: list[None] = []

        def progress() -> None:
            progress_count.append(None)

        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        tr = scheduler.TaskRunner(task)
        rt = tr.as_task(progress_callback=progress)
        for _step in rt:
            pass
        self.assertEqual(task.num_steps, len(progress_count))

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_not_called()

    def test_run_progress_exception(self) -> None:
        class TestException(Exception):
            pass

        progress_count: list[None] = []

        def progress() -> None:
            if progress_count:
                raise TestException
            progress_count.append(None)

        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        self.assertRaises(TestException, scheduler.TaskRunner(task), progress_callback=progress)
        self.assertEqual(1, len(progress_count))

        task.do_step.assert_has_calls([mock.call(1), mock.call(2)])
        self.assertEqual(2, task.do_step.call_count)
        self.mock_sleep.assert_has_calls([mock.call(0), mock.call(1)])
        self.assertEqual(2, self.mock_sleep.call_count)

    def test_start_run_progress_exception(self) -> None:
        class TestException(Exception):
            pass

        progress_count: list[None] = []

        def progress() -> None:
            if progress_count:
                raise TestException
            progress_count.append(None)

        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)
        runner.start()
        self.assertRaises(TestException, runner.run_to_completion, progress_callback=progress)
        self.assertEqual(1, len(progress_count))

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_has_calls([mock.call(1), mock.call(1)])
        self.assertEqual(2, self.mock_sleep.call_count)

    def test_run_as_task_progress_exception(self) -> None:
        class TestException(Exception):
            pass

        progress_count: list[None] = []

        def progress() -> None:
            if progress_count:
                raise TestException
            progress_count.append(None)

        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        tr = scheduler.TaskRunner(task)
        rt = tr.as_task(progress_callback=progress)
        next(rt)
        next(rt)
        self.assertRaises(TestException, next, rt)
        self.assertEqual(1, len(progress_count))

        task.do_step.assert_has_calls([mock.call(1), mock.call(2)])
        self.assertEqual(2, task.do_step.call_count)
        self.mock_sleep.assert_not_called()

    def test_run_progress_exception_swallow(self) -> None:
        class TestException(Exception):
            pass

        progress_count: list[None] = []

        def progress() -> None:
            try:
                if not progress_count:
                    raise TestException
            finally:
                progress_count.append(None)

        def task() -> Generator[Any, Any, None]:
            try:
                yield
            except TestException:
                yield

        scheduler.TaskRunner(task)(progress_callback=progress)
        self.assertEqual(2, len(progress_count))

        self.mock_sleep.assert_has_calls([mock.call(0), mock.call(1)])
        self.assertEqual(2, self.mock_sleep.call_count)

    def test_start_run_progress_exception_swallow(self) -> None:
        class TestException(Exception):
            pass

        progress_count: list[None] = []

        def progress() -> None:
            try:
                if not progress_count:
                    raise TestException
            finally:
                progress_count.append(None)

        def task() -> Generator[Any, Any, None]:
            yield
            try:
                yield
            except TestException:
                yield

        runner = scheduler.TaskRunner(task)
        runner.start()
        runner.run_to_completion(progress_callback=progress)
        self.assertEqual(2, len(progress_count))

        self.mock_sleep.assert_has_calls([mock.call(1), mock.call(1)])
        self.assertEqual(2, self.mock_sleep.call_count)

    def test_run_as_task_progress_exception_swallow(self) -> None:
        class TestException(Exception):
            pass

        progress_count: list[None] = []

        def progress() -> None:
            try:
                if not progress_count:
                    raise TestException
            finally:
                progress_count.append(None)

        def task() -> Generator[Any, Any, None]:
            try:
                yield
            except TestException:
                yield

        tr = scheduler.TaskRunner(task)
        rt = tr.as_task(progress_callback=progress)
        next(rt)
        next(rt)
        self.assertRaises(StopIteration, next, rt)
        self.assertEqual(2, len(progress_count))

    def test_args(self) -> None:
        args = ["foo", "bar"]
        kwargs = {"baz": "quux", "blarg": "wibble"}

        task = mock.Mock()

        runner = scheduler.TaskRunner(task, *args, **kwargs)
        runner(wait_time=None)

        task.assert_called_with(*args, **kwargs)

    def test_non_callable(self) -> None:
        self.assertRaises(AssertionError, scheduler.TaskRunner, object())

    def test_stepping(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)
        runner.start()

        self.assertFalse(runner.step())
        self.assertTrue(runner)
        self.assertFalse(runner.step())
        self.assertTrue(runner.step())
        self.assertFalse(runner)

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
        self.assertEqual(3, task.do_step.call_count)
        self.mock_sleep.assert_not_called()

    def test_start_no_steps(self) -> None:
        task = DummyTask(0)
        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)
        runner.start()

        self.assertTrue(runner.done())
        self.assertTrue(runner.step())

        task.do_step.assert_not_called()
        self.mock_sleep.assert_not_called()

    def test_start_only(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)

        self.assertFalse(runner.started())
        runner.start()
        self.assertTrue(runner.started())

        task.do_step.assert_called_once_with(1)
        self.mock_sleep.assert_not_called()

    def test_double_start(self) -> None:
        runner = scheduler.TaskRunner(DummyTask())

        runner.start()
        self.assertRaises(AssertionError, runner.start)

    def test_start_cancelled(self) -> None:
        runner = scheduler.TaskRunner(DummyTask())

        runner.cancel()
        self.assertRaises(AssertionError, runner.start)

    def test_call_double_start(self) -> None:
        runner = scheduler.TaskRunner(DummyTask())

        runner(wait_time=None)
        self.assertRaises(AssertionError, runner.start)

    def test_start_function(self) -> None:
        def task() -> None:
            pass

        runner = scheduler.TaskRunner(task)

        runner.start()
        self.assertTrue(runner.started())
        self.assertTrue(runner.done())
        self.assertTrue(runner.step())

    def test_repeated_done(self) -> None:
        task = DummyTask(0)
        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)

        runner.start()
        self.assertTrue(runner.step())
        self.assertTrue(runner.step())

        task.do_step.assert_not_called()
        self.mock_sleep.assert_not_called()

    def test_timeout(self) -> None:
        st = timeutils.wallclock()

        def task() -> Generator[Any, Any, None]:
            while True:
                yield

        self.patchobject(timeutils, "wallclock", side_effect=[st, st + 0.5, st + 1.5])

        runner = scheduler.TaskRunner(task)

        runner.start(timeout=1)
        self.assertTrue(runner)
        self.assertRaises(scheduler.Timeout, runner.step)

        self.assertEqual(3, timeutils.wallclock.call_count)  # type: ignore[attr-defined]

    def test_timeout_return(self) -> None:
        st = timeutils.wallclock()

        def task() -> Generator[Any, Any, None]:
            while True:
                try:
                    yield
                except scheduler.Timeout:
                    return

        self.patchobject(timeutils, "wallclock", side_effect=[st, st + 0.5, st + 1.5])

        runner = scheduler.TaskRunner(task)

        runner.start(timeout=1)
        self.assertTrue(runner)
        self.assertTrue(runner.step())
        self.assertFalse(runner)

        self.assertEqual(3, timeutils.wallclock.call_count)  # type: ignore[attr-defined]

    def test_timeout_swallowed(self) -> None:
        st = timeutils.wallclock()

        def task() -> Generator[Any, Any, None]:
            while True:
                try:
                    yield
                except scheduler.Timeout:
                    yield
                    self.fail("Task still running")

        self.patchobject(timeutils, "wallclock", side_effect=[st, st + 0.5, st + 1.5])

        runner = scheduler.TaskRunner(task)

        runner.start(timeout=1)
        self.assertTrue(runner)
        self.assertTrue(runner.step())
        self.assertFalse(runner)
        self.assertTrue(runner.step())

        self.assertEqual(3, timeutils.wallclock.call_count)  # type: ignore[attr-defined]

    def test_as_task_timeout(self) -> None:
        st = timeutils.wallclock()

        def task() -> Generator[Any, Any, None]:
            while True:
                yield

        self.patchobject(timeutils, "wallclock", side_effect=[st, st + 0.5, st + 1.5])

        runner = scheduler.TaskRunner(task)

        rt = runner.as_task(timeout=1)
        next(rt)
        self.assertTrue(runner)
        self.assertRaises(scheduler.Timeout, next, rt)

        self.assertEqual(3, timeutils.wallclock.call_count)  # type: ignore[attr-defined]

    def test_as_task_timeout_shorter(self) -> None:
        st = timeutils.wallclock()

        def task() -> Generator[Any, Any, None]:
            while True:
                yield

        self.patchobject(
            timeutils, "wallclock", side_effect=[st, st + 0.5, st + 0.7, st + 1.6, st + 2.6]
        )

        runner = scheduler.TaskRunner(task)
        runner.start(timeout=10)
        self.assertTrue(runner)

        rt = runner.as_task(timeout=1)
        next(rt)
        self.assertRaises(scheduler.Timeout, next, rt)

        self.assertEqual(5, timeutils.wallclock.call_count)  # type: ignore[attr-defined]

    def test_as_task_timeout_longer(self) -> None:
        st = timeutils.wallclock()

        def task() -> Generator[Any, Any, None]:
            while True:
                yield

        self.patchobject(timeutils, "wallclock", side_effect=[st, st + 0.5, st + 0.6, st + 1.5])

        runner = scheduler.TaskRunner(task)
        runner.start(timeout=1)
        self.assertTrue(runner)

        rt = runner.as_task(timeout=10)
        self.assertRaises(scheduler.Timeout, next, rt)

        self.assertEqual(4, timeutils.wallclock.call_count)  # type: ignore[attr-defined]

    def test_cancel_not_started(self) -> None:
        task = DummyTask(1)

        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)

        self.assertFalse(runner.started())

        runner.cancel()

        self.assertTrue(runner.done())

        task.do_step.assert_not_called()
        self.mock_sleep.assert_not_called()

    def test_cancel_done(self) -> None:
        task = DummyTask(1)

        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)

        self.assertFalse(runner.started())
        runner.start()
        self.assertTrue(runner.started())
        self.assertTrue(runner.step())
        self.assertTrue(runner.done())

        runner.cancel()

        self.assertTrue(runner.done())
        self.assertTrue(runner.step())

        task.do_step.assert_called_once_with(1)
        self.mock_sleep.assert_not_called()

    def test_cancel(self) -> None:
        task = DummyTask(3)

        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)

        self.assertFalse(runner.started())
        runner.start()
        self.assertTrue(runner.started())

        self.assertFalse(runner.step())
        runner.cancel()
        self.assertTrue(runner.step())

        task.do_step.assert_has_calls([mock.call(1), mock.call(2)])
        self.assertEqual(2, task.do_step.call_count)
        self.mock_sleep.assert_not_called()

    def test_cancel_grace_period(self) -> None:
        st = timeutils.wallclock()
        task = DummyTask(5)

        task.do_step = mock.Mock(return_value=None)
        self.patchobject(timeutils, "wallclock", side_effect=[st, st + 0.5, st + 1.0, st + 1.5])

        runner = scheduler.TaskRunner(task)

        self.assertFalse(runner.started())
        runner.start()
        self.assertTrue(runner.started())

        self.assertFalse(runner.step())
        runner.cancel(grace_period=1.0)
        self.assertFalse(runner.step())
        self.assertFalse(runner.step())
        self.assertTrue(runner.step())

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3), mock.call(4)])
        self.assertEqual(4, task.do_step.call_count)
        self.mock_sleep.assert_not_called()
        self.assertEqual(4, timeutils.wallclock.call_count)  # type: ignore[attr-defined]

    def test_cancel_grace_period_before_timeout(self) -> None:
        st = timeutils.wallclock()
        task = DummyTask(5)

        task.do_step = mock.Mock(return_value=None)
        self.patchobject(
            timeutils,
            "wallclock",
            side_effect=[st, st + 0.1, st + 0.2, st + 0.2, st + 0.5, st + 1.0, st + 1.5],
        )

        runner = scheduler.TaskRunner(task)

        self.assertFalse(runner.started())
        runner.start(timeout=10)
        self.assertTrue(runner.started())

        self.assertFalse(runner.step())
        runner.cancel(grace_period=1.0)
        self.assertFalse(runner.step())
        self.assertFalse(runner.step())
        self.assertTrue(runner.step())

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3), mock.call(4)])
        self.assertEqual(4, task.do_step.call_count)
        self.mock_sleep.assert_not_called()
        self.assertEqual(7, timeutils.wallclock.call_count)  # type: ignore[attr-defined]

    def test_cancel_grace_period_after_timeout(self) -> None:
        st = timeutils.wallclock()
        task = DummyTask(5)

        task.do_step = mock.Mock(return_value=None)
        self.patchobject(
            timeutils,
            "wallclock",
            side_effect=[st, st + 0.1, st + 0.2, st + 0.2, st + 0.5, st + 1.0, st + 1.5],
        )

        runner = scheduler.TaskRunner(task)

        self.assertFalse(runner.started())
        runner.start(timeout=1.25)
        self.assertTrue(runner.started())

        self.assertFalse(runner.step())
        runner.cancel(grace_period=3)
        self.assertFalse(runner.step())
        self.assertFalse(runner.step())
        self.assertRaises(scheduler.Timeout, runner.step)

        task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3), mock.call(4)])
        self.assertEqual(4, task.do_step.call_count)
        self.mock_sleep.assert_not_called()
        self.assertEqual(7, timeutils.wallclock.call_count)  # type: ignore[attr-defined]

    def test_cancel_grace_period_not_started(self) -> None:
        task = DummyTask(1)

        task.do_step = mock.Mock(return_value=None)

        runner = scheduler.TaskRunner(task)

        self.assertFalse(runner.started())

        runner.cancel(grace_period=0.5)

        self.assertTrue(runner.done())

        task.do_step.assert_not_called()
        self.mock_sleep.assert_not_called()


class TaskSleepTest(common.SchedulerTestCase):
    def setUp(self) -> None:
        super().setUp()
        scheduler.ENABLE_SLEEP = True
        self.mock_sleep = self.patchobject(time, "sleep", return_value=None)

    def test_sleep(self) -> None:
        sleep_time = 42

        runner = scheduler.TaskRunner(DummyTask())
        runner(wait_time=sleep_time)

        self.mock_sleep.assert_any_call(0)
        self.mock_sleep.assert_called_with(sleep_time)

    def test_sleep_zero(self) -> None:
        runner = scheduler.TaskRunner(DummyTask())
        runner(wait_time=0)

        self.mock_sleep.assert_called_with(0)

    def test_sleep_none(self) -> None:
        runner = scheduler.TaskRunner(DummyTask())
        runner(wait_time=None)

        self.mock_sleep.assert_not_called()


class TimeoutTest(common.SchedulerTestCase):
    def test_compare(self) -> None:
        task = scheduler.TaskRunner(DummyTask())

        earlier = scheduler.Timeout(task, 10)
        time.sleep(0.01)
        later = scheduler.Timeout(task, 10)

        self.assertTrue(earlier.earlier_than(later))
        self.assertFalse(later.earlier_than(earlier))


class DescriptionTest(common.SchedulerTestCase):
    def setUp(self) -> None:
        super().setUp()

    def test_func(self) -> None:
        def f() -> None:
            pass

        self.assertEqual("f", scheduler.task_description(f))

    def test_lambda(self) -> None:
        lam = lambda: None  # noqa: E731

        self.assertEqual("<lambda>", scheduler.task_description(lam))

    def test_method(self) -> None:
        class C:
            def __str__(self) -> str:
                return 'C "o"'

            def __repr__(self) -> str:
                return "o"

            def m(self) -> None:
                pass

        self.assertEqual('m from C "o"', scheduler.task_description(C().m))

    def test_object(self) -> None:
        class C:
            def __str__(self) -> str:
                return 'C "o"'

            def __repr__(self) -> str:
                return "o"

            def __call__(self) -> None:
                pass

        self.assertEqual("o", scheduler.task_description(C()))

    def test_unicode(self) -> None:
        class C:
            def __str__(self) -> str:
                return 'C "\u2665"'

            def __repr__(self) -> str:
                return "\u2665"

            def __call__(self) -> None:
                pass

            def m(self) -> None:
                pass

        self.assertEqual('m from C "\u2665"', scheduler.task_description(C().m))
        self.assertEqual("\u2665", scheduler.task_description(C()))


class WrapperTaskTest(common.SchedulerTestCase):
    def setUp(self) -> None:
        super().setUp()

    def test_wrap(self) -> None:
        child_tasks = [DummyTask() for i in range(3)]

        @scheduler.wrappertask
        def task() -> Generator[Any, Any, None]:
            for child_task in child_tasks:
                yield child_task()

            yield

        for child_task in child_tasks:
            child_task.do_step = mock.Mock(return_value=None)
        self.patchobject(scheduler.TaskRunner, "_sleep", return_value=None)

        scheduler.TaskRunner(task)()

        for child_task in child_tasks:
            child_task.do_step.assert_has_calls([mock.call(1), mock.call(2), mock.call(3)])
            self.assertEqual(3, child_task.do_step.call_count)
        scheduler.TaskRunner._sleep.assert_any_call(0)  # type: ignore[attr-defined]
        scheduler.TaskRunner._sleep.assert_called_with(1)  # type: ignore[attr-defined]
        self.assertEqual(
            1 + len(child_tasks) * 3,
            scheduler.TaskRunner._sleep.call_count,  # type: ignore[attr-defined]
        )

    def test_parent_yield_value(self) -> None:
        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            yield
            yield 3
            yield iter([1, 2, 4])

        task = parent_task()

        self.assertIsNone(next(task))
        self.assertEqual(3, next(task))
        self.assertEqual([1, 2, 4], list(next(task)))

    def test_child_yield_value(self) -> None:
        def child_task() -> Generator[Any, Any, None]:
            yield
            yield 3
            yield iter([1, 2, 4])

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            yield child_task()

        task = parent_task()

        self.assertIsNone(next(task))
        self.assertEqual(3, next(task))
        self.assertEqual([1, 2, 4], list(next(task)))

    def test_child_exception(self) -> None:
        class MyException(Exception):
            pass

        def child_task() -> Generator[Any, Any, None]:
            yield

            raise MyException()

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield child_task()
            except MyException:
                raise
            else:
                self.fail("No exception raised in parent_task")

        task = parent_task()
        next(task)
        self.assertRaises(MyException, next, task)

    def test_child_exception_exit(self) -> None:
        class MyException(Exception):
            pass

        def child_task() -> Generator[Any, Any, None]:
            yield

            raise MyException()

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield child_task()
            except MyException:
                return
            else:
                self.fail("No exception raised in parent_task")

        task = parent_task()
        next(task)
        self.assertRaises(StopIteration, next, task)

    def test_child_exception_swallow(self) -> None:
        class MyException(Exception):
            pass

        def child_task() -> Generator[Any, Any, None]:
            yield

            raise MyException()

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield child_task()
            except MyException:
                yield
            else:
                self.fail("No exception raised in parent_task")

            yield

        task = parent_task()
        next(task)
        next(task)

    def test_child_exception_swallow_next(self) -> None:
        class MyException(Exception):
            pass

        def child_task() -> Generator[Any, Any, None]:
            yield

            raise MyException()

        dummy = DummyTask()

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield child_task()
            except MyException:
                pass
            else:
                self.fail("No exception raised in parent_task")

            yield dummy()

        task = parent_task()
        next(task)

        dummy.do_step = mock.Mock(return_value=None)
        for _i in range(1, dummy.num_steps + 1):
            next(task)
        self.assertRaises(StopIteration, next, task)

        dummy.do_step.assert_has_calls([mock.call(i) for i in range(1, dummy.num_steps + 1)])
        self.assertEqual(dummy.num_steps, dummy.do_step.call_count)

    def test_thrown_exception_swallow_next(self) -> None:
        class MyException(Exception):
            pass

        dummy = DummyTask()

        @scheduler.wrappertask
        def child_task() -> Generator[Any, Any, None]:
            try:
                yield
            except MyException:
                yield dummy()
            else:
                self.fail("No exception raised in child_task")

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            yield child_task()

        task = parent_task()

        dummy.do_step = mock.Mock(return_value=None)

        next(task)
        task.throw(MyException)

        for _i in range(2, dummy.num_steps + 1):
            next(task)
        self.assertRaises(StopIteration, next, task)

        dummy.do_step.assert_has_calls([mock.call(i) for i in range(1, dummy.num_steps + 1)])
        self.assertEqual(dummy.num_steps, dummy.do_step.call_count)

    def test_thrown_exception_raise(self) -> None:
        class MyException(Exception):
            pass

        dummy = DummyTask()

        @scheduler.wrappertask
        def child_task() -> Generator[Any, Any, None]:
            try:
                yield
            except MyException:
                raise
            else:
                self.fail("No exception raised in child_task")

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield child_task()
            except MyException:
                yield dummy()

        task = parent_task()

        dummy.do_step = mock.Mock(return_value=None)

        next(task)
        task.throw(MyException)

        for _i in range(2, dummy.num_steps + 1):
            next(task)
        self.assertRaises(StopIteration, next, task)

        dummy.do_step.assert_has_calls([mock.call(i) for i in range(1, dummy.num_steps + 1)])
        self.assertEqual(dummy.num_steps, dummy.do_step.call_count)

    def test_thrown_exception_exit(self) -> None:
        class MyException(Exception):
            pass

        dummy = DummyTask()

        @scheduler.wrappertask
        def child_task() -> Generator[Any, Any, None]:
            try:
                yield
            except MyException:
                return
            else:
                self.fail("No exception raised in child_task")

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            yield child_task()
            yield dummy()

        task = parent_task()

        dummy.do_step = mock.Mock(return_value=None)

        next(task)
        task.throw(MyException)

        for _i in range(2, dummy.num_steps + 1):
            next(task)
        self.assertRaises(StopIteration, next, task)

        dummy.do_step.assert_has_calls([mock.call(i) for i in range(1, dummy.num_steps + 1)])
        self.assertEqual(dummy.num_steps, dummy.do_step.call_count)

    def test_parent_exception(self) -> None:
        class MyException(Exception):
            pass

        def child_task() -> Generator[Any, Any, None]:
            yield

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            yield child_task()
            raise MyException()

        task = parent_task()
        next(task)
        self.assertRaises(MyException, next, task)

    def test_parent_throw(self) -> None:
        class MyException(Exception):
            pass

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield DummyTask()()
            except MyException:
                raise
            else:
                self.fail("No exception raised in parent_task")

        task = parent_task()
        next(task)
        self.assertRaises(MyException, task.throw, MyException())

    def test_parent_throw_exit(self) -> None:
        class MyException(Exception):
            pass

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield DummyTask()()
            except MyException:
                return
            else:
                self.fail("No exception raised in parent_task")

        task = parent_task()
        next(task)
        self.assertRaises(StopIteration, task.throw, MyException())

    def test_parent_cancel(self) -> None:
        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield
            except GeneratorExit:
                raise
            else:
                self.fail("parent_task not closed")

        task = parent_task()
        next(task)
        task.close()

    def test_parent_cancel_exit(self) -> None:
        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield
            except GeneratorExit:
                return
            else:
                self.fail("parent_task not closed")

        task = parent_task()
        next(task)
        task.close()

    def test_cancel(self) -> None:
        def child_task() -> Generator[Any, Any, None]:
            try:
                yield
            except GeneratorExit:
                raise
            else:
                self.fail("child_task not closed")

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield child_task()
            except GeneratorExit:
                raise
            else:
                self.fail("parent_task not closed")

        task = parent_task()
        next(task)
        task.close()

    def test_cancel_exit(self) -> None:
        def child_task() -> Generator[Any, Any, None]:
            try:
                yield
            except GeneratorExit:
                return
            else:
                self.fail("child_task not closed")

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield child_task()
            except GeneratorExit:
                raise
            else:
                self.fail("parent_task not closed")

        task = parent_task()
        next(task)
        task.close()

    def test_cancel_parent_exit(self) -> None:
        def child_task() -> Generator[Any, Any, None]:
            try:
                yield
            except GeneratorExit:
                return
            else:
                self.fail("child_task not closed")

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield child_task()
            except GeneratorExit:
                return
            else:
                self.fail("parent_task not closed")

        task = parent_task()
        next(task)
        task.close()


# ---- spawnkit's own tests: the rules of the spec that the ported tests leave open -------------


class _Boom(Exception):
    pass


def _recording_task(
    log: list[str],
    steps: dict[str, int] | None = None,
    fail: dict[tuple[str, int], BaseException] | None = None,
) -> Callable[[str], Generator[None, None, None]]:
    """A task for a key that logs each of its steps (``'A1'``), and its closing (``'A-closed'``).

    It takes ``steps[key]`` steps (3 by default) and raises ``fail[(key, step)]`` at that step.
    """

    def task(key: str) -> Generator[None, None, None]:
        try:
            for i in range(1, (steps or {}).get(key, 3) + 1):
                log.append(f"{key}{i}")
                if fail and (key, i) in fail:
                    raise fail[(key, i)]
                yield
        except GeneratorExit:
            log.append(f"{key}-closed")
            raise

    return task


class OwnTaskRunnerTest(common.SchedulerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mock_sleep = self.patchobject(scheduler.TaskRunner, "_sleep", return_value=None)

    def test_str(self) -> None:
        def my_task() -> None:
            pass

        runner = scheduler.TaskRunner(my_task)
        self.assertEqual("Task my_task", str(runner))
        self.assertEqual("my_task", runner.name)

    def test_step_before_start(self) -> None:
        runner = scheduler.TaskRunner(DummyTask())
        self.assertRaises(AssertionError, runner.step)

    def test_run_to_completion_not_started(self) -> None:
        runner = scheduler.TaskRunner(DummyTask())
        self.assertRaises(AssertionError, runner.run_to_completion)

    def test_call_after_start(self) -> None:
        runner = scheduler.TaskRunner(DummyTask())
        runner.start()
        self.assertRaises(AssertionError, runner)

    def test_call_after_cancel(self) -> None:
        runner = scheduler.TaskRunner(DummyTask())
        runner.cancel()
        self.assertRaises(AssertionError, runner)

    def test_call_with_no_wait_time_passes_none_even_first(self) -> None:
        # As the original: wait_time=None means no sleep at all, the first one included.
        scheduler.TaskRunner(DummyTask())(wait_time=None)
        self.assertEqual(
            [mock.call(None), mock.call(None), mock.call(None)], self.mock_sleep.call_args_list
        )

    def test_call_post_func_after_the_last_step(self) -> None:
        log: list[str] = []
        task = DummyTask()
        task.do_step = mock.Mock(side_effect=lambda i: log.append(f"step {i}"))

        scheduler.TaskRunner(task)(post_func=lambda: log.append("post"))

        self.assertEqual(["step 1", "step 2", "step 3", "post"], log)

    def test_post_func_non_generator(self) -> None:
        post = mock.Mock()
        scheduler.TaskRunner(lambda: 42)(post_func=post)
        post.assert_called_once_with()

    def test_post_func_when_resuming_a_done_runner(self) -> None:
        runner = scheduler.TaskRunner(DummyTask(1))
        runner.start()
        self.assertFalse(runner.done())
        post = mock.Mock()

        self.assertEqual([], list(runner.as_task(post_func=post)))

        self.assertTrue(runner.done())
        post.assert_called_once_with()

    def test_post_func_not_called_when_task_returns_on_thrown_exception(self) -> None:
        def task() -> Generator[None, None, None]:
            try:
                yield
            except _Boom:
                return

        post = mock.Mock()
        rt = scheduler.TaskRunner(task).as_task(post_func=post)
        next(rt)
        self.assertRaises(StopIteration, rt.throw, _Boom())
        post.assert_not_called()

    def test_post_func_stop_iteration_ends_quietly(self) -> None:
        post = mock.Mock(side_effect=StopIteration)
        runner = scheduler.TaskRunner(DummyTask())
        self.assertEqual([None] * 3, list(runner.as_task(post_func=post)))
        post.assert_called_once_with()

    def test_post_func_exception_propagates(self) -> None:
        post = mock.Mock(side_effect=_Boom)
        self.assertRaises(_Boom, scheduler.TaskRunner(DummyTask()), post_func=post)

    def test_as_task_is_lazy(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock()
        runner = scheduler.TaskRunner(task)
        rt = runner.as_task()
        self.assertFalse(runner.started())
        next(rt)
        self.assertTrue(runner.started())
        task.do_step.assert_called_once_with(1)

    def test_as_task_progress_callback_before_each_step(self) -> None:
        log: list[str] = []
        task = DummyTask()
        task.do_step = mock.Mock(side_effect=lambda i: log.append(f"step {i}"))

        for _ in scheduler.TaskRunner(task).as_task(progress_callback=lambda: log.append("cb")):
            pass

        self.assertEqual(["step 1", "cb", "step 2", "cb", "step 3", "cb"], log)

    def test_as_task_resuming_steps_at_once(self) -> None:
        task = DummyTask()
        task.do_step = mock.Mock()
        runner = scheduler.TaskRunner(task)
        runner.start()
        self.assertEqual(1, task.do_step.call_count)

        rt = runner.as_task()
        next(rt)
        self.assertEqual(2, task.do_step.call_count)

    def test_as_task_thrown_timeout_reaches_task(self) -> None:
        seen: list[BaseException] = []

        def task() -> Generator[None, None, None]:
            try:
                yield
            except scheduler.Timeout as exc:
                seen.append(exc)
                yield

        runner = scheduler.TaskRunner(task)
        rt = runner.as_task()
        next(rt)
        timeout = scheduler.Timeout(runner, 1)
        rt.throw(timeout)
        self.assertEqual([timeout], seen)
        self.assertFalse(runner.done())
        self.assertRaises(StopIteration, next, rt)
        self.assertTrue(runner.done())

    def test_as_task_exception_raised_by_task_marks_done(self) -> None:
        def task() -> Generator[None, None, None]:
            try:
                yield
            except _Boom:
                raise ValueError("converted") from None

        runner = scheduler.TaskRunner(task)
        rt = runner.as_task()
        next(rt)
        self.assertRaises(ValueError, rt.throw, _Boom())
        self.assertTrue(runner.done())

    def test_poll_period_does_not_read_the_clock(self) -> None:
        wallclock = self.patchobject(timeutils, "wallclock", return_value=100.0)
        task = DummyTask(delays=[3, None, None])
        task.do_step = mock.Mock()
        runner = scheduler.TaskRunner(task)

        runner.start(timeout=10)  # one reading for the timeout, one before step 1
        self.assertEqual(2, wallclock.call_count)
        self.assertFalse(runner.step())
        self.assertFalse(runner.step())
        self.assertEqual(2, wallclock.call_count)
        self.assertEqual(1, task.do_step.call_count)
        self.assertFalse(runner.step())  # the third step advances the task again
        self.assertEqual(3, wallclock.call_count)
        self.assertEqual(2, task.do_step.call_count)

    def test_poll_period_of_other_values_is_one(self) -> None:
        count = []

        def task() -> Generator[Any, None, None]:
            for value in (0, -5, "2", 2.5, None):
                count.append(value)
                yield value

        runner = scheduler.TaskRunner(task)
        runner.start()
        for _ in range(4):
            self.assertFalse(runner.step())
        self.assertEqual(5, len(count))
        self.assertTrue(runner.step())

    def test_cancel_closes_the_generator(self) -> None:
        log: list[str] = []
        runner = scheduler.TaskRunner(_recording_task(log), "A")
        runner.start()
        runner.cancel()
        self.assertEqual(["A1", "A-closed"], log)
        self.assertTrue(runner.done())
        self.assertFalse(runner)

    def test_cancel_grace_period_then_closed_not_timed_out(self) -> None:
        log: list[str] = []
        runner = scheduler.TaskRunner(_recording_task(log, steps={"A": 10}), "A")
        runner.start()
        runner.cancel(grace_period=2)
        self.assertFalse(runner.done())
        self.clock.now += 1
        self.assertFalse(runner.step())
        self.clock.now += 1.5
        self.assertTrue(runner.step())  # no Timeout raised: a TimedCancel only closes
        self.assertEqual(["A1", "A2", "A-closed"], log)

    def test_timeout_converted_by_task_propagates_from_step(self) -> None:
        def task() -> Generator[None, None, None]:
            try:
                while True:
                    yield
            except scheduler.Timeout:
                raise _Boom("cleanup failed") from None

        runner = scheduler.TaskRunner(task)
        runner.start(timeout=5)
        self.clock.now += 6
        self.assertRaises(_Boom, runner.step)
        self.assertTrue(runner.done())

    def test_timeout_not_caught_by_except_exception(self) -> None:
        def task() -> Generator[None, None, None]:
            while True:
                try:
                    yield
                except Exception:
                    self.fail("Timeout caught as an Exception")

        runner = scheduler.TaskRunner(task)
        runner.start(timeout=5)
        self.clock.now += 6
        self.assertRaises(scheduler.Timeout, runner.step)


class OwnSleepTest(common.SchedulerTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.mock_sleep = self.patchobject(time, "sleep")

    def test_sleep_enabled(self) -> None:
        scheduler.ENABLE_SLEEP = True
        scheduler.TaskRunner(DummyTask())._sleep(5)
        self.mock_sleep.assert_called_once_with(5)

    def test_sleep_disabled(self) -> None:
        scheduler.ENABLE_SLEEP = False
        scheduler.TaskRunner(DummyTask())._sleep(5)
        self.mock_sleep.assert_not_called()

    def test_sleep_none(self) -> None:
        scheduler.ENABLE_SLEEP = True
        scheduler.TaskRunner(DummyTask())._sleep(None)
        self.mock_sleep.assert_not_called()

    def test_run_to_completion_none_never_sleeps(self) -> None:
        scheduler.ENABLE_SLEEP = True
        runner = scheduler.TaskRunner(DummyTask())
        runner.start()
        runner.run_to_completion(wait_time=None)
        self.mock_sleep.assert_not_called()


class OwnTimeoutTest(common.SchedulerTestCase):
    def setUp(self) -> None:
        super().setUp()

        def name() -> None:
            pass

        self.runner = scheduler.TaskRunner(name)

    def test_hierarchy(self) -> None:
        self.assertTrue(issubclass(scheduler.Timeout, BaseException))
        self.assertFalse(issubclass(scheduler.Timeout, Exception))
        self.assertTrue(issubclass(scheduler.TimedCancel, scheduler.Timeout))

    def test_message(self) -> None:
        self.assertEqual("Task name Timed out", str(scheduler.Timeout(self.runner, 1)))

    def test_expired(self) -> None:
        timeout = scheduler.Timeout(self.runner, 5)
        self.assertFalse(timeout.expired())
        self.clock.now += 5
        self.assertFalse(timeout.expired())  # only strictly after the end
        self.clock.now += 0.001
        self.assertTrue(timeout.expired())

    def test_earlier_than(self) -> None:
        first = scheduler.Timeout(self.runner, 5)
        same = scheduler.TimedCancel(self.runner, 5)
        later = scheduler.Timeout(self.runner, 6)
        self.assertTrue(first.earlier_than(None))
        self.assertTrue(first.earlier_than(later))
        self.assertFalse(later.earlier_than(first))
        self.assertFalse(first.earlier_than(same))
        self.assertFalse(same.earlier_than(first))

    def test_trigger_task_returns(self) -> None:
        def task() -> Generator[None, None, None]:
            try:
                yield
            except scheduler.Timeout:
                return

        gen = task()
        next(gen)
        self.assertTrue(scheduler.Timeout(self.runner, 1).trigger(gen))

    def test_trigger_task_swallows(self) -> None:
        log: list[str] = []

        def task() -> Generator[None, None, None]:
            try:
                yield
            except scheduler.Timeout:
                log.append("timeout")
            try:
                yield
            except GeneratorExit:
                log.append("closed")
                raise

        gen = task()
        next(gen)
        self.assertFalse(scheduler.Timeout(self.runner, 1).trigger(gen))
        self.assertEqual(["timeout", "closed"], log)
        self.assertRaises(StopIteration, next, gen)

    def test_trigger_task_raises(self) -> None:
        def task() -> Generator[None, None, None]:
            try:
                yield
            except scheduler.Timeout:
                raise _Boom from None

        gen = task()
        next(gen)
        self.assertRaises(_Boom, scheduler.Timeout(self.runner, 1).trigger, gen)

    def test_timed_cancel_trigger_closes(self) -> None:
        log: list[str] = []

        def task() -> Generator[None, None, None]:
            try:
                yield
            except scheduler.Timeout:
                log.append("timeout")
            except GeneratorExit:
                log.append("closed")
                raise

        gen = task()
        next(gen)
        self.assertFalse(scheduler.TimedCancel(self.runner, 1).trigger(gen))
        self.assertEqual(["closed"], log)


class OwnExceptionGroupTest(common.SchedulerTestCase):
    def test_is_not_the_builtin(self) -> None:
        import builtins

        self.assertIsNot(builtins.ExceptionGroup, scheduler.ExceptionGroup)
        self.assertTrue(issubclass(scheduler.ExceptionGroup, Exception))
        self.assertFalse(issubclass(scheduler.ExceptionGroup, builtins.BaseExceptionGroup))

    def test_empty(self) -> None:
        group = scheduler.ExceptionGroup()
        self.assertEqual([], group.exceptions)
        self.assertEqual("[]", str(group))

    def test_takes_any_iterable(self) -> None:
        ex = ValueError("v")
        self.assertEqual([ex], scheduler.ExceptionGroup(iter([ex])).exceptions)


class OwnDescriptionTest(common.SchedulerTestCase):
    def test_other_callables_give_repr(self) -> None:
        def f(x: int) -> int:
            return x

        partial = functools.partial(f, 1)
        self.assertEqual(repr(partial), scheduler.task_description(partial))
        self.assertEqual(repr(len), scheduler.task_description(len))


class OwnWrapperTaskTest(common.SchedulerTestCase):
    def test_keeps_the_name(self) -> None:
        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            yield

        self.assertEqual("parent_task", parent_task.__name__)

    def test_parent_without_yield(self) -> None:
        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            return
            yield  # a generator all the same

        self.assertEqual([], list(parent_task()))

    def test_send_reaches_the_subtask(self) -> None:
        received: list[Any] = []

        def child_task() -> Generator[None, Any, None]:
            received.append((yield))
            received.append((yield))

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            yield child_task()

        task = parent_task()
        next(task)
        task.send("a")
        self.assertRaises(StopIteration, task.send, "b")
        self.assertEqual(["a", "b"], received)

    def test_subtask_return_value_is_sent_to_the_parent(self) -> None:
        results: list[Any] = []

        def child_task() -> Generator[None, None, int]:
            yield
            return 42

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            results.append((yield child_task()))
            results.append((yield "plain"))

        task = parent_task()
        self.assertIsNone(next(task))
        self.assertEqual("plain", next(task))
        self.assertRaises(StopIteration, task.send, "sent")
        self.assertEqual([42, "sent"], results)

    def test_thrown_into_a_plain_yield_reaches_the_parent(self) -> None:
        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield "plain"
            except _Boom:
                yield "caught"

        task = parent_task()
        next(task)
        self.assertEqual("caught", task.throw(_Boom()))

    def test_close_closes_subtask_then_parent(self) -> None:
        log: list[str] = []

        def child_task() -> Generator[None, None, None]:
            try:
                yield
            finally:
                log.append("child")

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            try:
                yield child_task()
            finally:
                log.append("parent")

        task = parent_task()
        next(task)
        task.close()
        self.assertEqual(["child", "parent"], log)

    def test_drives_as_a_task_runner(self) -> None:
        log: list[str] = []

        @scheduler.wrappertask
        def parent_task() -> Generator[Any, Any, None]:
            yield _recording_task(log)("A")
            yield _recording_task(log)("B")

        scheduler.TaskRunner(parent_task)(wait_time=None)
        self.assertEqual(["A1", "A2", "A3", "B1", "B2", "B3"], log)


class OwnDependencyTaskGroupTest(common.SchedulerTestCase):
    def test_default_name_and_repr(self) -> None:
        deps = dependencies.Dependencies([("b", "a")])
        tg = scheduler.DependencyTaskGroup(deps)
        self.assertEqual(f"(<lambda>) {deps}", tg.name)
        self.assertEqual(f"DependencyTaskGroup((<lambda>) {deps})", repr(tg))

    def test_name_of_the_task(self) -> None:
        deps = dependencies.Dependencies([("a", None)])

        def run(key: str) -> None:
            pass

        self.assertEqual("(run) {a: {}}", scheduler.DependencyTaskGroup(deps, run).name)
        task = DummyTask()
        self.assertEqual(f"({task!r}) {{a: {{}}}}", scheduler.DependencyTaskGroup(deps, task).name)
        self.assertEqual("mine", scheduler.DependencyTaskGroup(deps, run, name="mine").name)

    def test_default_task_calls_the_keys(self) -> None:
        calls: list[str] = []

        def first() -> None:
            calls.append("first")

        def second() -> None:
            calls.append("second")

        deps = dependencies.Dependencies([(second, first)])
        scheduler.TaskRunner(scheduler.DependencyTaskGroup(deps))(wait_time=None)
        self.assertEqual(["first", "second"], calls)

    def test_reverse(self) -> None:
        log: list[str] = []
        deps = dependencies.Dependencies([("C", "B"), ("B", "A")])
        tg = scheduler.DependencyTaskGroup(deps, _recording_task(log), reverse=True)
        scheduler.TaskRunner(tg)(wait_time=None)
        self.assertEqual(["C1", "C2", "C3", "B1", "B2", "B3", "A1", "A2", "A3"], log)

    def test_finished_on_start_frees_dependents_at_once(self) -> None:
        calls: list[str] = []
        deps = dependencies.Dependencies([("C", "B"), ("B", "A")])
        tg = scheduler.DependencyTaskGroup(deps, calls.append)
        # No generator anywhere: all done in the first pass, without a yield.
        self.assertEqual([], list(tg()))
        self.assertEqual(["A", "B", "C"], calls)

    def test_mixed_plain_and_generator_tasks(self) -> None:
        log: list[str] = []
        recording = _recording_task(log, steps={"B": 2})

        def task(key: str) -> Generator[None, None, None] | None:
            if key == "A":
                log.append("A")
                return None
            return recording(key)

        deps = dependencies.Dependencies([("B", "A")])
        gen = scheduler.DependencyTaskGroup(deps, task)()
        next(gen)
        self.assertEqual(["A", "B1"], log)  # B started in the same pass as A
        next(gen)
        self.assertRaises(StopIteration, next, gen)
        self.assertEqual(["A", "B1", "B2"], log)

    def test_cancel_all(self) -> None:
        log: list[str] = []
        deps = dependencies.Dependencies([("A", None), ("B", None), ("C", "A")])
        tg = scheduler.DependencyTaskGroup(deps, _recording_task(log, steps={"A": 9, "B": 9}))
        gen = tg()
        next(gen)
        tg.cancel_all(grace_period=5)
        next(gen)  # within the grace period: A and B go on, C never starts
        self.assertEqual(["A1", "B1", "A2", "B2"], log)
        self.clock.now += 6
        self.assertRaises(StopIteration, next, gen)
        self.assertEqual(["A1", "B1", "A2", "B2", "A-closed", "B-closed"], log)

    def test_error_cancels_not_started_at_once_and_lets_running_finish(self) -> None:
        log: list[str] = []
        err = _Boom("B failed")
        deps = dependencies.Dependencies([("A", None), ("B", None), ("C", "A")])
        task = _recording_task(log, steps={"A": 4}, fail={("B", 2): err})
        tg = scheduler.DependencyTaskGroup(deps, task, error_wait_time=60)

        exc = self.assertRaises(_Boom, scheduler.TaskRunner(tg), wait_time=None)

        self.assertIs(err, exc)
        self.assertEqual(["A1", "B1", "A2", "B2", "A3", "A4"], log)  # no C

    def test_error_wait_time_expires(self) -> None:
        log: list[str] = []
        err = _Boom("B failed")
        deps = dependencies.Dependencies([("A", None), ("B", None)])
        task = _recording_task(log, steps={"A": 1000}, fail={("B", 1): err})
        gen = scheduler.DependencyTaskGroup(deps, task, error_wait_time=2.5)()

        exc: BaseException | None = None
        for _ in range(10):
            try:
                next(gen)
            except _Boom as caught:
                exc = caught
                break
            self.clock.now += 1
        self.assertIs(err, exc)
        # B fails on start; A is closed once the clock passes 2.5 s after that.
        self.assertEqual(["A1", "B1", "A2", "A3", "A-closed"], log)

    def test_error_wait_time_callable_asked_for_started_tasks_only(self) -> None:
        asked: list[str] = []

        def wait_time(key: str) -> float | None:
            asked.append(key)
            return None

        log: list[str] = []
        deps = dependencies.Dependencies([("A", None), ("B", None), ("C", "A")])
        task = _recording_task(log, fail={("B", 1): _Boom()})
        tg = scheduler.DependencyTaskGroup(deps, task, error_wait_time=wait_time)
        self.assertRaises(_Boom, scheduler.TaskRunner(tg), wait_time=None)
        # B is asked too: a runner whose task raised is not done until stepped again.
        self.assertEqual(["A", "B"], asked)
        self.assertEqual(["A1", "B1", "A-closed"], log)

    def test_first_raised_exception_wins(self) -> None:
        e1, e2 = _Boom("e1"), _Boom("e2")
        deps = dependencies.Dependencies([("A", None), ("B", None)])
        task = _recording_task([], fail={("A", 2): e1, ("B", 3): e2})
        tg = scheduler.DependencyTaskGroup(deps, task, error_wait_time=60)
        exc = self.assertRaises(_Boom, scheduler.TaskRunner(tg), wait_time=None)
        self.assertIs(e1, exc)

    def test_non_exception_from_subtask_cancels_all_and_propagates(self) -> None:
        class Fatal(BaseException):
            pass

        log: list[str] = []
        deps = dependencies.Dependencies([("A", None), ("B", None), ("C", "A")])
        task = _recording_task(log, steps={"A": 9}, fail={("B", 2): Fatal()})
        tg = scheduler.DependencyTaskGroup(deps, task, error_wait_time=60)
        self.assertRaises(Fatal, scheduler.TaskRunner(tg), wait_time=None)
        # No grace for A despite error_wait_time: closed at once.
        self.assertEqual(["A1", "B1", "A2", "B2", "A-closed"], log)

    def test_thrown_timeout_cancels_all_and_propagates(self) -> None:
        log: list[str] = []
        deps = dependencies.Dependencies([("A", None), ("B", None)])
        tg = scheduler.DependencyTaskGroup(deps, _recording_task(log), error_wait_time=60)
        gen = tg()
        next(gen)
        timeout = scheduler.Timeout(scheduler.TaskRunner(tg), 1)
        self.assertRaises(scheduler.Timeout, gen.throw, timeout)
        self.assertEqual(["A1", "B1", "A-closed", "B-closed"], log)

    def test_close_cancels_all(self) -> None:
        log: list[str] = []
        deps = dependencies.Dependencies([("A", None), ("B", "A")])
        gen = scheduler.DependencyTaskGroup(deps, _recording_task(log))()
        next(gen)
        gen.close()
        self.assertEqual(["A1", "A-closed"], log)

    def test_aggregate_independent_chains_finish(self) -> None:
        log: list[str] = []
        err = _Boom("A failed")
        deps = dependencies.Dependencies(
            [("A", None), ("B", "A"), ("C", "B"), ("D", None), ("E", "D")]
        )
        task = _recording_task(log, fail={("A", 2): err})
        tg = scheduler.DependencyTaskGroup(deps, task, aggregate_exceptions=True)

        exc = self.assertRaises(scheduler.ExceptionGroup, scheduler.TaskRunner(tg), wait_time=None)

        self.assertEqual([err], exc.exceptions)
        self.assertEqual(["A1", "A2"], [e for e in log if e[0] in "ABC"])
        self.assertEqual(["D1", "D2", "D3", "E1", "E2", "E3"], [e for e in log if e[0] in "DE"])

    def test_aggregate_diamond(self) -> None:
        log: list[str] = []
        e1, e2 = _Boom("A failed"), _Boom("X failed")
        deps = dependencies.Dependencies(
            [("B", "A"), ("C", "A"), ("D", "B"), ("D", "C"), ("X", None), ("Y", None)]
        )
        task = _recording_task(log, fail={("A", 1): e1, ("X", 2): e2})
        tg = scheduler.DependencyTaskGroup(deps, task, aggregate_exceptions=True)

        exc = self.assertRaises(scheduler.ExceptionGroup, scheduler.TaskRunner(tg), wait_time=None)

        self.assertEqual([e1, e2], exc.exceptions)
        self.assertEqual(["A1", "X1", "Y1", "X2", "Y2", "Y3"], log)

    def test_aggregate_thrown_exception_cancels_all(self) -> None:
        # The spec leaves it open; an exception from outside belongs to no sub-task.
        log: list[str] = []
        thrown = _Boom("from outside")
        deps = dependencies.Dependencies([("A", None), ("B", None)])
        tg = scheduler.DependencyTaskGroup(deps, _recording_task(log), aggregate_exceptions=True)
        gen = tg()
        next(gen)
        exc = self.assertRaises(scheduler.ExceptionGroup, gen.throw, thrown)
        self.assertEqual([thrown], exc.exceptions)
        self.assertEqual(["A1", "B1", "A-closed", "B-closed"], log)
