"""An index of running jobs on this machine, so `spawnkit gc` finds the journals of dead
runners wherever their job folders are. A job that ends normally removes its entry."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["forget", "register", "registered", "state_dir"]


def state_dir() -> Path:
    base = os.environ.get("SPAWNKIT_STATE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "spawnkit"


def _runs() -> Path:
    return state_dir() / "runs"


def register(job_id: str, job_dir: Path) -> None:
    with contextlib.suppress(OSError):
        _runs().mkdir(parents=True, exist_ok=True)
        (_runs() / job_id).write_text(str(job_dir.resolve()))


def forget(job_id: str) -> None:
    with contextlib.suppress(OSError):
        (_runs() / job_id).unlink()


def registered() -> dict[str, Path]:
    """job id -> job folder, for every job not known to have ended."""
    out: dict[str, Path] = {}
    with contextlib.suppress(OSError):
        for entry in _runs().iterdir():
            with contextlib.suppress(OSError):
                out[entry.name] = Path(entry.read_text().strip())
    return out
