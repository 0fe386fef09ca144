"""Services (`[[service]]`) with readiness, the same task file on every backend that runs them
(process, docker, podman): an HTTP server from the busybox image, a task that fetches a page
from it by its host name, a service that never becomes ready, nothing left on the engines, a
killed runner's services taken by gc, and the backends that refuse them (slurm, kubernetes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CliRun, RunCli, WriteTaskfile
from tests.engines.conftest import (
    BACKENDS,
    ENGINES,
    TEST_IMAGE,
    containers_of,
    engine_cli,
    require_engine,
)
from tests.faults.jobs import job_dir_of, start_cli, wait_until
from tests.helpers import processes_with

#: Backends that refuse tasks with services before anything runs.
REFUSING = ("slurm", "kubernetes")

#: The service: an HTTP server whose page names the folder it serves (unique to this start,
#: so tasks that see the same page share one start). `busybox httpd` on the host (process) and
#: in the busybox image alike; the port is free on this host.
SERVICE = """\
[[service]]
id = "web"
image = "{image}"
command = "d=$(mktemp -d) && echo hello from $d > $d/index.html && echo web: serving $d >&2 && exec busybox httpd -f -p {port} -h $d"
ready = {ready}
ready_timeout = {ready_timeout}
ready_interval = 0.2
"""  # noqa: E501
FETCH = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 $SPAWNKIT_SERVICE_WEB_HOST {port}"
READY = ["sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 1 127.0.0.1 {port} "
         "| grep -q hello"]


@pytest.fixture(params=[p for p in BACKENDS if p.values[0] not in REFUSING])
def service_backend(request: pytest.FixtureRequest) -> str:
    """The backends that run services (a refusing one has its own tests)."""
    name: str = request.param
    require_engine(name)
    return name


def free_port() -> int:
    """A port no process of this host listens on (the process backend's services share it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_file(port: int, *, ready: list[str] | None = None, ready_timeout: float = 30,
                 tasks: str | None = None) -> str:
    ready = ready or [word.format(port=port) for word in READY]
    text = SERVICE.format(image=TEST_IMAGE, port=port, ready=json.dumps(ready),
                          ready_timeout=ready_timeout)
    fetch = json.dumps("echo host=$SPAWNKIT_SERVICE_WEB_HOST; " + FETCH.format(port=port))
    return text + (tasks if tasks is not None else
                   f'[[task]]\nid = "fetch"\nservices = ["web"]\ncommand = {fetch}\n'
                   f'[[task]]\nid = "again"\nservices = ["web"]\ncommand = {fetch}\n')


def run(run_cli: RunCli, name: str, path: Path, *args: str) -> CliRun:
    return run_cli("run", "--spawner", name, "--image", TEST_IMAGE, *args, str(path))


def assert_refused(run_cli: RunCli, name: str, path: Path) -> None:
    """One line naming the task and saying why, exit 2, before anything runs."""
    out = run(run_cli, name, path)
    assert out.code == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    # One line per task that uses a service.
    assert [line.partition(": task ")[2].split(":")[0] for line in lines] == [
        "'fetch'", "'again'"], lines
    assert all(f"services ([[service]]) do not run on {name}" in line for line in lines), lines
    assert not (out.results_root / "latest").exists()


def networks_of(name: str, job_id: str) -> list[str]:
    """The engine's networks of a job (by spawnkit's job label)."""
    return engine_cli(name, "network", "ls", "-q", "--filter",
                      f"label=spawnkit.job={job_id}").split()


def service_processes(port: int) -> list[int]:
    """PIDs of this host's processes serving `port` with busybox httpd (process backend)."""
    return processes_with("httpd", str(port))


def nothing_left(name: str, job_id: str, port: int) -> bool:
    if name in ENGINES:
        return containers_of(name, job_id) == [] and networks_of(name, job_id) == []
    return service_processes(port) == []


# -- the must-show: a service that is ready, one that never is, nothing left -------------------


