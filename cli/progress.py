"""What a person watching a run sees while it runs, and the summary left for GitHub.

On a terminal, one live line (counts per state, running ids, elapsed) redrawn in place; in a
CI log (not a terminal, or CI=true), one plain line per task start and finish, because a log
keeps every redraw. The display is a StatusRepo listener: it sees each status entry as the
state machine records it.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TextIO

import click

from spawnkit.cli.report import styled
from spawnkit.cli.streams import silence
from spawnkit.cli.tails import DEFAULT_TAIL, OutputTails, ShowOutput, choose_fold
from spawnkit.core.results import JobResult, run_time
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import TaskResult
from spawnkit.core.task.statusrepo import StatusEntry

__all__ = [
    "Mode",
    "Progress",
    "choose_mode",
    "make_progress",
    "step_summary",
    "write_step_summary",
]

_TICK = 0.5  # seconds between redraws of the elapsed time when nothing happens
_CLEAR = "\r\x1b[2K"


class Mode(enum.Enum):
    LIVE = "live"
    PLAIN = "plain"
    QUIET = "quiet"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def choose_mode(stream: TextIO, *, quiet: bool, env: Mapping[str, str]) -> Mode:
    if quiet:
        return Mode.QUIET
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    if not is_tty or _truthy(env.get("CI")) or env.get("TERM") == "dumb":
        return Mode.PLAIN
    return Mode.LIVE


class Progress:
    """A status listener that shows a run as it goes. Call `close()` once the job ends."""

    def __init__(
        self,
        tasks: Sequence[Task],
        *,
        out: TextIO,
        mode: Mode,
        verbose: bool = False,
        color: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        summary_path: Path | None = None,
        tails: OutputTails | None = None,
    ) -> None:
        self._tasks = {t.id: t for t in tasks}
        self._tails = tails
        self._out = out
        self._mode = mode
        self._verbose = verbose
        self._color = color if color is not None else mode is Mode.LIVE
        self._clock = clock
        self._summary_path = summary_path
        self._began = clock()
        #: task id -> its start entry's times ("mono", "time"), as core.results reads them
        self._started_at: dict[str, dict[str, float]] = {}
        self._running: list[str] = []  # in start order, so the line reads stably
        self._retried: set[str] = set()
        self._results: dict[str, str] = {}
        # The ticker thread and the event loop both draw; one lock keeps lines whole.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._drawn = False
        self._last_line = ""

    @property
    def mode(self) -> Mode:
        return self._mode

    def ended_before(self, results: Mapping[str, str]) -> None:
        """Tasks that ended before this run (a resume's): counted in `[done/total]`."""
        with self._lock:
            self._results.update(results)

    # -- listener --------------------------------------------------------------------------

    def __call__(self, entry: StatusEntry) -> None:
        with self._lock:
            if entry.status in ("started", "adopted"):  # adopted: a resume took it over
                if entry.status == "started" or entry.task_id not in self._started_at:
                    # Taken over: it runs since its original start, not since the takeover.
                    since = float(entry.data.get("since", entry.time))
                    self._started_at[entry.task_id] = {
                        "mono": entry.mono - (entry.time - since), "time": since}
                if entry.task_id not in self._running:
                    self._running.append(entry.task_id)
                self._on_start(entry)
            elif "result" in entry.data:
                if entry.task_id in self._running:
                    self._running.remove(entry.task_id)
                self._results[entry.task_id] = str(entry.data["result"])
                self._on_finish(entry)
            elif entry.status == "retrying":
                self._on_retry(entry)
            elif entry.status == "terminating" and self._verbose:
                self._say(f"{'stopping':<11} {entry.task_id} ({entry.data.get('why', '')})")
            if self._mode is Mode.LIVE:
                self._draw()

    def start(self) -> None:
        """Begin redrawing the elapsed time (live mode only)."""
        if self._mode is not Mode.LIVE or self._ticker is not None:
            return
        self._ticker = threading.Thread(target=self._tick, name="spawnkit-progress", daemon=True)
        self._ticker.start()

    def close(self, result: JobResult | None = None) -> None:
        """Stop redrawing, leave the terminal on a clean line, write the step summary."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2 * _TICK)
        with self._lock:
            if self._drawn:
                self._write("", _CLEAR)
                self._drawn = False
        if result is not None and self._summary_path is not None:
            try:
                write_step_summary(self._summary_path, result)
            except OSError as exc:
                click.echo(f"spawnkit: warning: step summary not written: {exc}", err=True)

    # -- drawing ---------------------------------------------------------------------------

    def _tick(self) -> None:
        while not self._stop.wait(_TICK):
            with self._lock:
                self._draw()

    def _elapsed(self) -> float:
        return self._clock() - self._began

    def _on_start(self, entry: StatusEntry) -> None:
        if self._mode is Mode.PLAIN or (self._mode is Mode.LIVE and self._verbose):
            extra = ""
            if self._verbose:
                task = self._tasks.get(entry.task_id)
                command = task.display_command() if task else ""
                handle = entry.data.get("handle")
                extra = f": {command}" + (f" [{handle}]" if handle else "")
            word = "taken over" if entry.status == "adopted" else "start"
            self._say(f"{word:<11} {entry.task_id}{extra}")

    def _on_retry(self, entry: StatusEntry) -> None:
        if entry.task_id in self._running:
            self._running.remove(entry.task_id)
        self._retried.add(entry.task_id)
        ended = entry.data.get("ended") or {}
        why = ended.get("reason") or ended.get("result", "")
        self._say(f"{'retrying':<11} {entry.task_id} (attempt {entry.data.get('attempt')}: {why})")

    def _took(self, entry: StatusEntry) -> str:
        """How long it ran, as results.json says (core.results.run_time)."""
        took = run_time(self._started_at.get(entry.task_id), entry.as_dict())
        return "" if took is None else f" {took:.2f}s"

    def _on_finish(self, entry: StatusEntry) -> None:
        result = str(entry.data["result"])
        if self._mode is Mode.QUIET:
            return
        if (self._mode is Mode.LIVE and result == "passed" and not self._verbose
                and entry.task_id not in self._retried):
            return  # the counts say it; lines above the live line are for what needs a look
        took = self._took(entry)
        reason = entry.data.get("reason")
        why = f" ({reason})" if reason else ""
        if result == "passed" and entry.task_id in self._retried:
            why += " [flaky]"
        word = styled(TaskResult(result), f"{result:<11}")
        done, total = len(self._results), len(self._tasks)
        self._say(f"{word} {entry.task_id}{took}{why} [{done}/{total}]")
        if self._tails is not None and self._tails.wanted(TaskResult(result)):
            block = self._tails.block(entry.task_id, TaskResult(result), reason)
            if block:
                self._write(block, _CLEAR if self._drawn else "", raw=True)
                self._drawn = False

    def _say(self, text: str) -> None:
        """A permanent line; in live mode it goes above the live line."""
        if self._mode is Mode.QUIET:
            return
        stamp = f"[{self._elapsed():7.1f}s] "
        prefix = _CLEAR if self._drawn else ""
        self._drawn = False
        self._write(f"{stamp}{text}\n", prefix)

    def live_line(self) -> str:
        """Counts per state, the running ids, elapsed time: fitted to the terminal."""
        total = len(self._tasks)
        done = len(self._results)
        waiting = total - done - len(self._running)
        counts: dict[str, int] = {}
        for result in self._results.values():
            counts[result] = counts.get(result, 0) + 1
        parts = [f"{self._elapsed():.1f}s", f"{done}/{total} done"]
        parts += [
            styled(TaskResult(word), f"{n} {word}") if self._color else f"{n} {word}"
            for word, n in counts.items()
        ]
        if waiting:
            parts.append(f"{waiting} waiting")
        line = " | ".join(parts)
        if self._running:
            line += f" | {len(self._running)} running: " + ", ".join(self._running)
        width = shutil.get_terminal_size((100, 24)).columns - 1
        return _fit(line, width)

    def _draw(self) -> None:
        if self._mode is not Mode.LIVE or self._stop.is_set():
            return
        line = self.live_line()
        if self._drawn and line == self._last_line:
            return  # most entries (requested, triaging, ready) change nothing on the line
        self._write(line, _CLEAR)
        self._drawn, self._last_line = True, line

    def _write(self, text: str, control: str = "", *, raw: bool = False) -> None:
        """`control` (cursor codes) goes out as it is; colour only when colour is on; `raw`
        text as it is (a CI's folding markers are escape codes that must reach its log)."""
        body = text if self._color or raw else click.unstyle(text)
        try:
            self._out.write(control + body)
            self._out.flush()
        except BrokenPipeError:
            silence(self._out)  # its reader is gone: nor the run's exit status
        except (OSError, ValueError):
            # A closed or broken terminal must not stop the run.
            pass


def _fit(line: str, width: int) -> str:
    """Cut a line (which may hold colour codes) to `width` visible characters."""
    if len(click.unstyle(line)) <= width:
        return line
    out, seen, i = [], 0, 0
    while i < len(line) and seen < width - 3:
        if line[i] == "\x1b":
            end = line.find("m", i)
            end = len(line) - 1 if end < 0 else end
            out.append(line[i : end + 1])
            i = end + 1
            continue
        out.append(line[i])
        seen += 1
        i += 1
    return "".join(out) + "\x1b[0m..." if "\x1b" in line else "".join(out) + "..."


# -- GitHub step summary -------------------------------------------------------------------

def _cell(text: str) -> str:
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def _code(text: str) -> str:
    """`text` as a code span, whatever backticks it holds (a fence longer than its longest
    run of them, as CommonMark allows)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{_cell(text)}{pad}{fence}"


def step_summary(result: JobResult) -> str:
    """A markdown section: a heading with the counts, then one table row per task."""
    name = Path(result.task_file).name if result.task_file else result.job_id
    passed = result.counts.get("passed", 0)
    total = len(result.tasks)
    took = f" in {result.duration:.1f}s" if result.duration is not None else ""
    failing = " (--fail-on-flaky fails the job)" if result.fail_on_flaky and result.flaky else ""
    lines = [
        f"### spawnkit {_code(name)}: {passed} of {total} passed{took}{failing}",
        "",
        "| task | result | time | reason |",
        "| --- | --- | ---: | --- |",
    ]
    for t in result.tasks:
        icon = t.result.style.icon
        took_t = f"{t.duration:.2f}s" if t.duration is not None else "-"
        word = t.result.value
        if t.flaky:
            word += f" (flaky: {len(t.attempts) + 1} attempts)"
        lines.append(
            f"| {_code(t.id)} | {icon} {word} | {took_t} | {_cell(t.reason or '')} |"
        )
    return "\n".join(lines) + "\n\n"


def write_step_summary(path: Path, result: JobResult) -> None:
    # Appended, never replaced: other steps of the same job write to the same file.
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(step_summary(result))


def make_progress(
    tasks: Sequence[Task],
    *,
    quiet: bool = False,
    verbose: bool = False,
    out: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    job_dir: Path | None = None,
    show_output: ShowOutput | None = None,
    tail: int = DEFAULT_TAIL,
) -> Progress:
    """`show_output` None: the failed tasks' output in a CI log (CI=true), none elsewhere."""
    stream = out if out is not None else sys.stderr
    environ = os.environ if env is None else env
    summary = environ.get("GITHUB_STEP_SUMMARY")
    if show_output is None:
        show_output = ShowOutput.FAILED if _truthy(environ.get("CI")) else ShowOutput.NONE
    tails = None
    if job_dir is not None and not quiet:
        tails = OutputTails(job_dir, show_output, tail, choose_fold(environ))
    return Progress(
        tasks,
        out=stream,
        mode=choose_mode(stream, quiet=quiet, env=environ),
        verbose=verbose,
        summary_path=Path(summary) if summary else None,
        tails=tails,
    )
