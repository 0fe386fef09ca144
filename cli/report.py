"""What a person reads at the end of a job: the summary table."""

from __future__ import annotations

from typing import TextIO

import click

from spawnkit.core.results import JobResult, TaskRecord
from spawnkit.core.task.outcome import TaskResult

__all__ = ["SCREENFUL", "print_summary", "styled"]

#: Past this many tasks the table lists only the tasks that did not pass: the counts say the
#: rest, and a CI log of 3,000 rows hides the few that matter.
SCREENFUL = 40


def styled(result: TaskResult, text: str | None = None) -> str:
    return click.style(result.value if text is None else text, fg=result.style.colour)


def _fmt_duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}s"


def print_summary(result: JobResult, out: TextIO, *, color: bool | None = None) -> None:
    shown: list[TaskRecord] = result.tasks
    if len(shown) > SCREENFUL:
        shown = [t for t in result.tasks if not t.result.ok or t.flaky]
    if shown:
        rows = [(t, _fmt_duration(t.duration)) for t in shown]
        width_id = max(len("task"), *(len(t.id) for t, _ in rows))
        width_res = max(len("result"), *(len(t.result.value) for t, _ in rows))
        click.echo(f"{'task':<{width_id}}  {'result':<{width_res}}  {'time':>8}  reason", out)
        for t, took in rows:
            word = styled(t.result, f"{t.result.value:<{width_res}}")
            reason = t.reason or ""
            if t.attempts:
                tries = f"{len(t.attempts) + 1} attempts" + (", flaky" if t.flaky else "")
                reason = f"{reason} ({tries})" if reason else f"({tries})"
            click.echo(f"{t.id:<{width_id}}  {word}  {took:>8}  {reason}", out, color=color)
    if len(shown) < len(result.tasks):
        click.echo(f"({len(result.tasks) - len(shown)} passed tasks not listed)", out)
    counts = ", ".join(f"{n} {k}" for k, n in result.counts.items() if n) or "nothing to run"
    if result.flaky:
        counts += f" ({len(result.flaky)} flaky: {', '.join(result.flaky)})"
        if result.fail_on_flaky:
            # Else a red job whose JUnit report is all green, and no word of why.
            counts += "; --fail-on-flaky fails the job"
    n = len(result.tasks)
    click.echo(f"{n} task{'' if n == 1 else 's'} in {_fmt_duration(result.duration)}: {counts}",
               out)
