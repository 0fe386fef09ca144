"""Output that CI can use, the same on every backend: live in the task's files, followed by
`spawnkit logs -f`, explained in the CI log, per test in results.xml, with artifacts."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from tests.conftest import REPO, CliRun, RunCli, WriteTaskfile, child_env
from tests.engines.conftest import ENGINES, TEST_IMAGE, engine_class, in_ci
from tests.engines.kubernetes_cluster import ensure_image
from tests.faults.jobs import start_cli, wait_until

XSD = REPO / "tests" / "ci" / "junit-10.xsd"
#: The note of a kubernetes task with `junit` or `artifacts` and no workspace.
NO_WORKSPACE = "junit/artifacts not kept: on kubernetes they are read from a workspace"
PYTHON_IMAGE = os.environ.get("SPAWNKIT_PYTHON_IMAGE", "spawnkit-python:latest")


def test_output_is_in_the_file_while_the_task_runs(
    spawner_name: str, tmp_path: Path, no_leftovers: None
) -> None:
    """A line printed, then 20 s of sleep: the line is in tasks/<id>/stdout within 1 s (2 s on
    kubernetes), and `spawnkit logs -f` shows it while the task runs."""
    (tmp_path / "ws").mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "t"\nworkspace = "ws"\n'
                    'command = "echo first line; touch printed; sleep 20"\n')
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE, "--grace", "1",
                     str(path))
    printed = tmp_path / "ws" / "printed"
    wait_until(printed.exists, 60, "the task's print")
    seen_at = time.monotonic()
    stdout = tmp_path / "results" / "latest" / "tasks" / "t" / "stdout"
    # A Pod's log can be read once the kubelet has seen its container start (its relist, up
    # to a second; docs/cluster.md): on a busy node that is more than a second.
    within = 2.0 if spawner_name == "kubernetes" else 1.0
    wait_until(lambda: stdout.exists() and stdout.read_text() == "first line\n", within,
               "the line in the task's file")
    assert time.monotonic() - seen_at < within
    follower = subprocess.Popen(
        [sys.executable, "-m", "spawnkit.cli", "logs", "-f",
         str((tmp_path / "results" / "latest").resolve()), "t"],
        env=child_env(tmp_path), stdout=subprocess.PIPE, text=True)
    assert follower.stdout is not None
    assert follower.stdout.readline() == "first line\n"
    assert follower.poll() is None  # still following: the task runs
    proc.send_signal(signal.SIGTERM)  # the task is stopped: logs -f ends with it
    proc.communicate(timeout=30)
    assert follower.wait(timeout=10) == 0


def test_a_failure_is_explained_in_the_ci_log(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
    no_leftovers: None,
) -> None:
    """The last lines of a failed task's output, in a group the CI folds. On GitHub what the
    task printed is never taken for a workflow command (found by trying: a task's `::error::`
    or `::endgroup::` was obeyed)."""
    script = ("for i in $(seq 1 40); do echo line $i; done; echo '::endgroup::' >&2; "
              "echo '::error::injected' >&2; echo 'AssertionError: 2 != 3' >&2; exit 1")
    path = taskfile(f'[[task]]\nid = "bad"\ncommand = {json.dumps(script)}\n'
                    '[[task]]\nid = "good"\ncommand = "echo fine"\n')
    run = run_cli("run", "--spawner", spawner_name, "--image", TEST_IMAGE, str(path),
                  env={"CI": "true", "GITHUB_ACTIONS": "true"})
    assert run.code == 1
    log = run.stderr.splitlines()
    start = log.index("::group::bad: failed (exit code 1)")
    token = log[start + 1].removeprefix("::stop-commands::")
    assert re.fullmatch(r"[0-9a-f]{32}", token), log[start + 1]
    end = log.index(f"::{token}::", start)
    assert log[end + 1] == "::endgroup::"
    block = log[start + 2 : end]
    assert block[0] == "--- stdout (last 30 lines) ---"
    assert block[1:31] == [f"line {i}" for i in range(11, 41)]
    assert block[31:] == ["--- stderr (last 3 lines) ---", "::endgroup::", "::error::injected",
                          "AssertionError: 2 != 3"]
    assert "::group::good" not in run.stderr  # a passed task's output stays out of the log
    case = ET.parse(run.job_dir / "results.xml").getroot().find(".//testcase[@name='bad']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "exit code 1: AssertionError: 2 != 3"


# -- per-test JUnit ------------------------------------------------------------------------------

FILES = "abcde"
PER_FILE = 40


def _suite(root: Path) -> None:
    """A pytest suite of 5 files x 40 tests; one test of test_c fails."""
    root.mkdir()
    for name in FILES:
        fail = "assert n != 7" if name == "c" else "assert n >= 0"
        (root / f"test_{name}.py").write_text(
            "import pytest\n\n\n"
            f"@pytest.mark.parametrize('n', range({PER_FILE}))\n"
            f"def test_{name}(n):\n    {fail}\n")


def _need_python_image(name: str) -> None:
    if name == "kubernetes":
        problem = ensure_image(PYTHON_IMAGE)
        if problem is not None:
            if in_ci():
                pytest.fail(problem, pytrace=False)
            pytest.skip(problem)
        return
    if name not in ENGINES:
        return
    engine = engine_class(name)()
    engine.open()
    try:
        there = engine.image_exists(PYTHON_IMAGE)
    finally:
        engine.close()
    if not there:
        why = f"{PYTHON_IMAGE} is not on {name} (spawnkit images build python --spawner {name})"
        if in_ci():
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


def test_a_pytest_suite_split_per_file_is_one_testcase_per_test(
    spawner_name: str, run_cli: RunCli, tmp_path: Path, no_leftovers: None
) -> None:
    _need_python_image(spawner_name)
    _suite(tmp_path / "suite")
    text = (f'[defaults]\nimage = "{PYTHON_IMAGE}"\nworkspace = "suite"\n'
            'env = { PYTHONDONTWRITEBYTECODE = "1" }\n')
    for name in FILES:
        text += (f'[[task]]\nid = "test_{name}"\njunit = "reports/{name}.xml"\n'
                 f'command = "python3 -m pytest -q -p no:cacheprovider test_{name}.py '
                 f'--junitxml=reports/{name}.xml"\n')
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    # On the process backend, the python3 of the suite's own environment (it has pytest).
    env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    run = run_cli("run", "--spawner", spawner_name, str(path), env=env)
    assert run.code == 1, run.stderr
    xml = (run.job_dir / "results.xml").read_text()
    xmlschema.XMLSchema(XSD).validate(xml)
    root = ET.fromstring(xml)
    cases = root.findall(".//testcase")
    assert len(cases) == len(FILES) * PER_FILE, len(cases)
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {f"test_{n}" for n in FILES}
    assert suites["test_c"].get("failures") == "1"
    failed = [c.get("name") for c in root.findall(".//testcase") if c.find("failure") is not None]
    assert failed == ["test_c[7]"]
    assert (root.get("tests"), root.get("failures")) == (str(len(FILES) * PER_FILE), "1")
    counts = {t["id"]: t["tests"] for t in run.results["tasks"]}
    assert counts["test_c"] == {"tests": PER_FILE, "failures": 1, "errors": 0, "skipped": 0}
    assert run.task("test_a")["result"] == "passed" and run.task("test_c")["result"] == "failed"


def test_a_crash_without_a_report_still_shows_as_failed(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    path = taskfile('[[task]]\nid = "crash"\njunit = "nowhere/*.xml"\n'
                    'command = "echo collection error >&2; exit 2"\n'
                    '[[task]]\nid = "junk"\njunit = "reports/junk.xml"\n'
                    'command = "mkdir -p reports; echo not xml > reports/junk.xml; exit 1"\n')
    run = _run(run_cli, spawner_name, path)
    crash, junk = run.task("crash"), run.task("junk")
    assert (crash["result"], crash["tests"]) == ("failed", None)
    assert junk["result"] == "failed" and junk["tests"] is None
    if spawner_name == "kubernetes":
        # Reports are read from a workspace only there (docs/cluster.md): none is set.
        assert crash["notes"] == junk["notes"] == [NO_WORKSPACE]
    else:
        assert crash["notes"] == ["no JUnit report matches nowhere/*.xml"]
        assert len(junk["notes"]) == 1 and junk["notes"][0].startswith(
            "JUnit report reports/junk.xml cannot be read")  # where it was, not our copy
    xml = (run.job_dir / "results.xml").read_text()
    xmlschema.XMLSchema(XSD).validate(xml)
    failed = {c.get("name") for c in ET.fromstring(xml).iter("testcase")
              if c.find("failure") is not None}
    assert failed == {"crash", "junk"}


def test_a_report_an_earlier_run_left_is_not_this_runs(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
    no_leftovers: None,
) -> None:
    """A workspace that persists between pipelines holds yesterday's report: a task that
    writes none this time (a crash before the tests ran) is not credited with it. Found by
    trying: results.xml listed yesterday's passed test beside today's failure."""
    (tmp_path / "ws").mkdir()
    old = tmp_path / "ws" / "report.xml"
    old.write_text('<testsuite name="s" tests="1"><testcase name="yesterday" classname="c"/>'
                   "</testsuite>\n")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    report = ('<testsuite name="s" tests="1"><testcase name="today" classname="c"/>'
              "</testsuite>")
    path = taskfile('[defaults]\nworkspace = "ws"\n'
                    '[[task]]\nid = "crash"\njunit = "report.xml"\n'
                    'command = "echo collection error >&2; exit 2"\n'
                    '[[task]]\nid = "fresh"\njunit = "fresh.xml"\n'
                    f'command = {json.dumps(f"printf %s {shlex.quote(report)} > fresh.xml")}\n')
    run = _run(run_cli, spawner_name, path)
    crash, fresh = run.task("crash"), run.task("fresh")
    assert (crash["result"], crash["tests"]) == ("failed", None), crash
    assert crash["notes"] == [
        "JUnit report report.xml not kept: written before the task began (an earlier run's)"
    ], crash["notes"]
    assert fresh["result"] == "passed" and fresh["tests"]["tests"] == 1, fresh
    names = {c.get("name") for c in
             ET.parse(run.job_dir / "results.xml").getroot().iter("testcase")}
    assert "yesterday" not in names and "today" in names, names


def _run(run_cli: RunCli, name: str, path: Path, *args: str) -> CliRun:
    return run_cli("run", "--spawner", name, "--image", TEST_IMAGE, *args, str(path))


# -- artifacts ----------------------------------------------------------------------------------

def test_artifacts_come_out_of_the_task_with_no_workspace(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    script = ("mkdir -p out/deep && echo made > out/report.txt && echo deeper > out/deep/x.txt"
              " && echo skip > out/skip.log")
    path = taskfile(f'[[task]]\nid = "t"\ncommand = {json.dumps(script)}\n'
                    'artifacts = ["out/**/*.txt"]\n'
                    '[[task]]\nid = "only-on-failure"\ncommand = "echo x > kept.txt"\n'
                    'artifacts = "kept.txt"\nartifacts_when = "on_failure"\n')
    run = _run(run_cli, spawner_name, path)
    assert run.code == 0, run.stderr
    kept = run.job_dir / "tasks" / "t" / "artifacts"
    if spawner_name == "kubernetes":
        # An ended container takes no exec: without a workspace, nothing to copy from
        # (docs/cluster.md), and the task's note says so.
        assert run.task("t")["notes"] == [NO_WORKSPACE] and not kept.exists()
        return
    found = sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file())
    assert found == ["out/deep/x.txt", "out/report.txt"]
    assert (kept / "out" / "report.txt").read_text() == "made\n"
    assert not (run.job_dir / "tasks" / "only-on-failure" / "artifacts").exists()


def test_a_job_folder_in_the_workspace_is_no_artifact_of_the_next_run(
    spawner_name: str, run_cli: RunCli, tmp_path: Path, no_leftovers: None
) -> None:
    """Results kept inside the workspace and `artifacts = ["**"]` (found by a user's try:
    each run kept the last one's job folder whole, nested, 159 MB after four runs); nor is a
    job's results.xml a task's JUnit report. Patterns that start with a glob find the same
    files on every backend (found by this test: in a container, none or under `workspace/`)."""
    (tmp_path / "ws").mkdir()
    path = tmp_path / "ws" / "tasks.toml"
    report = '<testsuite name="s" tests="1"><testcase name="c" classname="k"/></testsuite>'
    path.write_text('[defaults]\nworkspace = "."\nartifacts = ["**"]\njunit = "**/*.xml"\n'
                    '[[task]]\nid = "t"\n'
                    f"command = {json.dumps(f'echo made > out.txt; echo {report!r} > r.xml')}\n")
    for _ in range(2):
        run = run_cli("run", "--spawner", spawner_name, "--image", TEST_IMAGE, "--results",
                      str(tmp_path / "ws" / "results"), str(path))
        assert run.code == 0, run.stderr
    job = max((tmp_path / "ws" / "results").glob("2*"))
    kept = job / "tasks" / "t" / "artifacts"
    assert sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file()) == [
        "out.txt", "r.xml", "tasks.toml"]
    assert [p.name for p in (job / "tasks" / "t" / "junit").iterdir()] == ["r.xml"]
