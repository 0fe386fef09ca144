"""A scheduler of resumable tasks, one step at a time, in a single thread.

A task is a callable. If calling it returns a generator, the task is resumable: each ``yield``
ends a step, and a :class:`TaskRunner` decides when to take the next one, checking a timeout
before each. A task that yields an integer ``n`` is advanced only on every ``n``-th step.
:class:`DependencyTaskGroup` runs one task per key of a
:class:`~spawnkit.core.dependencies.Dependencies` graph, each as soon as the keys it requires
are done, and :func:`wrappertask` lets a task drive sub-tasks.

Time is read only through ``timeutils.wallclock`` and slept only through
:meth:`TaskRunner._sleep`, so that tests can replace both.

API-compatible with OpenStack Heat's ``heat.engine.scheduler`` (Apache-2.0).
"""

from __future__ import annotations

import functools
import logging
import time
import types
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec

from spawnkit.core import timeutils

if TYPE_CHECKING:
    from spawnkit.core.taskgroup import DependencyTaskGroup, GracePeriod

__all__ = [
    "ENABLE_SLEEP",
    "DependencyTaskGroup",
    "ExceptionGroup",
    "GracePeriod",
    "TaskRunner",
    "TimedCancel",
    "Timeout",
    "task_description",
    "wrappertask",
]

LOG = logging.getLogger(__name__)

#: Whether :meth:`TaskRunner._sleep` really sleeps; tests turn it off.
ENABLE_SLEEP = True

_P = ParamSpec("_P")

def task_description(task: object) -> str:
    """Return a human-readable description of a task, to name it in logs.

    A function gives its name, a bound method ``'<name> from <object>'``, and anything else its
    ``repr()``.
    """
    name = getattr(task, "__name__", None)
    if name is not None and isinstance(task, types.MethodType | types.FunctionType):
        owner = getattr(task, "__self__", None)
        if owner is not None:
            return f"{name} from {owner}"
        return str(name)
    return repr(task)


class Timeout(BaseException):
    """Raised inside a task that has exceeded its allotted (wallclock) running time.

    A ``BaseException``, so that a task's ``except Exception`` does not swallow it by mistake.
    It lets the task clean up, or raise a different exception to tell the controlling task. A
    task that swallows it altogether is cancelled, and the controlling task is not told of the
    timeout.
    """

    def __init__(self, task_runner: TaskRunner, timeout: float) -> None:
        """Start a timeout of ``timeout`` seconds for ``task_runner``."""
        super().__init__(f"{task_runner} Timed out")
        self._duration = timeutils.Duration(timeout)

    def expired(self) -> bool:
        """Return True once the time is up."""
        return self._duration.expired()

    def trigger(self, generator: Generator[Any, Any, Any]) -> bool:
        """Throw this timeout into ``generator``.

        Return True if the task returned, False if it swallowed the timeout and yielded (it is
        then closed). An exception the task raises propagates.
        """
        try:
            generator.throw(self)
        except StopIteration:
            return True
        # The task swallowed the timeout and went on: it must not run again.
        generator.close()
        return False

    def earlier_than(self, other: Timeout | None) -> bool:
        """Return True if this ends before ``other``, or if there is no ``other``."""
        if other is None:
            return True
        assert isinstance(other, Timeout), "Invalid type for Timeout compare"
        return self._duration.endtime() < other._duration.endtime()


class TimedCancel(Timeout):
    """A cancellation that lets the task run for a grace period first."""

    def trigger(self, generator: Generator[Any, Any, Any]) -> bool:
        """Close ``generator``: the grace period is over."""
        generator.close()
        return False


class ExceptionGroup(Exception):
    """Container for multiple exceptions.

    Raised by :class:`DependencyTaskGroup` with ``aggregate_exceptions=True`` once all its tasks
    are finished, so that the individual exceptions can be acted upon. Not Python's built-in
    ``ExceptionGroup``: this one is a plain ``Exception`` with a mutable list.
    """

    def __init__(self, exceptions: Iterable[BaseException] | None = None) -> None:
        """Hold a list of ``exceptions``, empty by default."""
        self.exceptions: list[BaseException] = list(exceptions) if exceptions is not None else []
        super().__init__(self.exceptions)

    def __str__(self) -> str:
        return str([str(ex) for ex in self.exceptions])


