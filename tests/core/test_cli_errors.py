"""Bad input: one clear line on stderr, exit 2, never a traceback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.faults.jobs import start_cli

CASES = {
    "missing file": (None, "no such file"),
    "bad toml": ("[[task]\nid=", "invalid TOML"),
    "no command": ('[[task]]\nid = "a"\n', "task 'a': missing 'command'"),
    "unknown key": ('[[task]]\nid = "a"\ncommand = "true"\ncolour = 1\n', "unknown key 'colour'"),
    "wrong type": (
        '[[task]]\nid = "a"\ncommand = "true"\ntimeout = "soon"\n',
        "timeout: must be a finite number",
    ),
    "unknown dependency": (
        '[[task]]\nid = "a"\ncommand = "true"\ndepends_on = ["zz"]\n',
        "unknown task 'zz'",
    ),
    "self dependency": (
        '[[task]]\nid = "a"\ncommand = "true"\ndepends_on = ["a"]\n',
        "depends on itself",
    ),
    "retry without bounds": (
        '[[task]]\nid = "a"\ncommand = "true"\nretry = { max = 0 }\n',
        "retry: max: must be a whole number from 1 to 10",
    ),
    "cpus too small": ('[[task]]\nid = "a"\ncommand = "true"\ncpus = 1e-12\n',
                       "cpus: must be at least 0.01"),
    "empty program": ('[[task]]\nid = "a"\ncommand = ["", "x"]\n',
                      "the program, must not be empty"),
    "nested too deeply": ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    "env beside a secret": (
        '[[task]]\nid = "a"\ncommand = "true"\nenv = { TOKEN = "x" }\nsecrets = ["TOKEN"]\n',
        "task 'a': env and secrets both name TOKEN",
    ),
    "env beside a secret in defaults": (
        '[defaults]\nenv = { TOKEN = "x" }\nsecrets = ["TOKEN"]\n[[task]]\nid = "a"\n'
        'command = "true"\n',
        "[defaults]: env and secrets both name TOKEN",
    ),
    "id with a line end": ('[[task]]\nid = "two\\nlines"\ncommand = "true"\n',
                           "task '#1': id: must hold no control character"),
    # Found by a user's try: it validated, and then --only could not name it.
    "id with a comma": ('[[task]]\nid = "with,comma"\ncommand = "true"\n',
                        "task '#1': id: must hold no comma"),
    "empty secret name": ('[[task]]\nid = "a"\ncommand = "true"\nsecrets = ["X", ""]\n',
                          "task 'a': secrets: must hold no empty string"),
    "secret name with =": ('[[task]]\nid = "a"\ncommand = "true"\nsecrets = ["A=B"]\n',
                           "task 'a': secrets: 'A=B' is not a variable name (it holds '=')"),
    "retry on passed": (
        '[[task]]\nid = "a"\ncommand = "true"\nretry = { when = ["passed"] }\n',
        "retry: when: must be a list of results among failed, error, timed_out, lost",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_task_file_is_one_line_and_exit_2(run_cli: RunCli, tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    path = tmp_path / "tasks.toml"
    if text is not None:
        path.write_text(text)
    run = run_cli("run", str(path))
    assert run.code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"spawnkit: error: {path}")
    assert expected in lines[0]
    assert not (run.results_root / "latest").exists()  # nothing ran


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--spawner", "nosuch", "--", "true"], "unknown spawner 'nosuch'"),
        (["run", "--max-running", "0", "--", "true"], "--max-running"),
        (["run", "--timeout", "nan", "--", "true"], "'nan' is not a finite number of seconds"),
        (["run", "--grace", "inf", "--", "true"], "'inf' is not a finite number of seconds"),
        (["run", "--engine-down-after", "nan", "--", "true"], "--engine-down-after"),
        (["run", "--bogus"], "No such option '--bogus'"),
        (["run"], "give a task file"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["run", "--engine-url", "http://127.0.0.1:1", "--", "true"],
         "--engine-url: the process backend has no engine to point at"),
        (["run", "--spawner", "slurm", "--engine-url", "http://127.0.0.1:1", "--", "true"],
         "--engine-url: the slurm backend has no engine to point at"),
    ],
)
def test_bad_command_line_is_one_line_and_exit_2(
    run_cli: RunCli, args: list[str], expected: str
) -> None:
    run = run_cli(*args)
    assert run.code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], run.stderr


def test_an_engine_that_cannot_be_reached_leaves_no_job_folder(run_cli: RunCli) -> None:
    # No engine is contacted: this runs on a machine with none.
    down = ("--spawner", "docker", "--engine-url", "unix:///nonexistent.sock", "--image", "x")
    first = run_cli("run", "-q", *down, "--", "true")
    assert first.code == 2 and "cannot reach the docker engine" in first.stderr, first.stderr
    assert not first.results_root.exists()  # not even the results folder it would have made
    earlier = run_cli("run", "-q", "--", "true")  # on the process backend
    assert earlier.code == 0, earlier.stderr
    again = run_cli("run", "-q", *down, "--", "true")
    assert again.code == 2, again.stderr
    # `latest` is still the job that ran, and nothing else is there.
    assert sorted(p.name for p in again.results_root.iterdir()) == sorted(
        [earlier.job_dir.name, "latest"])
    assert again.job_dir == earlier.job_dir and (again.job_dir / "results.json").is_file()


@pytest.fixture
def hung_engine(tmp_path: Path) -> Iterator[tuple[str, threading.Event]]:
    """An engine socket that takes connections and never answers (a stopped daemon): its
    URL, and an event set once it was asked."""
    path = str(tmp_path / "hung.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(8)
    asked = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])
                asked.set()

    threading.Thread(target=accept, daemon=True).start()
    yield f"unix://{path}", asked
    server.close()
    for conn in held:
        conn.close()


def test_sigterm_while_the_engine_is_asked_ends_the_run_as_a_cancel(
    tmp_path: Path, hung_engine: tuple[str, threading.Event]
) -> None:
    """A CI runner's cancel (SIGTERM) during start-up, here while an engine that never
    answers is asked: exit 143 at once, one line, and no half-made job folder. Found by
    trying: the signal's default action killed spawnkit there, leaving the folder."""
    url, asked = hung_engine
    proc = start_cli(tmp_path, "--spawner", "docker", "--engine-url", url, "--image", "x",
                     "--", "true")
    try:
        assert asked.wait(60), "the engine was never asked"
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - began < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, (out, err)
    assert err == "spawnkit: terminated\n", err  # one line: no blank one before it
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_an_engine_that_never_answers_is_down_after_engine_down_after(
    run_cli: RunCli, hung_engine: tuple[str, threading.Event], engine: str
) -> None:
    """At start-up as mid-run: found by trying, the first call waited out the SDK's timeout
    and its tries (a minute on Docker, four on Podman)."""
    url, _asked = hung_engine
    began = time.monotonic()
    done = run_cli("run", "--spawner", engine, "--engine-url", url, "--engine-down-after", "2",
                   "--image", "x", "--", "true")
    assert time.monotonic() - began < 2 + 8  # the interpreter's start-up on a busy machine
    assert done.code == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"spawnkit: error: cannot reach the {engine} engine at {url}: no answer within 2 s "
        f"(--engine-down-after) (is it running? set "
        f"{'DOCKER_HOST' if engine == 'docker' else 'CONTAINER_HOST'} or --engine-url)"]
    assert not done.results_root.exists()


