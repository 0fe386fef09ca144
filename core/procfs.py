"""What Linux's /proc says of a process: its state, group, parent and start time.

"Alive" here means the process exists and is not a zombie: this sandbox's PID 1 reaps no
orphans, so a killed process may linger as a zombie (state Z) that `kill -0` still finds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "is_alive",
    "live_processes",
    "parent_of",
    "process_group",
    "start_ticks",
    "stat_fields",
]

#: States of a process that has ended: a zombie, or one being torn down.
_ENDED = ("Z", "X")


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: state is [0], parent [1], process
    group [2], start time in clock ticks since boot [19]. None when there is no such PID."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def is_alive(pid: int) -> bool:
    """The PID exists and has not ended (a zombie has)."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in _ENDED


def start_ticks(pid: int) -> int | None:
    """When a live PID started, in clock ticks since boot: tells a reused PID apart."""
    fields = stat_fields(pid)
    return int(fields[19]) if fields and fields[0] not in _ENDED else None


def process_group(pid: int) -> int | None:
    fields = stat_fields(pid)
    return int(fields[2]) if fields else None


def parent_of(pid: int) -> int | None:
    fields = stat_fields(pid)
    return int(fields[1]) if fields else None


def live_processes() -> Iterator[tuple[int, list[str]]]:
    """(PID, stat fields) of every process of this machine that has not ended."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields is not None and fields[0] not in _ENDED:
                yield int(entry.name), fields
