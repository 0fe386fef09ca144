"""Tasks of a dead runner, taken over by the runner that resumes its job (`spawnkit resume`).

The task supervisor that started them outlives the runner: it still reaps them, masks their
output into their files, and writes each one's wait status to `exit-status` in its folder once
its output is whole. The new runner cannot wait() on them (they are not its children), so it
watches that file, and the process itself (PID and start time: a reused PID is not the task).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spawnkit.core.backstop import timed_out_reason
from spawnkit.core.errors import AdoptError
from spawnkit.core.procfs import is_alive, start_ticks
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.process.client import supervisors
from spawnkit.spawners.process.handle import ProcessHandle
from spawnkit.spawners.process.supervisor import EXIT_STATUS

__all__ = ["REAPED", "AdoptedTask", "adopt"]

#: The file in a task's folder that says `spawnkit gc` ended it, its runner gone: its own
#: end (a SIGTERM, then) says nothing of the task.
REAPED = "reaped"


@dataclass
class AdoptedTask:
    """A taken-over task: its handle, its folder, and the supervisor that still has it."""

    handle: ProcessHandle
    out_dir: Path
    supervisor: int | None

    def look(self) -> bool:
        """Learn whether it ended (True once it has): its exit-status file, else a task gone
        with no supervisor left to say how (its exit is then lost)."""
        if self.handle.ended or self._exit_status():
            return True
        if self._running() or self._supervised():
            return False
        if self._exit_status():  # written as its supervisor ended, between the two looks
            return True
        self.handle.lost()
        return True

    def _exit_status(self) -> bool:
        try:
            record = self.out_dir / EXIT_STATUS
            status = int(record.read_text())
            # Written once its output was whole: close to its end, not to this look.
            self.handle.ended_at = record.stat().st_mtime
        except (OSError, ValueError):
            return False
        self.handle.timed_out = timed_out_reason(self.out_dir, "the task supervisor")
        self.handle.end(status)
        if not self.handle.drained.done():
            self.handle.drained.set_result(None)  # written once its output was whole
        return True

    def _running(self) -> bool:
        pid, start = self.handle.pid, self.handle.start
        return is_alive(pid) and (start is None or start_ticks(pid) == start)

    def _supervised(self) -> bool:
        return self.supervisor is not None and any(
            found.pid == self.supervisor for found in supervisors())


def _reaped(out_dir: Path) -> bool:
    """gc ended it: its mark is there, and no exit of its own came before the mark (a task
    that ended by itself as gc looked keeps its exit)."""
    try:
        marked = (out_dir / REAPED).stat().st_mtime
    except OSError:
        return False
    try:
        return (out_dir / EXIT_STATUS).stat().st_mtime >= marked
    except OSError:
        return True


def adopt(runtime_task: RuntimeTask) -> AdoptedTask:
    """The task as its journal entry describes it (AdoptError when it names no process: the
    runner died while starting it, and nothing tells whether it began; or when neither the
    task nor its supervisor is left and its folder has no exit status: it is lost)."""
    result = runtime_task.spawning_result or {}
    pid, start, supervisor = result.get("pid"), result.get("start_time"), result.get("supervisor")
    out_dir = runtime_task.output_dir
    if not isinstance(pid, int) or out_dir is None:
        raise AdoptError("the runner died while starting it: whether it began is not known",
                         spawner="process", handle=runtime_task.spawner_handle)
    if _reaped(out_dir):
        raise AdoptError("`spawnkit gc` ended it once its runner was gone: how it would have "
                         "ended is not known", spawner="process",
                         handle=runtime_task.spawner_handle)
    adopted = AdoptedTask(ProcessHandle(pid, start if isinstance(start, int) else None),
                          out_dir, supervisor if isinstance(supervisor, int) else None)
    if adopted.look() and adopted.handle.exit_lost:
        raise AdoptError("its process and the task supervisor that had it are gone, with no "
                         "word of how it ended", spawner="process",
                         handle=runtime_task.spawner_handle)
    return adopted
