"""Retries with a flaky verdict, the same on every backend: every attempt kept, the result the
last attempt's, a task that passed after failing marked flaky in results.json, the summary and
results.xml (flakyFailure, as Maven Surefire writes it)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import xmlschema

from tests.conftest import REPO, RunCli, WriteTaskfile
from tests.engines.conftest import TEST_IMAGE

XSD = REPO / "tests" / "ci" / "junit-10.xsd"

#: Fails (exit 3) the first time, passes the second: a marker in the shared workspace.
FLAKY = ('[[task]]\nid = "t"\nworkspace = "ws"\nretry = { max = 2, exit_codes = [3] }\n'
         'command = "if [ -e tried ]; then echo second; else touch tried; echo first; '
         'echo boom >&2; exit 3; fi"\n')


def test_a_task_that_passes_on_its_second_attempt_is_flaky(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    path = taskfile(FLAKY)
    (path.parent / "ws").mkdir()
    run = run_cli("run", "--spawner", spawner_name, "--image", TEST_IMAGE, str(path))
    assert run.code == 0, run.stderr
    results = run.results
    assert results["passed"] is True and results["flaky"] == ["t"]
    task = run.task("t")
    assert task["result"] == "passed" and task["flaky"] is True
    [first] = task["attempts"]
    assert (first["attempt"], first["result"], first["exit_code"]) == (1, "failed", 3)
    # Both attempts' output is kept, each in its own folder.
    assert (run.job_dir / first["stdout"]).read_text() == "first\n"
    assert (run.job_dir / first["stderr"]).read_text() == "boom\n"
    assert (run.job_dir / task["stdout"]).read_text() == "second\n"
    assert "flaky" in run.stdout  # the summary says it
    xmlschema.XMLSchema(str(XSD)).validate(str(run.job_dir / "results.xml"))
    case = ET.parse(run.job_dir / "results.xml").getroot().find(".//testcase[@name='t']")
    assert case is not None and case.find("failure") is None
    flaky = case.find("flakyFailure")
    assert flaky is not None and flaky.get("type") == "exit_code"
    assert flaky.findtext("system-err") == "boom\n"


def test_fail_on_flaky_fails_the_job(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    path = taskfile(FLAKY)
    (path.parent / "ws").mkdir()
    summary = path.parent / "summary.md"
    run = run_cli("run", "--spawner", spawner_name, "--image", TEST_IMAGE, "--fail-on-flaky",
                  str(path), env={"GITHUB_STEP_SUMMARY": str(summary), "CI": "true",
                                  "GITHUB_ACTIONS": "true"})
    assert run.code == 1
    results = run.results
    assert results["passed"] is False and results["flaky"] == ["t"]
    assert run.task("t")["result"] == "passed"
    # Why a job whose tasks all passed failed (found by trying: no word of it).
    assert "(1 flaky: t); --fail-on-flaky fails the job" in run.stdout, run.stdout
    # Nor does a CI's test report show it green (found by a user's try: results.xml had no
    # failure, the step summary no word of flakiness).
    root = ET.parse(run.job_dir / "results.xml").getroot()
    assert root.get("failures") == "1"
    failure = root.find(".//testcase[@name='t']/failure")
    assert failure is not None and failure.get("type") == "flaky", ET.tostring(root)
    xmlschema.XMLSchema(str(XSD)).validate(str(run.job_dir / "results.xml"))
    text = summary.read_text()
    assert "--fail-on-flaky fails the job" in text and "passed (flaky: 2 attempts)" in text


def test_retries_end_when_the_policy_is_spent(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    """Three attempts at most (max = 2); an exit the policy does not name is not retried."""
    path = taskfile('[[task]]\nid = "always"\nretry = { max = 2, exit_codes = [3] }\n'
                    'command = "echo try; exit 3"\n'
                    '[[task]]\nid = "other"\nretry = { max = 2, exit_codes = [3] }\n'
                    'command = "exit 4"\n')
    run = run_cli("run", "--spawner", spawner_name, "--image", TEST_IMAGE, str(path))
    assert run.code == 1
    always = run.task("always")
    assert always["result"] == "failed" and always["flaky"] is False
    assert [a["attempt"] for a in always["attempts"]] == [1, 2]
    for attempt in always["attempts"]:
        assert (run.job_dir / attempt["stdout"]).read_text() == "try\n"
    assert run.task("other")["attempts"] == []
    case = ET.parse(run.job_dir / "results.xml").getroot().find(".//testcase[@name='always']")
    assert case is not None
    assert len(case.findall("rerunFailure")) == 2 and case.find("failure") is not None
    xmlschema.XMLSchema(str(XSD)).validate(str(run.job_dir / "results.xml"))


def test_a_timed_out_attempt_is_retried_and_failfast_waits_for_the_last_attempt(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    """The default policy retries what the infrastructure broke (error, timed_out); an attempt
    that will be retried is no failure for --failfast."""
    path = taskfile('[[task]]\nid = "slow"\nworkspace = "ws"\ntimeout = 3\nretry = {}\n'
                    'command = "if [ -e tried ]; then exit 0; fi; touch tried; sleep 60"\n'
                    '[[task]]\nid = "after"\ndepends_on = ["slow"]\ncommand = "true"\n')
    (path.parent / "ws").mkdir()
    run = run_cli("run", "--spawner", spawner_name, "--image", TEST_IMAGE, "--grace", "1",
                  "--failfast", str(path))
    assert run.code == 0, run.stderr
    slow = run.task("slow")
    assert slow["flaky"] is True
    assert [(a["result"], a["cause"]) for a in slow["attempts"]] == [("timed_out", "timeout")]
    assert run.task("after")["result"] == "passed"
