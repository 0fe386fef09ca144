"""What became of an exec in a container: its exit status, from the Status object the API
server sends on the exec's error channel (the client's own reading of it fails on a runtime's
refusal, with "invalid literal for int()")."""

from __future__ import annotations

import json

__all__ = ["ExecRefused", "exec_status"]


class ExecRefused(Exception):
    """The runtime could not run an exec's command; `str()` is its words."""


def exec_status(status: str) -> int | None:
    """An exec's exit status from the Status object of its error channel (JSON); None when
    the connection ended with none (unknown).

    Success is 0; NonZeroExitCode carries the status as its ExitCode cause. Anything else
    is the runtime refusing the command: ExecRefused with its message."""
    if not status:
        return None
    try:
        found = json.loads(status)
    except ValueError:
        found = None
    if not isinstance(found, dict):
        raise ExecRefused(f"unreadable exec status: {status[:200]!r}")
    if found.get("status") == "Success":
        return 0
    details = found.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    for cause in causes if isinstance(causes, list) else []:
        if (isinstance(cause, dict) and cause.get("reason") == "ExitCode"
                and str(cause.get("message", "")).isdigit()):
            return int(cause["message"])
    raise ExecRefused(" ".join(str(found.get("message") or found).split()))