class TaskRunner:
    """Wrapper for a resumable task (co-routine)."""

    def __init__(self, task: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Wrap ``task``, to be called with ``args`` and ``kwargs`` when started.

        The task may be a co-routine that yields between steps. One that wants to be advanced
        only on every n-th step of the runner yields the integer n: ``yield 2`` is advanced on
        every second step.
        """
        assert callable(task), "Task is not callable"

        self._task = task
        self._args = args
        self._kwargs = kwargs
        self._runner: Generator[Any, Any, Any] | None = None
        self._started = False
        self._done = False
        self._timeout: Timeout | None = None
        self._poll_period = 1
        self.name = task_description(task)

    def __str__(self) -> str:
        return f"Task {self.name}"

    def _sleep(self, wait_time: float | None) -> None:
        """Sleep ``wait_time`` seconds; no sleep if it is None or sleeping is disabled."""
        if ENABLE_SLEEP and wait_time is not None:
            LOG.debug("%s sleeping", self)
            time.sleep(wait_time)

    def __call__(
        self,
        wait_time: float | None = 1,
        timeout: float | None = None,
        progress_callback: Callable[[], Any] | None = None,
        post_func: Callable[[], Any] | None = None,
    ) -> None:
        """Start the task and run it to completion.

        Sleeps zero seconds before the second step, then ``wait_time`` seconds between the
        later ones; ``wait_time=None`` never sleeps at all, as in the original. See
        :meth:`as_task` for the other arguments.
        """
        assert not self.started(), "Task already started"

        first = True
        for _ in self.as_task(
            timeout=timeout, progress_callback=progress_callback, post_func=post_func
        ):
            self._sleep(0 if first and wait_time is not None else wait_time)
            first = False

    def start(self, timeout: float | None = None) -> None:
        """Call the task, and run its first step if it is resumable.

        With a ``timeout``, any attempt to step the task once that many seconds have passed
        raises a :class:`Timeout` inside it instead.
        """
        assert not self.started(), "Task already started"
        assert not self._done, "Task already cancelled"

        LOG.debug("%s starting", self)

        if timeout is not None:
            self._timeout = Timeout(self, timeout)

        result = self._task(*self._args, **self._kwargs)
        self._started = True
        if isinstance(result, types.GeneratorType):
            self._runner = result
            self.step()
        else:
            self._done = True
            LOG.debug("%s done (not resumable)", self)

    def step(self) -> bool:
        """Run another step of the task; return True once the task is complete."""
        if self._done:
            return True

        assert self._runner is not None, "Task not started"

        if self._poll_period > 1:
            self._poll_period -= 1
            return False

        if self._timeout is not None and self._timeout.expired():
            LOG.info("%s timed out", self)
            self._done = True
            self._timeout.trigger(self._runner)
            return True

        LOG.debug("%s running", self)
        try:
            poll_period = next(self._runner)
        except StopIteration:
            self._done = True
            LOG.debug("%s complete", self)
        else:
            if isinstance(poll_period, int):
                self._poll_period = max(poll_period, 1)
            else:
                self._poll_period = 1
        return self._done

    def run_to_completion(
        self,
        wait_time: float | None = 1,
        progress_callback: Callable[[], Any] | None = None,
    ) -> None:
        """Run an already started task to completion.

        Sleeps ``wait_time`` seconds between steps; pass None not to sleep.
        """
        assert self.started(), "Task not started"

        for _ in self.as_task(progress_callback=progress_callback):
            self._sleep(wait_time)

    def as_task(
        self,
        timeout: float | None = None,
        progress_callback: Callable[[], Any] | None = None,
        post_func: Callable[[], Any] | None = None,
    ) -> Generator[None, Any, None]:
        """Return a task that drives this runner, one step per ``yield``.

        It starts the runner if need be; if it is already started, it steps it at once and
        replaces its timeout only by an earlier ``timeout``. After each ``yield`` it calls
        ``progress_callback()``. An exception thrown in (or raised by ``progress_callback``) is
        thrown into the task; closing it cancels the runner. ``post_func()`` is called once the
        task has run to its end.
        """
        resuming = self.started()
        if not resuming:
            self.start(timeout=timeout)
        elif timeout is not None:
            new_timeout = Timeout(self, timeout)
            if new_timeout.earlier_than(self._timeout):
                self._timeout = new_timeout

        done = self.step() if resuming else self.done()
        while not done:
            try:
                yield
                if progress_callback is not None:
                    progress_callback()
            except GeneratorExit:
                self.cancel()
                raise
            except BaseException as exc:
                # Timeouts and the like thrown in from outside are the task's to handle too.
                assert self._runner is not None
                self._done = True
                try:
                    self._runner.throw(exc)
                except StopIteration:
                    return
                # The task swallowed it and yielded: it goes on.
                self._done = False
            else:
                done = self.step()

        if callable(post_func):
            try:
                post_func()
            except StopIteration:
                # Inside this generator it would become a RuntimeError (PEP 479).
                return

    def cancel(self, grace_period: float | None = None) -> None:
        """Cancel the task and mark it as done, at once or after ``grace_period`` seconds."""
        if self.done():
            return

        if not self.started() or grace_period is None:
            LOG.debug("%s cancelled", self)
            self._done = True
            if self._runner is not None:
                self._runner.close()
        else:
            timeout = TimedCancel(self, grace_period)
            if timeout.earlier_than(self._timeout):
                self._timeout = timeout

    def started(self) -> bool:
        """Return True if the task has been started."""
        return self._started

    def done(self) -> bool:
        """Return True if the task is complete."""
        return self._done

    def __bool__(self) -> bool:
        """Return True if there are steps remaining."""
        return not self.done()


def wrappertask(
    task: Callable[_P, Generator[Any, Any, Any]],
) -> Callable[_P, Generator[Any, Any, None]]:
    """Decorate a task that drives sub-tasks by yielding them.

    Each generator the task yields is driven to its end as by ``yield from`` (PEP 380): values
    sent, exceptions thrown and ``close()`` reach the sub-task, and its return value is sent
    back to the task. Any other value the task yields passes through unchanged. For example::

        @wrappertask
        def parent_task(self):
            self.setup()
            yield self.child_task()
            self.cleanup()

    An exception escaping a sub-task is thrown into the task, which may catch it and go on,
    return, or let it propagate.
    """

    @functools.wraps(task)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> Generator[Any, Any, None]:
        parent = task(*args, **kwargs)

        try:
            subtask = next(parent)
        except StopIteration:
            return

        while True:
            try:
                if isinstance(subtask, types.GeneratorType):
                    result = yield from subtask
                else:
                    result = yield subtask
            except GeneratorExit:
                parent.close()
                raise
            except BaseException as exc:
                try:
                    subtask = parent.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    subtask = parent.send(result)
                except StopIteration:
                    return

    return wrapper


def __getattr__(name: str) -> Any:
    # DependencyTaskGroup lives in spawnkit.core.taskgroup (which imports this module): named
    # here too, as in Heat's scheduler.
    if name in ("DependencyTaskGroup", "GracePeriod"):
        from spawnkit.core import taskgroup

        return getattr(taskgroup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
