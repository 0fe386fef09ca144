"""The `spawnkit` command: one-line errors, exit 0 (passed), 1 (not passed), 2 (bad input),
74 (results not written)."""

from __future__ import annotations

import contextlib
import errno
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import click

from spawnkit.cli.streams import (
    ensure_standard_streams,
    out_of_room,
    reader_gone,
    silence,
    unless_gone,
)
from spawnkit.core.errors import ResultsUnwritable, SpawnkitError, TaskFileError

__all__ = ["COMPLETE_VAR", "EXIT_FAILED", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_IO", "EXIT_OK",
           "EXIT_TERMINATED", "EXIT_USAGE", "Terminated", "cli", "entry", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70
#: What click's shell completion reads: `eval "$(_SPAWNKIT_COMPLETE=bash_source spawnkit)"`.
COMPLETE_VAR = "_SPAWNKIT_COMPLETE"
#: The results could not be written (a full disk): EX_IOERR of sysexits.h.
EXIT_IO = 74
#: What a shell reports for a command ended by SIGINT, and by SIGTERM (a CI runner's cancel).
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM while no job handles it (before a run's start-up is done, say): the command
    ends as after a Ctrl-C, what it began undone, with exit 143."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


#: Command name -> module under spawnkit.cli that defines it. Imported only when used, so
#: `spawnkit run` on the process backend never pays for the container SDKs' imports.
COMMANDS = {
    "run": "run",
    "validate": "validate",
    "list": "list",
    "results": "results",
    "logs": "logs",
    "gc": "gc",
    "images": "images",
    "shell": "shell",
    "resume": "resume",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"spawnkit.cli.{COMMANDS[cmd_name]}")  # registers on import
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spawnkit")
def cli() -> None:
    """Run CI tasks in isolated places: a process, a Docker or Podman container, a Slurm job,
    a Kubernetes Pod."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Everything after `--` is an ad hoc command for `spawnkit run`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any("\x00" in arg for arg in args):
        # No OS call takes such an argument (click would fail deep inside os.stat).
        _say("spawnkit: error: an argument holds a NUL byte")
        return EXIT_USAGE
    instruction = os.environ.get(COMPLETE_VAR)
    if instruction:
        return _complete(instruction)
    command: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, command = args[:cut], args[cut + 1 :]
    # Library warnings (a retried engine call, an orphan reaped) as one line each on stderr.
    logging.basicConfig(format="spawnkit: %(levelname)s: %(message)s", level=logging.WARNING)
    try:
        # Not cli.main: it turns a reader gone into exit 1 and writes a blank line before
        # a Ctrl-C's message; this entry point says both its own way.
        with cli.make_context("spawnkit", args, obj={"command": command}) as ctx:
            code = cli.invoke(ctx)
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # `spawnkit` alone: its help, as usage
        _say(exc.format_message())
        return EXIT_USAGE
    except (click.exceptions.Abort, EOFError):  # a prompt's Ctrl-C, or its input ended
        _say("spawnkit: aborted")
        return EXIT_INTERRUPTED
    except BrokenPipeError as exc:
        gone = [stream for stream in (sys.stdout, sys.stderr) if reader_gone(stream)]
        if not gone:
            return _internal_error(exc)  # a pipe of our own
        # `spawnkit list | head`: the reader chose to stop; nothing failed.
        for stream in gone:
            silence(stream)
        return EXIT_OK
    except click.UsageError as exc:
        path = exc.ctx.command_path if exc.ctx else "spawnkit"
        message = " ".join(exc.format_message().split())  # click wraps choices over lines
        _say(f"spawnkit: error: {message} (see '{path} --help')")
        return EXIT_USAGE
    except click.ClickException as exc:
        _say(f"spawnkit: error: {exc.format_message()}")
        return EXIT_USAGE
    except TaskFileError as exc:
        for line in exc.lines():
            _say(f"spawnkit: error: {line}")
        return EXIT_USAGE
    except ResultsUnwritable as exc:
        _say(f"spawnkit: error: {exc}")
        return EXIT_IO
    except SpawnkitError as exc:
        _say(f"spawnkit: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        if isinstance(exc, Terminated):
            _say("spawnkit: terminated")
            return EXIT_TERMINATED
        _say("spawnkit: interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            return _internal_error(exc)
        # `spawnkit list FILE > out` on a full disk: what was asked for is not written.
        what = exc.filename or ("to standard output" if out_of_room(sys.stdout) else "")
        _say(f"spawnkit: error: cannot write{' ' if what else ''}{what}: "
             f"{exc.strerror or exc}")
        return EXIT_IO
    except Exception as exc:
        return _internal_error(exc)
    return code if isinstance(code, int) else EXIT_OK


def _complete(instruction: str) -> int:
    """Shell completion, as click gives it to a command run through `cli.main`:
    `_SPAWNKIT_COMPLETE=bash_source spawnkit` prints the script that bash sources (zsh_source,
    fish_source likewise); the shell then calls back with `bash_complete` and the words typed."""
    from click.shell_completion import shell_complete

    from spawnkit.cli.shells import register_shells

    register_shells()
    try:
        code = shell_complete(cli, {"obj": {"command": []}}, "spawnkit", COMPLETE_VAR,
                              instruction)
    except Exception:  # run by hand, without what the shell's script sets
        _say(f"spawnkit: error: {COMPLETE_VAR}={instruction} is for the shell's completion "
             f"script (`eval \"$({COMPLETE_VAR}=bash_source spawnkit)\"`)")
        return EXIT_USAGE
    if code != 0:
        _say(f"spawnkit: error: {COMPLETE_VAR}={instruction}: not a shell completion instruction "
             "(bash_source, zsh_source or fish_source)")
        return EXIT_USAGE
    return EXIT_OK


def _internal_error(exc: Exception) -> int:
    """A bug of ours: still one line (the traceback with SPAWNKIT_DEBUG=1), and an exit
    status of its own so CI tells it from a failed task or bad input."""
    if os.environ.get("SPAWNKIT_DEBUG"):
        raise exc
    _say(f"spawnkit: internal error: {type(exc).__name__}: {exc} "
         "(SPAWNKIT_DEBUG=1 shows where)")
    return EXIT_INTERNAL


def _say(line: str) -> None:
    """One line on stderr, unless its reader has gone (`2>&1 | head -1`): the exit status
    still says what happened."""
    with contextlib.suppress(OSError), unless_gone(sys.stderr):  # nor one that takes nothing
        click.echo(line, err=True)


def entry() -> None:
    ensure_standard_streams()
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # else ignored on purpose: stays so
        signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
