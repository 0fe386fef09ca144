"""One task file, one meaning, on every backend: each kind of fault found by trying spawnkit as
users do (the smallest input that showed it), as a test run on every backend, so that a
backend added later inherits it. Through the real command line, as a CI runner calls it."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliRun, RunCli, WriteTaskfile
from tests.engines.conftest import ENGINES, TEST_IMAGE, engine_argv, in_ci, task_gone
from tests.engines.kubernetes_cluster import forget_image, import_image
from tests.faults.jobs import job_dir_of, start_cli, started_handles, wait_until
from tests.helpers import pid_alive

ENTRY_IMAGE = "spawnkit-entry:test"


def _run(run_cli: RunCli, name: str, path: Path, *args: str, **kw: Any) -> CliRun:
    return run_cli("run", "--spawner", name, "--image", TEST_IMAGE, *args, str(path), **kw)


# -- 1. an init: TERM reaches every process of the task; orphans are reaped ---------------------

def test_term_ends_a_command_that_would_be_pid_1(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    path = taskfile('[[task]]\nid = "t"\ncommand = ["sleep", "60"]\ntimeout = 1\n')
    run = _run(run_cli, spawner_name, path, "--grace", "8")
    rec = run.task("t")
    assert rec["result"] == "timed_out"
    # Ended by the TERM, not by the KILL after the 8 s grace (at 9 s or more). The bound
    # leaves room for a batch system's launch, which counts in the duration (Slurm: ~0.5 s).
    assert rec["duration"] < 4.0, rec["duration"]


def test_term_reaches_every_process_of_the_task(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    # The parent waits for its child after the TERM: in a container, once the main process
    # has exited, the rest of the container is killed, whether its trap ran or not.
    tree = ("trap 'echo parent got TERM; wait; exit 0' TERM; "
            "(trap 'echo child got TERM; exit 0' TERM; sleep 100 & wait) & sleep 100 & wait")
    path = taskfile(f'[[task]]\nid = "t"\ncommand = {json.dumps(tree)}\ntimeout = 1\n')
    run = _run(run_cli, spawner_name, path, "--grace", "8")
    rec = run.task("t")
    assert rec["result"] == "timed_out" and rec["duration"] < 4.0, rec
    out = (run.job_dir / rec["stdout"]).read_text()
    assert sorted(out.splitlines()) == ["child got TERM", "parent got TERM"]


def test_orphans_are_reaped(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    """300 orphans under a limit of 100 processes: unreaped, their zombies would hold the
    limit and the next fork would fail."""
    script = "i=0; while [ $i -lt 300 ]; do (sleep 0 &); i=$((i+1)); done; echo done"
    path = taskfile(f'[[task]]\nid = "t"\ncommand = {json.dumps(script)}\npids = 100\n')
    run = _run(run_cli, spawner_name, path)
    rec = run.task("t")
    assert rec["result"] == "passed", rec
    assert (run.job_dir / rec["stdout"]).read_text() == "done\n"


def test_what_a_task_leaves_running_does_not_hold_it(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    """`server &` then the tests: the task ends when its command does, as a container
    ends with its main process; what it left running neither holds it nor writes on."""
    script = "(sleep 30; echo late) & echo early"
    path = taskfile(f'[[task]]\nid = "t"\ncommand = {json.dumps(script)}\ntimeout = 20\n')
    run = _run(run_cli, spawner_name, path)
    rec = run.task("t")
    assert rec["result"] == "passed", rec
    assert rec["duration"] < 10, rec["duration"]
    assert (run.job_dir / rec["stdout"]).read_text() == "early\n"


def test_a_task_can_signal_itself(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    script = "echo before; kill -TERM $$; sleep 5; echo after"
    path = taskfile(f'[[task]]\nid = "t"\ncommand = {json.dumps(script)}\n')
    run = _run(run_cli, spawner_name, path)
    rec = run.task("t")
    assert rec["result"] == "failed" and rec["duration"] < 4.0, rec
    assert (run.job_dir / rec["stdout"]).read_text() == "before\n"


# -- 2. the task's command is what runs ---------------------------------------------------------

@pytest.fixture(scope="module")
def entry_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An image whose ENTRYPOINT would swallow the command, on every engine that answers
    (and on the CI cluster's node, from Docker's)."""
    context = tmp_path_factory.mktemp("entry")
    (context / "Containerfile").write_text(
        f'FROM {TEST_IMAGE}\nENTRYPOINT ["/bin/echo", "entry:"]\n')
    built = []
    for name in ENGINES:
        proc = subprocess.run([*engine_argv(name), "build", "-q", "-t", ENTRY_IMAGE, "-f",
                               str(context / "Containerfile"), str(context)],
                              capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode == 0:
            built.append(name)
    imported = "docker" in built and import_image(ENTRY_IMAGE)
    yield ENTRY_IMAGE
    for name in built:
        subprocess.run([*engine_argv(name), "rmi", "-f", ENTRY_IMAGE], capture_output=True,
                       timeout=60, check=False)
    if imported:
        forget_image(ENTRY_IMAGE)


def test_the_command_runs_not_the_images_entrypoint(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, entry_image: str,
    no_leftovers: None,
) -> None:
    path = taskfile(f'[[task]]\nid = "t"\ncommand = "echo ran; exit 3"\n'
                    f'image = "{entry_image}"\n')
    run = _run(run_cli, spawner_name, path)
    rec = run.task("t")
    assert (rec["result"], rec["exit_code"]) == ("failed", 3), rec
    assert (run.job_dir / rec["stdout"]).read_text() == "ran\n"
    if spawner_name in (*ENGINES, "kubernetes"):
        assert rec["applied"]["entrypoint"] == []  # replaced: says which ran


# -- 3. the working folder ----------------------------------------------------------------------

def test_a_relative_cwd_is_the_task_files_folder(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
    no_leftovers: None,
) -> None:
    """`cwd = "."` (the README's own example) means the task file's folder everywhere."""
    (tmp_path / "data.txt").write_text("beside the task file\n")
    (tmp_path / "elsewhere").mkdir()
    path = taskfile('[[task]]\nid = "t"\ncommand = "cat data.txt"\ncwd = "."\n')
    run = _run(run_cli, spawner_name, path, cwd=tmp_path / "elsewhere")
    rec = run.task("t")
    assert rec["result"] == "passed", rec
    out = (run.job_dir / rec["stdout"]).read_text()
    assert out == "beside the task file\n"


def test_a_cwd_inside_the_workspace(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
    no_leftovers: None,
) -> None:
    (tmp_path / "ws" / "sub").mkdir(parents=True)
    (tmp_path / "ws" / "sub" / "here.txt").write_text("in sub\n")
    path = taskfile('[[task]]\nid = "t"\ncommand = "cat here.txt; touch made-here"\n'
                    'workspace = "ws"\ncwd = "sub"\n')
    run = _run(run_cli, spawner_name, path)
    rec = run.task("t")
    assert rec["result"] == "passed", rec
    assert (run.job_dir / rec["stdout"]).read_text() == "in sub\n"
    assert (tmp_path / "ws" / "sub" / "made-here").exists()


@pytest.mark.parametrize("cwd", ["nope", "/no/such/folder-of-spawnkit"])
def test_a_missing_working_folder_is_the_same_error(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, cwd: str, no_leftovers: None
) -> None:
    path = taskfile(f'[[task]]\nid = "t"\ncommand = "echo ran"\ncwd = "{cwd}"\n')
    run = _run(run_cli, spawner_name, path)
    rec = run.task("t")
    assert (rec["result"], rec["reason"]) == ("error", f"working folder '{cwd}' does not exist")


# -- 4. an exit code is an exit code ------------------------------------------------------------

def test_exit_codes_above_128_are_exit_codes(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    codes = (129, 130, 137, 143)
    path = taskfile("".join(f'[[task]]\nid = "x{c}"\ncommand = "exit {c}"\n' for c in codes))
    run = _run(run_cli, spawner_name, path)
    for code in codes:
        rec = run.task(f"x{code}")
        assert (rec["result"], rec["exit_code"], rec["signal"], rec["oom"], rec["reason"]) == (
            "failed", code, None, False, f"exit code {code}"), rec


# -- 5. secrets ---------------------------------------------------------------------------------

SECRET = "s3cr3t-one-meaning-5e1d"


def _holding(root: Path, value: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]


def test_a_task_sees_only_the_secrets_it_declares(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
    no_leftovers: None,
) -> None:
    path = taskfile('[[task]]\nid = "a"\nsecrets = ["API_TOKEN"]\n'
                    'command = "echo \\"a[$API_TOKEN]\\""\n'
                    '[[task]]\nid = "b"\ncommand = "echo \\"b[$API_TOKEN]\\""\n')
    run = _run(run_cli, spawner_name, path, env={"API_TOKEN": SECRET})
    assert run.code == 0, run.stderr
    job = run.job_dir
    assert (job / run.task("a")["stdout"]).read_text() == "a[***]\n"
    assert (job / run.task("b")["stdout"]).read_text() == "b[]\n"
    assert _holding(tmp_path, SECRET) == []


def test_a_secret_in_the_reports_and_artifacts_a_task_writes_is_masked(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
    no_leftovers: None,
) -> None:
    """A test runner's JUnit report quotes what the tests printed (pytest's --junitxml): a
    secret there is masked in the report kept with the task, in results.xml and its --junit
    copy, as in the task's artifacts, also as XML escapes it. Found by trying: all of them
    held the value."""
    (tmp_path / "ws").mkdir()
    xml_secret = 'p&ss<1>"q-9c1e'
    escaped = "p&amp;ss&lt;1&gt;&quot;q-9c1e"
    report = ('<testsuite name="s" tests="1" failures="1"><testcase name="t" classname="c">'
              '<failure message="token %s">trace %s</failure><system-out>num %s</system-out>'
              '</testcase></testsuite>')
    # Escaped as XML writers do: named entities, and (found by trying) character references.
    script = ("esc=$(printf '%s' \"$XML_TOKEN\" | sed -e 's/&/\\&amp;/g' -e 's/</\\&lt;/g' "
              "-e 's/>/\\&gt;/g' -e 's/\"/\\&quot;/g'); "
              "num=$(printf '%s' \"$XML_TOKEN\" | sed -e 's/&/\\&#38;/g' -e 's/</\\&#60;/g' "
              "-e 's/>/\\&#x3E;/g' -e 's/\"/\\&#34;/g'); "
              f"printf '{report}\\n' \"$esc\" \"$API_TOKEN\" \"$num\" > report.xml; "
              # The same report on stdout (a runner that prints it): masked there too.
              'echo "out $esc"; '
              'echo "log $API_TOKEN" > app.log; exit 1')
    path = taskfile('[[task]]\nid = "t"\nworkspace = "ws"\nsecrets = ["API_TOKEN", "XML_TOKEN"]\n'
                    'junit = "report.xml"\nartifacts = ["app.log"]\n'
                    f'command = {json.dumps(script)}\n')
    copy = tmp_path / "copy" / "junit.xml"
    run = _run(run_cli, spawner_name, path, "--junit", str(copy),
               env={"API_TOKEN": SECRET, "XML_TOKEN": xml_secret})
    assert run.code == 1, run.stdout + run.stderr
    assert escaped in (tmp_path / "ws" / "report.xml").read_text()  # the task's own
    for value in (SECRET, xml_secret, escaped):
        assert _holding(run.job_dir, value) == [] and value not in copy.read_text(), value
    merged = (run.job_dir / "results.xml").read_text()
    assert 'message="token ***"' in merged and "trace ***" in merged, merged
    # Read as XML, nothing of it is the value either (the kept report, results.xml).
    for xml in (run.job_dir / "tasks" / "t" / "junit" / "report.xml", run.job_dir / "results.xml"):
        texts = [t for e in ET.parse(xml).iter() for t in (e.text, e.tail, *e.attrib.values())]
        assert not [t for t in texts if t and xml_secret in t], xml
    assert (run.job_dir / "tasks" / "t" / "artifacts" / "app.log").read_text() == "log ***\n"
    assert (run.job_dir / run.task("t")["stdout"]).read_text() == "out ***\n"


def test_each_line_of_a_multi_line_secret_is_masked(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
    no_leftovers: None,
) -> None:
    """A key file printed line by line, prefixed or indented (as a YAML block holds it), shows
    none of its lines, in the output files nor in the JUnit message that quotes the last."""
    key = ("-----BEGIN TEST KEY-----\nMIIEvQ-line-one-9f2c\nQ2FtZW-line-two-71ab\n"
           "-----END TEST KEY-----")
    script = 'printf "%s\\n" "$TEST_KEY" | sed "s/^/  > /"; exit 3'
    path = taskfile(f'[[task]]\nid = "k"\nsecrets = ["TEST_KEY"]\ncommand = {json.dumps(script)}\n')
    run = _run(run_cli, spawner_name, path, "--junit", str(tmp_path / "junit.xml"),
               env={"TEST_KEY": key})
    assert run.task("k")["result"] == "failed", run.stderr
    assert (run.job_dir / run.task("k")["stdout"]).read_text() == "  > ***\n" * 4
    for line in key.splitlines():
        assert _holding(tmp_path, line) == [], line


def test_a_killed_runner_leaves_no_secret_and_gc_takes_its_task(
    spawner_name: str, run_cli: RunCli, tmp_path: Path, no_leftovers: None
) -> None:
    """The runner is killed (-9) while a task that printed its secret sleeps: the output was
    masked before it reached the disk, then `gc` and `results` write none of it either."""
    (tmp_path / "ws").mkdir()
    script = 'echo "token=$API_TOKEN"; echo "$API_TOKEN" >&2; touch started; exec sleep 300'
    path = tmp_path / "tasks.toml"
    path.write_text(f'[[task]]\nid = "t"\nsecrets = ["API_TOKEN"]\nworkspace = "ws"\n'
                    f'command = {json.dumps(script)}\n')
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE, "--no-gc",
                     str(path), env={"API_TOKEN": SECRET})
    job_dir = tmp_path / "results" / "latest"
    stdout = job_dir / "tasks" / "t" / "stdout"
    wait_until(lambda: (tmp_path / "ws" / "started").exists() and stdout.exists()
               and stdout.read_text() == "token=***\n", 60, "the task's masked line")
    proc.kill()
    proc.communicate(timeout=30)
    assert run_cli("gc", "--spawner", spawner_name).code == 0
    rebuilt = run_cli("results", str(job_dir.resolve()))
    assert rebuilt.code == 1 and "lost" in rebuilt.stdout
    assert _holding(tmp_path, SECRET) == []
    assert (job_dir / "tasks" / "t" / "stderr").read_text() == "***\n"


# -- 6. durations from a monotonic clock --------------------------------------------------------

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def test_durations_do_not_follow_a_stepped_wall_clock(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
    no_leftovers: None,
) -> None:
    """The wall clock is stepped back an hour (libfaketime) while a 3 s task runs."""
    if not FAKETIME.exists():
        missing = "libfaketime is missing: apt-get install faketime (.ci/run does)"
        if in_ci():
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    (tmp_path / "ws").mkdir()
    path = taskfile('[[task]]\nid = "t"\nworkspace = "ws"\n'
                    'command = "touch started; sleep 3; echo done"\n')
    env = {"LD_PRELOAD": str(FAKETIME), "FAKETIME_TIMESTAMP_FILE": str(offset),
           "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE, str(path),
                     env=env)
    wait_until(lambda: (tmp_path / "ws" / "started").exists(), 60, "the task")
    offset.write_text("-1h\n")
    out, _err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    data = json.loads((job_dir_of(tmp_path) / "results.json").read_text())
    task = data["tasks"][0]
    assert 2.5 <= task["duration"] < 10, task
    assert 2.5 <= data["duration"] < 20, data["duration"]
    assert not re.search(r"-\d", out), out  # no negative time in the summary


# -- 7. a stop waits for no engine call ---------------------------------------------------------

class Blackhole:
    """A registry that takes connections and never answers."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.accepted = threading.Event()
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.held.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    yield hole
    hole.close()


def test_a_stop_does_not_wait_for_a_hung_engine_call(
    spawner_name: str, tmp_path: Path, blackhole: Blackhole, no_leftovers: None
) -> None:
    """SIGTERM while the image is pulled from a registry that never answers (a container
    backend), or while the task runs (process): exit within grace + 2 s, as 143."""
    (tmp_path / "ws").mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text(f'[[task]]\nid = "t"\nimage = "127.0.0.1:{blackhole.port}/hang:latest"\n'
                    'workspace = "ws"\ncommand = "touch started; sleep 300"\n')
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--grace", "1", str(path))
    if spawner_name in (*ENGINES, "kubernetes"):  # the node's runtime pulls for kubernetes
        assert blackhole.accepted.wait(60), "the engine never tried the registry"
    else:
        wait_until(lambda: (tmp_path / "ws" / "started").exists(), 60, "the task")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert time.monotonic() - sent < 1 + 2, time.monotonic() - sent
    assert proc.returncode == 143
    rec = json.loads((job_dir_of(tmp_path) / "results.json").read_text())["tasks"][0]
    # Stopped while its image was pulled (on kubernetes, its Pod Pending): it never began.
    began = spawner_name not in (*ENGINES, "kubernetes")
    assert rec["result"] == ("interrupted" if began else "not_run"), rec


def test_a_second_signal_exits_at_once(
    spawner_name: str, tmp_path: Path, no_leftovers: None
) -> None:
    (tmp_path / "ws").mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "t"\nworkspace = "ws"\n'
                    'command = "trap \\"\\" TERM; touch started; while :; do sleep 1; done"\n')
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE, "--grace",
                     "60", str(path))
    wait_until(lambda: (tmp_path / "ws" / "started").exists(), 60, "the task")
    journal = tmp_path / "results" / "latest" / "journal.jsonl"
    wait_until(lambda: started_handles(journal.parent), 30, "the journal's started")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: '"terminating"' in journal.read_text(), 30, "the first stop")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert time.monotonic() - sent < 3, time.monotonic() - sent  # far below the 60 s grace
    assert proc.returncode == 143


def test_a_stop_cut_short_by_the_runner_s_death_ends_as_it_began(
    spawner_name: str, tmp_path: Path, run_cli: RunCli, no_leftovers: None
) -> None:
    """A CI's cancel: SIGTERM, then `kill -9` of the runner within the grace. The task that
    ignores TERM gets its KILL all the same, and a resume reports it interrupted, as the
    stop began, not "killed by SIGKILL" (or passed, had it handled TERM)."""
    (tmp_path / "ws").mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "t"\nworkspace = "ws"\n'
                    'command = "trap \\"\\" TERM; touch started; while :; do sleep 1; done"\n')
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE, "--grace",
                     "3", "--no-gc", str(path))
    wait_until(lambda: (tmp_path / "ws" / "started").exists(), 120, "the task")
    journal = tmp_path / "results" / "latest" / "journal.jsonl"
    wait_until(lambda: started_handles(journal.parent), 30, "the journal's started")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: '"terminating"' in journal.read_text(), 30, "the stop")
    proc.kill()
    proc.communicate(timeout=30)
    job_dir = job_dir_of(tmp_path)
    resumed = run_cli("resume", str(job_dir), timeout=120)
    assert resumed.code == 1, resumed.stderr  # the resume itself was not interrupted
    rec = json.loads((job_dir / "results.json").read_text())["tasks"][0]
    assert (rec["result"], rec["reason"]) == ("interrupted", "interrupted: SIGTERM received")
    assert rec["adopted"] is True, rec
    assert task_gone(spawner_name, job_dir.name, rec["handle"])


# -- 8. gc takes a dead runner's tasks at once, in parallel -------------------------------------

def test_gc_takes_a_dead_runners_tasks_at_once(
    spawner_name: str, tmp_path: Path, run_cli: RunCli, no_leftovers: None
) -> None:
    n = 8
    (tmp_path / "ws").mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text('[defaults]\nworkspace = "ws"\n' + "".join(
        f'[[task]]\nid = "t{i}"\ncommand = "trap \\"\\" TERM; echo $$ > pid-{i}; '
        f'touch started-{i}; exec sleep 300"\n' for i in range(n)))
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE,
                     "--max-running", str(n), "--no-gc", str(path))
    wait_until(lambda: all((tmp_path / "ws" / f"started-{i}").exists() for i in range(n))
               and len(started_handles(job_dir_of(tmp_path))) == n, 120, "every task")
    proc.kill()
    proc.communicate(timeout=30)
    job_id = job_dir_of(tmp_path).name
    began = time.monotonic()
    gc = run_cli("gc", "--spawner", spawner_name)
    took = time.monotonic() - began
    assert gc.code == 0, gc.stderr
    assert took < 5.0, took
    if spawner_name in (*ENGINES, "kubernetes"):
        # The PIDs a Pod's task sees are of its own namespace: nothing to look for here.
        handles = started_handles(job_dir_of(tmp_path))
        assert [h for h in handles.values() if not task_gone(spawner_name, job_id, h)] == []
    else:
        pids = [int((tmp_path / "ws" / f"pid-{i}").read_text()) for i in range(n)]
        assert not [p for p in pids if pid_alive(p)]