_NO_MAPPING = "not a kubeconfig (a YAML mapping of clusters, users and contexts)"


@pytest.mark.parametrize(("text", "words"), [
    ("foo\n", _NO_MAPPING), ("[1, 2]\n", _NO_MAPPING),
    # Broken YAML: the parser's words, which name the line (it was exit 70, three lines).
    ("garbage: [\n", "while parsing a flow node expected the node content"),
])
def test_a_file_that_is_no_kubeconfig_is_one_line(run_cli: RunCli, tmp_path: Path,
                                                   text: str, words: str) -> None:
    # Read before any server is asked: this runs on a machine with no cluster.
    (tmp_path / "kubeconfig").write_text(text)
    done = run_cli("run", "--spawner", "kubernetes", "--kubeconfig", str(tmp_path / "kubeconfig"),
                   "--image", "x", "--", "true")
    assert done.code == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"spawnkit: error: no usable kubeconfig at {tmp_path / 'kubeconfig'} (give --kubeconfig, "
        f"or set KUBECONFIG): {words}"), lines[0]



def test_json_and_junit_go_through_a_link_and_never_replace_a_device(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """Found by trying: `--json /dev/full` replaced the device with a regular file (the
    result is renamed into place), and `--json link.json` replaced the link."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for flag in ("--json", "--junit"):
        run = run_cli("run", "-q", flag, str(fifo), "--", "true")
        assert (run.code, run.stderr) == (2, f"spawnkit: error: cannot write {flag} {fifo}: not "
                                             "a regular file (it would be replaced by one)\n")
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
    (tmp_path / "ro").write_text("")
    run = run_cli("run", "-q", "--junit", str(tmp_path / "ro" / "j.xml"), "--", "true")
    assert (run.code, run.stderr) == (2, f"spawnkit: error: cannot write --junit {tmp_path}/ro/"
                                         f"j.xml: {tmp_path}/ro is not a folder\n")
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    link.symlink_to(real)
    assert run_cli("run", "-q", "--json", str(link), "--", "true").code == 0
    assert link.is_symlink() and json.loads(real.read_text())["counts"]["passed"] == 1
