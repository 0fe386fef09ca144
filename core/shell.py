"""`spawnkit shell`: what a backend makes ready for an interactive shell in the state a task
left (its kept container, its working folder), and what it removes once the shell ends.

A backend prepares (`Spawner.open_shell`); the command line runs `argv` in the user's own
terminal, waits, then calls `close()`. core runs no terminal itself: a backend whose engine
has a command line of its own (`docker`, `podman`) hands that out, as a terminal through an
SDK's attach protocol (raw mode, resizes, detach keys) would be that command line again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["ShellSession"]


@dataclass
class ShellSession:
    """A shell made ready: the command line to run in the user's terminal, and its undoing."""

    argv: list[str]
    #: The shell's whole environment; None: the caller's own.
    env: dict[str, str] | None = None
    #: Its working folder; None: the caller's own (a container has its own).
    cwd: str | None = None
    #: One line for the user before it starts: what the shell is in.
    banner: str | None = None
    #: Removes what was made for it (a temporary container and image); once it has ended.
    cleanup: Callable[[], Awaitable[None]] | None = None

    async def close(self) -> None:
        """Remove what was made for the shell; a second call does nothing."""
        cleanup, self.cleanup = self.cleanup, None
        if cleanup is not None:
            await cleanup()
