"""The runner's hold on its job folder: one runner at a time, and the kernel lets go when it dies.

The runner of a job (`run`, or a `resume` that took the job over) holds an exclusive `flock`
on `runner.lock` in the job folder for as long as it runs. A process killed with SIGKILL loses
it at once, so "is this job being run?" has an exact answer with no stale lock to clean: a
second `resume` is refused, and `spawnkit gc` leaves the job's tasks alone.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

from spawnkit.core.errors import SpawnkitError, UsageError

__all__ = ["LOCK_NAME", "JobBusy", "JobEnded", "JobLock", "ended_unrecorded", "job_in_use"]

LOG = logging.getLogger(__name__)

LOCK_NAME = "runner.lock"

#: What a runner leaves in the lock file when it ended but its journal could not take the last
#: changes (a full disk): a journal with no end record then does not mean a runner that died.
#: Written over the owner line, in space the file already has.
_ENDED_UNRECORDED = b"ended; the journal misses its last changes\n"

#: A probe by `spawnkit gc` holds the lock for microseconds: an acquisition retries this long
#: before it says the job is in use.
_ACQUIRE_FOR = 0.2


class JobBusy(SpawnkitError):
    """Another runner holds the job: `holder` is its owner ("host:pid:start"), if it said."""

    def __init__(self, job_dir: Path, holder: str) -> None:
        self.job_dir, self.holder = job_dir, holder
        by = f" (runner {holder})" if holder else ""
        super().__init__(f"{job_dir}: the job is being run{by}: only a job whose runner is "
                         "gone can be resumed")


class JobEnded(UsageError):
    """The job's runner ended, its journal unfinished (a full disk): no resume takes it."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        super().__init__(f"{job_dir}: the job ended (its journal misses the last changes: a "
                         "full disk); there is nothing to resume")


class JobLock:
    """Held by the job's runner from `acquire()` to `release()` (or its death)."""

    def __init__(self, job_dir: Path) -> None:
        self.path = job_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, owner: str) -> None:
        """Take the job for `owner`; JobBusy when another runner holds it, JobEnded when its
        runner ended with the journal unfinished, OSError when the file cannot be written (a
        full disk)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._lock(fd)
            if os.pread(fd, len(_ENDED_UNRECORDED) + 1, 0) == _ENDED_UNRECORDED:
                # Left as it is: the mark is what keeps any later resume out too.
                raise JobEnded(self.path.parent)
            # As long as the mark (padded): writing it in its place needs no new space.
            line = owner.ljust(len(_ENDED_UNRECORDED) - 1) + "\n"
            os.ftruncate(fd, 0)
            os.pwrite(fd, line.encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _lock(self, fd: int) -> None:
        deadline = time.monotonic() + _ACQUIRE_FOR
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    raise JobBusy(self.path.parent, holder) from None
                time.sleep(0.02)

    def release(self, *, recorded: bool = True) -> None:
        """Let go. `recorded`: the journal holds every change the runner made; if not (a full
        disk refused some), the file says the runner ended all the same (`ended_unrecorded`),
        so no resume runs a task again."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if not recorded:
                os.pwrite(fd, _ENDED_UNRECORDED, 0)
            os.ftruncate(fd, 0 if recorded else len(_ENDED_UNRECORDED))
        except OSError as exc:
            if not recorded:
                LOG.warning("%s: cannot say the job ended (%s): a resume would take it for a "
                            "dead runner's", self.path, exc.strerror or exc)
        finally:
            os.close(fd)  # the lock goes with the last descriptor


def ended_unrecorded(job_dir: Path) -> bool:
    """Whether the job's runner ended without its journal holding the end (a full disk)."""
    try:
        return (job_dir / LOCK_NAME).read_bytes() == _ENDED_UNRECORDED
    except OSError:
        return False


def job_in_use(job_dir: Path) -> bool:
    """Whether a runner holds the job now (a shared probe: it never blocks a runner for more
    than an instant). A folder with no lock file was never held by a runner of this version."""
    try:
        fd = os.open(job_dir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
