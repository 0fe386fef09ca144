"""The container watchdog's own choices, on a fake engine: the case a real engine gives only
by chance (a container that ends by itself just as its deadline comes)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from spawnkit.spawners.container import watchdog
from spawnkit.spawners.container.engine import ContainerSummary
from spawnkit.spawners.container.spec import LABEL_JOB


class FakeEngine:
    """The job's one container: it ignores TERM and runs until a KILL; or, `ended`, it is
    still listed running at the first look but has ended by the time a signal comes."""

    def __init__(self, *, ended: bool = False, failures: int = 0) -> None:
        self.ended = ended
        self.failures = failures  # the first calls of kill that fail (an engine's 500)
        self.kills: list[str] = []
        self.looks = 0

    def containers(self, label: str) -> list[ContainerSummary]:
        assert label == f"{LABEL_JOB}=job"
        self.looks += 1
        running = "SIGKILL" not in self.kills and not (self.ended and self.looks > 1)
        return [ContainerSummary("c1", "running" if running else "exited", {}, 0.0)]

    def kill(self, container_id: str, signal: str) -> bool:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("500 Server Error: Internal Server Error")
        self.kills.append(signal)
        return not self.ended


def _requests(out: Path, *lines: dict[str, object]) -> dict[str, watchdog.Watched]:
    watched: dict[str, watchdog.Watched] = {}
    text = "".join(json.dumps(line) + "\n" for line in lines)
    assert watchdog.read_requests(io.BytesIO(text.encode()), watched) is False  # runner gone
    return watched


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "POLL", 0.01)


def test_a_container_past_its_deadline_is_termed_then_killed(tmp_path: Path) -> None:
    watched = _requests(tmp_path, {"op": "watch", "id": "c1", "out": str(tmp_path),
                                   "started": time.time() - 10, "timeout": 2, "grace": 0.05})
    engine = FakeEngine()
    watchdog.backstop(engine, "job", str(tmp_path), watched)
    assert engine.kills == ["SIGTERM", "SIGKILL"]
    assert (tmp_path / "timed-out").read_text() == "2\n"
    assert watched == {}


def test_one_that_ended_by_itself_keeps_its_own_exit(tmp_path: Path) -> None:
    """Listed running, but gone by the TERM: no timed-out mark, no KILL."""
    watched = _requests(tmp_path, {"op": "watch", "id": "c1", "out": str(tmp_path),
                                   "started": time.time() - 10, "timeout": 2, "grace": 0.05})
    engine = FakeEngine(ended=True)
    watchdog.backstop(engine, "job", str(tmp_path), watched)
    assert engine.kills == ["SIGTERM"]
    assert not (tmp_path / "timed-out").exists()


def test_a_signal_the_engine_failed_to_send_is_sent_again(tmp_path: Path) -> None:
    """Found by review: a TERM whose call failed was never tried again, and the container
    ran on with a watchdog polling it for good."""
    watched = _requests(tmp_path, {"op": "watch", "id": "c1", "out": str(tmp_path),
                                   "started": time.time() - 10, "timeout": 2, "grace": 0.05})
    engine = FakeEngine(failures=2)
    watchdog.backstop(engine, "job", str(tmp_path), watched)
    assert engine.kills == ["SIGTERM", "SIGKILL"]
    assert (tmp_path / "timed-out").read_text() == "2\n"


def test_collected_and_closed_leave_nothing_to_do(tmp_path: Path) -> None:
    watch = {"op": "watch", "id": "c1", "out": str(tmp_path), "started": time.time(),
             "timeout": 2, "grace": 1}
    assert _requests(tmp_path, watch, {"op": "forget", "id": "c1"}) == {}
    closed: dict[str, watchdog.Watched] = {}
    text = json.dumps(watch) + "\n" + json.dumps({"op": "close"}) + "\n"
    assert watchdog.read_requests(io.BytesIO(text.encode()), closed) is True
