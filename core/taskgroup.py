"""A group of resumable tasks with ordering dependencies (Heat's DependencyTaskGroup).

Importable from spawnkit.core.scheduler too, as in Heat.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from typing import Any

from spawnkit.core.dependencies import Dependencies, Graph
from spawnkit.core.scheduler import ExceptionGroup, TaskRunner, task_description

__all__ = ["DependencyTaskGroup", "GracePeriod"]

LOG = logging.getLogger(__name__)

#: What :class:`DependencyTaskGroup` takes as a grace period: seconds, None for no grace, or a
#: function of the task's key giving either.
GracePeriod = float | Callable[[Any], float | None] | None


class DependencyTaskGroup:
    """Task which manages group of subtasks that have ordering dependencies."""

    def __init__(
        self,
        dependencies: Dependencies[Any],
        task: Callable[[Any], Any] = lambda o: o(),
        reverse: bool = False,
        name: str | None = None,
        error_wait_time: GracePeriod = None,
        aggregate_exceptions: bool = False,
    ) -> None:
        """Make one :class:`TaskRunner` of ``task`` per key of ``dependencies``.

        By default the keys are tasks and are called; otherwise ``task`` is called with each
        key. ``reverse`` runs the graph backwards, requiring keys first. A cycle in the graph
        raises :class:`~spawnkit.core.dependencies.CircularDependencyException` here.

        When a sub-task fails, the tasks already running go on for up to ``error_wait_time``
        seconds (a number, None for none, or a function of the key giving either) before being
        cancelled, and the first exception is raised once all are done. With
        ``aggregate_exceptions``, only the failed task and those that require it, directly or
        not, are cancelled; independent chains go on, and all the exceptions are raised at the
        end in an :class:`ExceptionGroup`.
        """
        self._keys: list[Any] = list(dependencies)
        self._runners: dict[Any, TaskRunner] = {o: TaskRunner(task, o) for o in self._keys}
        self._graph: Graph[Any] = dependencies.graph(reverse=reverse)
        self.error_wait_time = error_wait_time
        self.aggregate_exceptions = aggregate_exceptions

        if name is None:
            task_name = getattr(task, "__name__", task_description(task))
            name = f"({task_name}) {dependencies}"
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"

    def __call__(self) -> Generator[None, Any, None]:
        """Return a co-routine that runs the task group."""
        raised_exceptions: list[Exception] = []
        thrown_exceptions: list[Exception] = []

        try:
            while any(self._runners.values()):
                # The sub-task being started or stepped, to blame if an exception comes.
                current: tuple[Any, TaskRunner] | None = None
                try:
                    for current in self._ready():
                        key, runner = current
                        runner.start()
                        if not runner:
                            del self._graph[key]
                    current = None

                    if self._graph:
                        try:
                            yield
                        except Exception as err:
                            thrown_exceptions.append(err)
                            raise

                    for current in self._running():
                        key, runner = current
                        if runner.step():
                            del self._graph[key]
                    current = None
                except Exception as err:
                    if self.aggregate_exceptions and current is not None:
                        self._cancel_recursively(*current)
                    else:
                        # Also for an exception thrown in from outside, which belongs to no
                        # sub-task: Heat would blame whichever one it had looked at last.
                        self.cancel_all(grace_period=self.error_wait_time)
                    raised_exceptions.append(err)
                except BaseException:
                    self.cancel_all()
                    raise

            if raised_exceptions:
                if self.aggregate_exceptions:
                    raise ExceptionGroup(raised_exceptions)
                if thrown_exceptions:
                    raise thrown_exceptions[-1]
                raise raised_exceptions[0]
        finally:
            # The exceptions' tracebacks hold this frame: break the cycle.
            del raised_exceptions
            del thrown_exceptions

    def cancel_all(self, grace_period: GracePeriod = None) -> None:
        """Cancel every task: not-started ones at once, running ones after ``grace_period``."""
        get_grace_period: Callable[[Any], float | None]
        if callable(grace_period):
            get_grace_period = grace_period
        else:

            def get_grace_period(key: Any) -> float | None:
                return grace_period

        for key, runner in self._runners.items():
            gp = None if not runner.started() or runner.done() else get_grace_period(key)
            try:
                runner.cancel(grace_period=gp)
            except Exception as ex:
                LOG.debug("Exception cancelling task: %s", ex)

    def _cancel_recursively(self, key: Any, runner: TaskRunner) -> None:
        """Cancel a task and, first, every task that requires it, directly or not."""
        try:
            runner.cancel()
        except Exception as ex:
            LOG.debug("Exception cancelling task: %s", ex)
        node = self._graph.get(key)
        if node is None:
            # Already cancelled through another task it requires.
            return
        for dependent in list(node.required_by()):
            self._cancel_recursively(dependent, self._runners[dependent])
        del self._graph[key]

    def _ready(self) -> Iterator[tuple[Any, TaskRunner]]:
        """Iterate over the sub-tasks whose requirements are all done but not yet started.

        Checked lazily, so that a task that finishes on start frees its dependents at once.
        """
        for key in self._keys:
            if not self._graph.get(key, True):
                runner = self._runners[key]
                if runner and not runner.started():
                    yield key, runner

    def _running(self) -> Iterator[tuple[Any, TaskRunner]]:
        """Iterate over the sub-tasks started and not yet removed from the graph."""
        return (
            (key, runner)
            for key, runner in self._runners.items()
            if key in self._graph and runner.started()
        )
