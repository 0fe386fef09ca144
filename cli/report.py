"""What a person reads at the end of a job: the summary table."""

from __future__ import annotations

from typing import TextIO

import click

from spawnkit.core.results import JobResult

__all__ = ["RESULT_COLOURS", "print_summary"]

RESULT_COLOURS = {
    "passed": "green",
    "failed": "red",
    "error": "red",
    "timed_out": "yellow",
    "skipped": "cyan",
    "interrupted": "magenta",
    "not_run": "bright_black",
    "lost": "magenta",
}


def _fmt_duration(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}s"


def print_summary(result: JobResult, out: TextIO, *, color: bool | None = None) -> None:
    rows = [(t.id, t.result, _fmt_duration(t.duration), t.reason or "") for t in result.tasks]
    width_id = max([len("task"), *(len(r[0]) for r in rows)])
    width_res = max(len("result"), *(len(r[1]) for r in rows)) if rows else 6
    click.echo(f"{'task':<{width_id}}  {'result':<{width_res}}  {'time':>8}  reason", out)
    for tid, res, dur, reason in rows:
        styled = click.style(f"{res:<{width_res}}", fg=RESULT_COLOURS.get(res))
        click.echo(f"{tid:<{width_id}}  {styled}  {dur:>8}  {reason}", out, color=color)
    counts = ", ".join(f"{n} {k}" for k, n in result.counts.items() if n)
    total = _fmt_duration(result.duration)
    click.echo(f"{len(result.tasks)} tasks in {total}: {counts}", out)
