"""The kubernetes backend when things break: the runner killed with its Pods running, and the
API server going silent mid-job.

The API server is shared by every test of the machine, so it is never stopped here: the
runner reaches it through a TCP relay of the test's own (TLS passes through untouched), and
the relay going silent is, to the runner, the API server hanging.
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.engines.conftest import TEST_IMAGE, require_engine
from tests.engines.kubernetes_cluster import kubectl, kubernetes_objects
from tests.faults.jobs import job_dir_of, start_cli, started_handles, wait_until

pytestmark = pytest.mark.kubernetes


@pytest.fixture(autouse=True)
def _cluster() -> None:
    require_engine("kubernetes")


def _leave_nothing(job_id: str) -> list[str]:
    left = kubernetes_objects(job_id)
    if left:
        kubectl("delete", "--grace-period=0", "--force", *left, check=False)
    return left


def test_gc_deletes_the_pods_and_secrets_of_a_killed_runner(
    tmp_path: Path, run_cli: RunCli
) -> None:
    n = 8
    (tmp_path / "ws").mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text('[defaults]\nworkspace = "ws"\nsecrets = ["API_TOKEN"]\n' + "".join(
        f'[[task]]\nid = "t{i}"\ncommand = "touch started-{i}; exec sleep 300"\n'
        for i in range(n)))
    proc = start_cli(tmp_path, "--spawner", "kubernetes", "--image", TEST_IMAGE,
                     "--max-running", str(n), "--no-gc", str(path),
                     env={"API_TOKEN": "s3cr3t-gc"})
    wait_until(lambda: all((tmp_path / "ws" / f"started-{i}").exists() for i in range(n))
               and len(started_handles(job_dir_of(tmp_path))) == n, 120, "every task")
    job_id = job_dir_of(tmp_path).name
    try:
        running = kubernetes_objects(job_id)
        assert len([o for o in running if o.startswith("pod/")]) == n
        assert len([o for o in running if o.startswith("secret/")]) == n
        proc.kill()
        proc.communicate(timeout=30)
        began = time.monotonic()
        gc = run_cli("gc", "--spawner", "kubernetes")
        took = time.monotonic() - began
        assert gc.code == 0, gc.stderr
        assert gc.stdout.count("kubernetes: removed Pod ") == n, gc.stdout
        assert gc.stdout.count("kubernetes: removed Secret ") == n, gc.stdout
        assert took < 10.0, took
        assert kubernetes_objects(job_id) == []
    finally:
        assert _leave_nothing(job_id) == []


class Relay:
    """127.0.0.1:port -> the API server, byte for byte, until told to go silent: then it
    takes connections and bytes and passes nothing on, as a hung server does."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.silent = threading.Event()
        self._closed = False
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self._socks.append(conn)
            if self.silent.is_set():
                continue
            upstream = socket.create_connection(self.target)
            self._socks.append(upstream)
            threading.Thread(target=self._pump, args=(conn, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self._closed:
            ready, _, _ = select.select(list(peers), [], [], 0.1)
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if not self.silent.is_set():
                    peers[sock].sendall(data)

    def close(self) -> None:
        self._closed = True
        self.server.close()
        for sock in self._socks:
            sock.close()


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[Relay, Path]]:
    """A relay to the API server, and a kubeconfig that goes through it."""
    source = Path(os.environ["KUBECONFIG"])
    text = source.read_text()
    assert "server: https://127.0.0.1:6443" in text, "not the cluster of .ci/kubernetes.sh"
    hop = Relay(("127.0.0.1", 6443))
    config = tmp_path / "relayed.kubeconfig"
    config.write_text(text.replace("127.0.0.1:6443", f"127.0.0.1:{hop.port}"))
    yield hop, config
    hop.close()


def test_a_silent_api_server_ends_the_job_within_the_bound(
    tmp_path: Path, run_cli: RunCli, relay: tuple[Relay, Path]
) -> None:
    hop, config = relay
    down_after = 3.0
    (tmp_path / "ws").mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "t"\nworkspace = "ws"\n'
                    'command = "touch started; exec sleep 300"\n')
    proc = start_cli(tmp_path, "--spawner", "kubernetes", "--image", TEST_IMAGE,
                     "--engine-down-after", str(down_after), str(path),
                     env={"KUBECONFIG": str(config)})
    wait_until(lambda: (tmp_path / "ws" / "started").exists()
               and (tmp_path / "results" / "latest").exists()
               and started_handles(job_dir_of(tmp_path)), 60, "the task")
    job_id = job_dir_of(tmp_path).name
    try:
        hop.silent.set()
        silenced = time.monotonic()
        _out, err = proc.communicate(timeout=60)
        ended_after = time.monotonic() - silenced
        assert proc.returncode == 1
        # The bound, one poll, and the runner's own exit (its calls are abandoned).
        assert ended_after < down_after + 3.0, (ended_after, err)
        rec = json.loads((job_dir_of(tmp_path) / "results.json").read_text())["tasks"][0]
        assert rec["result"] == "error", rec
        assert f"has not answered for {down_after:g} s" in rec["reason"], rec["reason"]
        assert "removed by 'spawnkit gc' once the API server answers" in rec["reason"]
        # Its Pod outlived the runner, which could not reach the server: gc takes it.
        assert kubernetes_objects(job_id) != []
        gc = run_cli("gc", "--spawner", "kubernetes")
        assert gc.code == 0, gc.stderr
        assert kubernetes_objects(job_id) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
        assert _leave_nothing(job_id) == []
