"""timeline.html: where a job's time went, as one self-contained page.

Each task is a bar over time, coloured by result, in the row of the concurrency slot it ran
in; hovering shows its id, duration and result. Pure HTML, CSS and inline SVG: no script and
no network, so it opens from a CI artefact store or an e-mail as it is.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from spawnkit.core.junit import xml_text
from spawnkit.core.paths import write_atomic
from spawnkit.core.results import JobResult, TaskRecord
from spawnkit.core.task.outcome import TaskResult

__all__ = ["timeline_html", "write_timeline"]

_WIDTH = 1100
_LEFT = 100  # room for row labels
_RIGHT = 24
_ROW = 30
_BAR = 22
_AXIS = 28  # room for the time axis above the rows
_CHAR = 6.6  # rough width of one label character at 11px, to decide what fits in a bar
_NOT_STARTED = "not started"

_CSS = """
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px;
       color: #1f2328; background: #fff; }
h1 { font-size: 18px; margin: 0 0 4px; }
p.summary { margin: 0 0 12px; color: #59636e; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 0 0 12px; font-size: 13px; }
.legend span { display: inline-flex; align-items: center; gap: 5px; }
.legend i { width: 12px; height: 12px; border-radius: 2px; display: inline-block; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", sans-serif; }
.row-label { fill: #59636e; }
.grid { stroke: #eaeef2; }
.tick { fill: #59636e; }
.lane { fill: #f6f8fa; }
.bar { stroke: #ffffffaa; stroke-width: 1; }
.task:hover .bar { stroke: #1f2328; stroke-width: 2; }
.label { fill: #fff; pointer-events: none; }
.label.dark { fill: #1f2328; }
.lost { fill-opacity: 0.55; stroke-dasharray: 4 2; stroke: #1f2328; }
"""


def _fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _tick_step(span: float, target: int = 8) -> float:
    """A round step (1, 2 or 5 times a power of ten; minutes past a minute) for the axis."""
    raw = span / target
    if raw >= 60:
        for step in (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600):
            if step >= raw:
                return float(step)
        return 21600.0
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for mult in (1, 2, 5, 10):
        if mult * power >= raw:
            return float(mult * power)
    return 10 * power


def _slots(tasks: Sequence[TaskRecord]) -> dict[str, int | None]:
    """Each task's row. A started task without a recorded slot takes the first free one."""
    rows: dict[str, int | None] = {}
    busy_until: dict[int, float] = {}
    for t in tasks:
        if t.start is not None and t.slot is not None:
            rows[t.id] = t.slot
            busy_until[t.slot] = max(busy_until.get(t.slot, 0.0), t.end or math.inf)
    for t in sorted((t for t in tasks if t.start is not None and t.slot is None),
                    key=lambda t: t.start or 0.0):
        start = t.start or 0.0
        slot = next((s for s in sorted(busy_until) if busy_until[s] <= start), None)
        if slot is None:
            slot = max(busy_until, default=-1) + 1
        rows[t.id] = slot
        busy_until[slot] = t.end or math.inf
    for t in tasks:
        rows.setdefault(t.id, None)
    return rows


def _text(value: str) -> str:
    return html.escape(xml_text(value), quote=True)


def _tooltip(t: TaskRecord) -> str:
    took = f"{t.duration:.2f}s" if t.duration is not None else "did not run"
    lines = [f"{t.id}", f"{t.result.value} · {took}"]
    if t.reason:
        lines.append(t.reason)
    return _text("\n".join(lines))


def timeline_html(result: JobResult) -> str:
    tasks = result.tasks
    times = [x for t in tasks for x in (t.start, t.end) if x is not None]
    t0 = result.start if result.start is not None else min(times, default=0.0)
    t1 = max([*times, result.end or t0, t0])
    span = max(t1 - t0, 1e-3)
    rows = _slots(tasks)
    slot_rows = sorted({r for r in rows.values() if r is not None})
    row_of = {slot: i for i, slot in enumerate(slot_rows)}
    labels = [f"slot {s}" for s in slot_rows]
    if any(r is None for r in rows.values()):
        labels.append(_NOT_STARTED)
    plot_w = _WIDTH - _LEFT - _RIGHT
    height = _AXIS + _ROW * max(len(labels), 1) + 8

    def x_of(moment: float) -> float:
        return _LEFT + (moment - t0) / span * plot_w

    svg: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" '
        f'role="img" aria-label="task timeline">'
    ]
    for i, label in enumerate(labels):
        y = _AXIS + i * _ROW
        svg.append(f'<rect class="lane" x="{_LEFT}" y="{y + 2}" width="{plot_w}" '
                   f'height="{_ROW - 4}" rx="3"/>')
        svg.append(f'<text class="row-label" x="{_LEFT - 8}" y="{y + _ROW / 2 + 4:.1f}" '
                   f'text-anchor="end">{_text(label)}</text>')
    step = _tick_step(span)
    k = 0
    while k * step <= span + 1e-9:
        x = x_of(t0 + k * step)
        svg.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{_AXIS - 4}" '
                   f'y2="{height - 8}"/>')
        svg.append(f'<text class="tick" x="{x:.1f}" y="{_AXIS - 10}" '
                   f'text-anchor="middle">{_fmt_seconds(k * step)}</text>')
        k += 1
    svg += _bars(_boxes(tasks, rows, row_of, x_of, t1), _WIDTH - 4)
    svg.append("</svg>")

    counts = ", ".join(f"{n} {word}" for word, n in result.counts.items() if n)
    took = _fmt_seconds(result.duration) if result.duration is not None else "?"
    name = Path(result.task_file).name if result.task_file else "ad hoc command"
    legend = "".join(
        f'<span><i style="background:{r.style.fill}"></i>{r.value}</span>'
        for r in TaskResult
        if result.counts.get(r.value)
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>spawnkit timeline: {_text(result.job_id)}</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{_text(name)} <small>job {_text(result.job_id)}</small></h1>\n"
        f'<p class="summary">{len(tasks)} tasks in {took}'
        f"{': ' + counts if counts else ''}"
        f"{' · spawner ' + _text(result.spawner) if result.spawner else ''}</p>\n"
        f'<div class="legend">{legend}</div>\n'
        + "\n".join(svg)
        + "\n</body>\n</html>\n"
    )


@dataclass
class _Box:
    task: TaskRecord
    row: int
    x: float
    width: float
    lost: bool


def _boxes(
    tasks: Sequence[TaskRecord],
    rows: dict[str, int | None],
    row_of: dict[int, int],
    x_of: Callable[[float], float],
    t_last: float,
) -> list[_Box]:
    out = []
    for t in tasks:
        slot = rows[t.id]
        row = row_of[slot] if slot is not None else len(row_of)
        if t.start is not None:
            end = t.end if t.end is not None else t_last  # lost: ran until we know no more
            x, x_end = x_of(t.start), x_of(end)
        else:
            # Never started (skipped, not run, failed to start): a thin mark when decided.
            x = x_end = x_of(t.end if t.end is not None else t_last)
        out.append(_Box(t, row, x, max(x_end - x, 3.0), t.start is not None and t.end is None))
    return out


def _fitted(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1] + "\u2026"


def _bar(box: _Box, next_x: float) -> str:
    """One task's group: tooltip, bar, and its id inside the bar or, if short, beside it."""
    t = box.task
    y = _AXIS + box.row * _ROW + (_ROW - _BAR) / 2
    fill = t.result.style.fill
    classes = f"bar r-{t.result.value}" + (" lost" if box.lost else "")
    label = ""
    inside = int((box.width - 8) / _CHAR)
    beside = int((next_x - (box.x + box.width) - 10) / _CHAR)
    text_y = y + _BAR / 2 + 4
    if inside >= 4 or (inside >= 3 and beside < 4):
        dark = " dark" if t.result in (TaskResult.NOT_RUN, TaskResult.SKIPPED) else ""
        label = (f'<text class="label{dark}" x="{box.x + 4:.1f}" y="{text_y:.1f}">'
                 f"{_text(_fitted(t.id, inside))}</text>")
    elif beside >= 4:
        label = (f'<text class="label dark" x="{box.x + box.width + 4:.1f}" y="{text_y:.1f}">'
                 f"{_text(_fitted(t.id, beside))}</text>")
    return (
        f'<g class="task" data-task="{_text(t.id)}" data-result="{t.result.value}">'
        f"<title>{_tooltip(t)}</title>"
        f'<rect class="{classes}" x="{box.x:.1f}" y="{y:.1f}" width="{box.width:.1f}" '
        f'height="{_BAR}" rx="3" fill="{fill}"/>{label}</g>'
    )


def _bars(boxes: list[_Box], right_edge: float) -> list[str]:
    """Bars in task order; a label beside a short bar stops short of the next bar."""
    next_x: dict[int, float] = {}
    by_row: dict[int, list[_Box]] = {}
    for box in boxes:
        by_row.setdefault(box.row, []).append(box)
    for row_boxes in by_row.values():
        row_boxes.sort(key=lambda b: b.x)
        for here, after in zip(row_boxes, [*row_boxes[1:], None], strict=True):
            next_x[id(here)] = after.x if after is not None else right_edge
    return [_bar(box, next_x[id(box)]) for box in boxes]


def write_timeline(path: Path, result: JobResult) -> None:
    write_atomic(path, timeline_html(result).encode("utf-8"))
