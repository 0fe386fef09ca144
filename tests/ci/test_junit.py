"""results.xml: valid JUnit, the same counts as results.json, well-formed whatever tasks print."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from junitparser import Error, Failure, JUnitXml, Skipped

from spawnkit.core.errors import RequirementError, StartError
from spawnkit.core.junit import junit_xml, read_tail, xml_text
from spawnkit.core.results import JobResult, TaskRecord
from spawnkit.core.task.outcome import Cause, ExitResult, Outcome, TaskResult, judge
from spawnkit.core.task.runtime import RuntimeTaskStatus as S
from tests.ci.conftest import HERE, MIXED_RESULTS, MixedJob

XSD = HERE / "junit-10.xsd"


def test_the_mixed_job_ends_as_designed(mixed_job: MixedJob) -> None:
    assert mixed_job.code == 1, mixed_job.stderr
    got = {t["id"]: t["result"] for t in mixed_job.results["tasks"]}
    assert got == MIXED_RESULTS


def test_results_xml_validates_against_the_junit_xsd(mixed_job: MixedJob) -> None:
    schema = xmlschema.XMLSchema(XSD)
    schema.validate(mixed_job.job_dir / "results.xml")
    schema.validate(mixed_job.junit_copy)


def test_junit_reader_counts_match_results_json(mixed_job: MixedJob) -> None:
    counts = mixed_job.results["counts"]
    xml = JUnitXml.fromfile(str(mixed_job.job_dir / "results.xml"))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.tests == len(mixed_job.results["tasks"]) == len(list(suite))
    assert suite.failures == counts["failed"] == 2
    assert suite.errors == counts["error"] + counts["timed_out"] + counts["interrupted"] + \
        counts["lost"] == 1
    assert suite.skipped == counts["skipped"] + counts["not_run"] == 1
    assert (xml.tests, xml.failures, xml.errors) == (suite.tests, suite.failures, suite.errors)


def test_each_task_is_a_testcase_with_its_cause(mixed_job: MixedJob) -> None:
    suite = next(iter(JUnitXml.fromfile(str(mixed_job.job_dir / "results.xml"))))
    cases = {case.name: case for case in suite}
    assert set(cases) == set(MIXED_RESULTS)
    assert all(case.classname == "mixed" for case in cases.values())
    assert cases["ok"].is_passed and not cases["ok"].result
    fails = cases["fails"].result
    assert isinstance(fails[0], Failure) and fails[0].type == "exit_code"
    # The reason, and the last line the task wrote: what a CI's test view shows first.
    assert fails[0].message == "exit code 3: assertion failed: 1 == 2"
    hangs = cases["hangs"].result
    assert isinstance(hangs[0], Error) and hangs[0].type == "timeout"
    assert "timed out" in (hangs[0].message or "")
    skipped = cases["after-fail"].result
    assert isinstance(skipped[0], Skipped) and "fails" in (skipped[0].message or "")
    assert float(cases["hangs"].time) >= 0.5


def test_stdout_and_stderr_tails_are_in_the_report(mixed_job: MixedJob) -> None:
    suite = next(iter(JUnitXml.fromfile(str(mixed_job.job_dir / "results.xml"))))
    cases = {case.name: case for case in suite}
    assert cases["ok"].system_out == "all good\n"
    assert "assertion failed: 1 == 2" in (cases["fails"].system_err or "")
    junk = cases["junk"].system_out or ""
    # What XML can hold survives; ANSI codes go; what it cannot becomes U+FFFD.
    assert "]]> <b>&amp;" in junk and "red" in junk and "\x1b" not in junk
    assert junk.startswith("nul\ufffdbell\ufffdesc")
    assert "]]>" in (cases["junk"].system_err or "")
    chatty = cases["chatty"].system_out or ""
    assert chatty.startswith("[... first ")
    assert chatty.rstrip().endswith("line 2999 of a long log ]]>")
    assert "line 0 of" not in chatty


def test_junit_copy_is_the_same_report(mixed_job: MixedJob) -> None:
    assert mixed_job.junit_copy.read_bytes() == (mixed_job.job_dir / "results.xml").read_bytes()
    assert mixed_job.json_copy.read_text() == (mixed_job.job_dir / "results.json").read_text()


def _record(task_id: str, outcome: Outcome, **kw: object) -> TaskRecord:
    exit = outcome.exit
    base: dict[str, object] = dict(
        id=task_id, result=outcome.result, status="finished", cause=outcome.cause,
        reason=outcome.reason, exit_code=exit.exit_code if exit else None,
        signal=exit.signal if exit else None, oom=bool(exit and exit.oom), start=1.0,
        end=2.0, duration=1.0, spawner="process", handle="1", command="x", depends_on=[],
        image=None, limits={}, stdout="tasks/a/stdout", stderr="tasks/a/stderr", slot=0,
    )
    base.update(kw)
    return TaskRecord(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "element", "cause"),
    [
        (judge(S.FINISHED, ran=True, exit=ExitResult(137, oom=True)), "error", "oom"),
        (judge(S.FINISHED, ran=True, exit=ExitResult(None, signal=11)), "failure", "signal"),
        (judge(S.FINISHED, ran=True, exit=ExitResult(3)), "failure", "exit_code"),
        (judge(S.FAIL_START, ran=False, error=StartError("cannot start 'x'")), "error",
         "spawn_failure"),
        (judge(S.FAIL_TRIAGE, ran=False, error=RequirementError("no image")), "error",
         "requirement"),
        (judge(S.TIMEOUT, ran=True, exit=ExitResult(None, signal=9)), "error", "timeout"),
        (judge(S.INTERRUPTED, ran=True, exit=ExitResult(None, signal=15)), "error",
         "interrupted"),
        (Outcome(TaskResult.LOST, Cause.LOST, "the runner stopped"), "error", "lost"),
        (judge(S.INTERRUPTED, ran=False, reason="not run"), "skipped", None),
        (judge(S.FAIL_TRIAGE, ran=False, skipped=True, reason="dependency 'a' did not pass"),
         "skipped", None),
    ],
)
def test_every_outcome_maps_to_an_element_and_a_cause(
    outcome: Outcome, element: str, cause: str | None
) -> None:
    job = JobResult("job-1", None, "process", 1.0, 3.0, [_record("t", outcome)])
    root = ET.fromstring(junit_xml(job))
    case = root.find("testsuite/testcase")
    assert case is not None
    # The strict (published) schema allows no status attribute on a testcase.
    assert set(case.keys()) == {"name", "classname", "time"}
    found = case.find(element)
    assert found is not None
    assert found.get("type") == cause
    assert found.get("message")
    assert outcome.result.style.junit == element
    xmlschema.XMLSchema(XSD).validate(junit_xml(job).decode())


def test_hostile_ids_and_reasons_stay_well_formed(tmp_path: Path) -> None:
    record = _record("a\x01b]]>&<", judge(S.FINISHED, ran=True, exit=ExitResult(1),
                                           reason="bad \x00 \udcff thing\n\x1b[1mbold"))
    (tmp_path / "tasks" / "a").mkdir(parents=True)
    (tmp_path / "tasks" / "a" / "stdout").write_bytes(bytes(range(256)) * 4)
    job = JobResult("job\x02", "t\x03.toml", "process", 1.0, 3.0, [record])
    text = junit_xml(job, tmp_path)
    root = ET.fromstring(text)
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == "a\ufffdb]]>&<"
    xmlschema.XMLSchema(XSD).validate(text.decode())


def test_xml_text_and_tail(tmp_path: Path) -> None:
    assert xml_text("a\x00b\x1b[0mc\ud800\ufffe\t\n") == "a\ufffdbc\ufffd\ufffd\t\n"
    assert read_tail(tmp_path / "missing") == ""
    big = tmp_path / "big"
    big.write_bytes(b"x" * 50 + b"\n" + b"tail\n")
    assert read_tail(big, limit=10) == "[... first 51 bytes left out ...]\ntail\n"
