"""timeline.html: one self-contained page, one bar per task, that a real browser draws."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from spawnkit.core.results import JobResult, TaskRecord
from spawnkit.core.task.outcome import TaskResult
from spawnkit.core.timeline import timeline_html
from tests.ci.conftest import MIXED_RESULTS, MixedJob

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]


class _Bars(HTMLParser):
    """Collects each task group's bar and tooltip, and anything that would fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[dict[str, str]] = []
        self.titles: list[str] = []
        self.fetches: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "rect" and "bar" in a.get("class", "").split():
            self.bars.append(a)
        if tag in ("script", "link", "img", "iframe") or "src" in a or "href" in a:
            self.fetches.append(tag)
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.titles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def _parse(html: str) -> _Bars:
    parser = _Bars()
    parser.feed(html)
    return parser


def test_one_bar_per_task_coloured_by_result(mixed_job: MixedJob) -> None:
    page = (mixed_job.job_dir / "timeline.html").read_text()
    parsed = _parse(page)
    assert len(parsed.bars) == len(MIXED_RESULTS)
    results = {t["id"]: t["result"] for t in mixed_job.results["tasks"]}
    for bar in parsed.bars:
        result = next(c[2:] for c in bar["class"].split() if c.startswith("r-"))
        assert bar["fill"] == TaskResult(result).style.fill
    assert sorted(b["class"].split()[1][2:] for b in parsed.bars) == sorted(results.values())
    assert parsed.fetches == []


def test_hover_shows_id_duration_and_result(mixed_job: MixedJob) -> None:
    parsed = _parse((mixed_job.job_dir / "timeline.html").read_text())
    tips = parsed.titles[1:]  # the first is the page's own title
    by_id = {tip.splitlines()[0]: tip for tip in tips}
    assert set(by_id) == set(MIXED_RESULTS)
    assert "timed_out · 0." in by_id["hangs"] and "timed out after 0.5 s" in by_id["hangs"]
    assert "skipped · did not run" in by_id["after-fail"]


def _record(task_id: str, start: float | None, end: float | None, slot: int | None,
            result: str = "passed") -> TaskRecord:
    return TaskRecord(
        id=task_id, result=TaskResult(result), status="finished", cause=None, reason=None,
        exit_code=0, signal=None,
        oom=False, start=start, end=end,
        duration=None if start is None or end is None else end - start, spawner="process",
        handle="1", command="true", depends_on=[], image=None, limits={}, stdout="o",
        stderr="e", slot=slot,
    )


def test_rows_are_slots_and_lost_or_unslotted_tasks_still_get_bars() -> None:
    tasks = [
        _record("a", 0.0, 2.0, 0), _record("b", 0.0, 1.0, 1), _record("c", 1.0, 3.0, 1),
        _record("old-journal", 0.5, 1.5, None), _record("lost", 2.0, None, None, "lost"),
        _record("never", None, 2.5, None, "not_run"), _record("<x&y>", 2.9, 3.0, 0),
    ]
    page = timeline_html(JobResult("j", "t.toml", "process", 0.0, 3.0, tasks))
    parsed = _parse(page)
    assert len(parsed.bars) == len(tasks)
    assert "slot 0" in page and "slot 1" in page and "not started" in page
    assert "slot 2" in page  # the unslotted overlap gets a free row of its own
    assert "&lt;x&amp;y&gt;" in page and "<x&y>" not in page
    assert any("lost" in b["class"].split() for b in parsed.bars)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _need_chromium() -> str:
    found = _chromium()
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed (CI installs Debian's 'chromium')")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def test_headless_chromium_draws_one_bar_per_task(mixed_job: MixedJob, tmp_path: Path) -> None:
    chromium = _need_chromium()
    url = (mixed_job.job_dir / "timeline.html").as_uri()
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True, text=True, timeout=60,
        )
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = _parse(dom.stdout)
    assert len(parsed.bars) == len(MIXED_RESULTS)
    assert "Uncaught" not in dom.stderr and "CONSOLE" not in dom.stderr
    shot = tmp_path / "timeline.png"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
             "--window-size=1200,400", url],
            capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