def test_a_task_fetches_a_page_from_its_service_by_host_name(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    port = free_port()
    path = taskfile(service_file(port))
    if spawner_name in REFUSING:
        assert_refused(run_cli, spawner_name, path)
        return
    out = run(run_cli, spawner_name, path)
    assert out.code == 0, out.stderr
    job = out.job_dir
    pages = []
    for task_id in ("fetch", "again"):
        record = out.task(task_id)
        assert record["result"] == "passed", record
        stdout = (job / record["stdout"]).read_text()
        host = "127.0.0.1" if spawner_name == "process" else "web"
        assert stdout.startswith(f"host={host}\n"), stdout
        assert "200 OK" in stdout and "hello from " in stdout, stdout
        pages.append(stdout.rpartition("hello from ")[2])
    # Both tasks saw the same start of the service (its page names the folder it made).
    assert pages[0] == pages[1], pages
    assert "web: serving" in (job / "services" / "web" / "stderr").read_text()
    assert nothing_left(spawner_name, job.name, port)


def test_a_service_that_never_becomes_ready_ends_its_task_as_error(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    port = free_port()
    path = taskfile(service_file(port, ready=["false"], ready_timeout=3))
    if spawner_name in REFUSING:
        assert_refused(run_cli, spawner_name, path)
        return
    out = run(run_cli, spawner_name, path)
    assert out.code == 1, out.stderr
    results = out.results
    for task_id in ("fetch", "again"):
        record = out.task(task_id)
        assert (record["result"], record["cause"]) == ("error", "requirement"), record
        reason = record["reason"]
        assert reason.startswith("service 'web' did not become ready within 3 s (ready: "
                                 "false)"), reason
        # The tail of its output, where it is.
        assert "its last lines (services/web/stderr): web: serving" in reason, reason
    print(f"\n{spawner_name}: never-ready job took {results['duration']:.2f} s "
          "(ready_timeout 3 s)")
    assert results["duration"] < 3 + 5, results["duration"]
    assert nothing_left(spawner_name, out.job_dir.name, port)


def test_a_service_whose_program_is_missing_ends_its_task_as_error(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    """No `ready` command (ready once started): a service that never started is not taken
    for a ready one, whatever the timing."""
    path = taskfile('[[service]]\nid = "db"\ncommand = ["no-such-db-xyz"]\n' + "".join(
        f'[[task]]\nid = "{t}"\nservices = ["db"]\ncommand = "echo hi"\n'
        for t in ("fetch", "again")))
    if spawner_name in REFUSING:
        assert_refused(run_cli, spawner_name, path)
        return
    out = run(run_cli, spawner_name, path)
    assert out.code == 1, out.stderr
    for task_id in ("fetch", "again"):
        record = out.task(task_id)
        assert (record["result"], record["cause"]) == ("error", "requirement"), record
        assert record["reason"].startswith("service 'db' "), record["reason"]


def test_a_task_naming_an_unknown_service_is_one_line(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    port = free_port()
    path = taskfile(service_file(port, tasks='[[task]]\nid = "t"\nservices = ["db"]\n'
                                             'command = "true"\n'))
    for args in (("validate", str(path)), ("run", str(path))):
        out = run_cli(*args)
        assert out.code == 2, out
        assert out.stderr.strip().splitlines() == [
            f"spawnkit: error: {path}: task 't': services: unknown service 'db' (no "
            "[[service]] has that id)"]


def test_bad_service_tables_are_one_line_each(run_cli: RunCli, taskfile: WriteTaskfile) -> None:
    path = taskfile('[[service]]\nid = "web"\nready_timeout = "soon"\n'
                    '[[service]]\nid = "web"\n'
                    '[[service]]\nid = "No_Such"\ncommand = ["x"]\n'
                    '[defaults]\nservices = "web"\n'
                    '[[task]]\nid = "t"\ncommand = "true"\n')
    out = run_cli("validate", str(path))
    assert out.code == 2
    assert out.stderr.strip().splitlines() == [
        f"spawnkit: error: {path}: [defaults]: services: must be a list of strings",
        f"spawnkit: error: {path}: service 'web': ready_timeout: must be a finite number "
        "greater than 0",
        f"spawnkit: error: {path}: service 'web': duplicate id",
        f"spawnkit: error: {path}: service 'No_Such': id: must be a host name (lower-case "
        "letters, digits and '-', at most 63): tasks reach the service by it",
    ]


# -- when a service stops, and after a crash ---------------------------------------------------


@pytest.mark.parametrize("backend", ["slurm", "kubernetes"])
def test_backends_without_services_refuse_them_before_anything_runs(
    backend: str, run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    """No engine needed: the refusal comes before the backend is asked anything."""
    assert_refused(run_cli, backend, taskfile(service_file(free_port())))


def test_a_service_stops_once_the_last_task_that_needs_it_has_finished(
    service_backend: str, tmp_path: Path, no_leftovers: None
) -> None:
    """`after` needs no service and runs after `fetch`: while it waits (for the test's word),
    the service is already gone."""
    spawner_name = service_backend
    port = free_port()
    fetch = json.dumps(FETCH.format(port=port))
    (tmp_path / "ws").mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text(service_file(port, tasks=(
        f'[[task]]\nid = "fetch"\nservices = ["web"]\ncommand = {fetch}\n'
        '[[task]]\nid = "after"\ndepends_on = ["fetch"]\nworkspace = "ws"\n'
        'command = "touch started; while [ ! -e go ]; do sleep 0.05; done"\n')))
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE, str(path))
    wait_until(lambda: (tmp_path / "ws" / "started").exists(), 120, "the task after fetch")
    job_id = job_dir_of(tmp_path).name
    try:
        wait_until(lambda: _service_gone(spawner_name, job_id, port), 30,
                   "the service stopped while a task that does not need it runs")
    finally:
        (tmp_path / "ws" / "go").touch()
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert nothing_left(spawner_name, job_id, port)


def _service_gone(name: str, job_id: str, port: int) -> bool:
    if name in ENGINES:
        listed = engine_cli(name, "ps", "-a", "-q", "--filter", f"label=spawnkit.job={job_id}",
                            "--filter", "label=spawnkit.service")
        return listed.split() == []
    return service_processes(port) == []


def start_one_task(tmp_path: Path, spawner_name: str, port: int, command: str,
                   extra: str = "", later: str = "") -> subprocess.Popen[str]:
    """`spawnkit run` of one task, "t", that needs the web service and runs `touch started;
    COMMAND` in its workspace (tmp_path/ws), returned once it runs. `extra`: its other keys;
    `later`: tasks after it."""
    (tmp_path / "ws").mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text(service_file(port, tasks=(
        '[[task]]\nid = "t"\nservices = ["web"]\nworkspace = "ws"\n' + extra
        + f'command = {json.dumps("touch started; " + command)}\n' + later)))
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE, "--no-gc",
                     str(path))
    wait_until(lambda: (tmp_path / "ws" / "started").exists(), 120, "the task")
    return proc


def test_gc_takes_the_services_of_a_killed_runner(
    service_backend: str, tmp_path: Path, run_cli: RunCli, no_leftovers: None
) -> None:
    spawner_name = service_backend
    port = free_port()
    proc = start_one_task(tmp_path, spawner_name, port, "exec sleep 300")
    job_id = job_dir_of(tmp_path).name
    assert not nothing_left(spawner_name, job_id, port)  # the service runs
    proc.kill()
    proc.communicate(timeout=30)
    gc = run_cli("gc", "--spawner", spawner_name)
    assert gc.code == 0, gc.stderr
    assert "service web" in gc.stdout, gc.stdout
    if spawner_name in ENGINES:
        assert f"network spawnkit-{job_id}" in gc.stdout, gc.stdout
    wait_until(lambda: nothing_left(spawner_name, job_id, port), 10, "nothing of the job left")


def _serving(name: str, job_id: str, port: int) -> list[str]:
    """The job's service still running: its container's ID, or its process's PID."""
    if name in ENGINES:
        return engine_cli(name, "ps", "-q", "--no-trunc", "--filter",
                          f"label=spawnkit.job={job_id}", "--filter",
                          "label=spawnkit.service=web").split()
    return [str(pid) for pid in service_processes(port)]


def _kill_service(name: str, job_id: str, port: int) -> None:
    """SIGKILL the job's service from outside; back once it is gone as its engine sees it
    (or reaped, on the process backend)."""
    serving = _serving(name, job_id, port)
    assert len(serving) == 1, serving
    if name in ENGINES:
        engine_cli(name, "kill", serving[0])
    else:
        os.kill(int(serving[0]), signal.SIGKILL)
    wait_until(lambda: not _serving(name, job_id, port), 60, "the service's end")


def test_a_service_that_ends_under_a_running_task_is_noted_on_its_failure(
    service_backend: str, tmp_path: Path, no_leftovers: None
) -> None:
    """The service is killed from outside while a task that needs it runs. The task runs on
    and meets the end as its own failure; that failure says which service ended and how."""
    spawner_name = service_backend
    port = free_port()
    proc = start_one_task(tmp_path, spawner_name, port,
                          "until [ -e go ]; do sleep 0.05; done; exit 1", "timeout = 120\n")
    job_dir = job_dir_of(tmp_path)
    _kill_service(spawner_name, job_dir.name, port)  # then the task fails
    (tmp_path / "ws" / "go").touch()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    record = next(t for t in json.loads((job_dir / "results.json").read_text())["tasks"]
                  if t["id"] == "t")
    assert (record["result"], record["reason"]) == ("failed", "exit code 1"), record
    [note] = [n for n in record["notes"] if n.startswith("service 'web'")]
    # How it ended, in the same words on every backend.
    assert note.startswith("service 'web' ended after it was ready (killed by signal 9 "
                           "(SIGKILL)); "), note
    assert "its last lines (services/web/stderr): web: serving" in note, note
    assert nothing_left(spawner_name, job_dir.name, port)


def test_a_task_that_starts_after_its_service_ended_does_not_run(
    service_backend: str, tmp_path: Path, no_leftovers: None
) -> None:
    """The service was ready for the first task and is killed from outside while it runs; the
    next task that needs it (waiting on the first) does not start against a dead service: it
    is an error naming the service and how it ended, and the job fails."""
    spawner_name = service_backend
    port = free_port()
    later = ('[[task]]\nid = "next"\nservices = ["web"]\ndepends_on = ["t"]\n'
             'workspace = "ws"\ncommand = "touch next-ran"\n')
    proc = start_one_task(tmp_path, spawner_name, port, "until [ -e go ]; do sleep 0.05; done",
                          "timeout = 120\n", later)
    job_dir = job_dir_of(tmp_path)
    _kill_service(spawner_name, job_dir.name, port)
    (tmp_path / "ws" / "go").touch()
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    records = {t["id"]: t for t in json.loads((job_dir / "results.json").read_text())["tasks"]}
    assert records["t"]["result"] == "passed", records["t"]
    nxt = records["next"]
    assert (nxt["result"], nxt["cause"]) == ("error", "requirement"), nxt
    assert nxt["reason"].startswith("service 'web' ended after it was ready (killed by signal 9 "
                                    "(SIGKILL)); "), nxt
    assert not (tmp_path / "ws" / "next-ran").exists()
    assert nothing_left(spawner_name, job_dir.name, port)
