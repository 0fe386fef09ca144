"""JUnit XML of a job, as GitLab, Jenkins and GitHub test reporters read it.

One `testsuite` per job, one `testcase` per task, and where a task wrote JUnit reports of its
own, a `testsuite` for it with its test cases. A task that did not pass is a `failure` when
its command said so (non-zero exit, killed by a signal), an `error` when it could not say (a
timeout, out of memory, a spawn or triage failure, an interruption, a lost runner) and
`skipped` when it never ran. The output is well-formed whatever the tasks printed.
"""

from __future__ import annotations

import os
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from spawnkit.core.junitreports import REPORTS_FOLDER, TaskReports, read_reports
from spawnkit.core.paths import write_atomic
from spawnkit.core.results import JobResult, TaskRecord

__all__ = [
    "TAIL_BYTES",
    "junit_counts",
    "junit_kind",
    "junit_xml",
    "last_line",
    "read_tail",
    "write_junit",
    "xml_text",
]

#: How much of the end of a task's stdout and stderr the report keeps. Reporters show these
#: inline, and a multi-megabyte log would make the whole report unreadable.
TAIL_BYTES = 64 * 1024

# XML 1.0 cannot hold these at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Terminal colour and cursor codes: noise in a report, and their ESC is not XML.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def xml_text(text: str) -> str:
    """`text` with what XML 1.0 cannot carry replaced by U+FFFD (ANSI codes dropped)."""
    return _NOT_XML.sub("\ufffd", _ANSI.sub("", text))


def junit_kind(record: TaskRecord, fail_on_flaky: bool = False) -> str | None:
    """The element a task's testcase holds: None (passed), failure, error or skipped. With
    `fail_on_flaky`, a task that passed only on a later attempt fails, as it fails the job."""
    if fail_on_flaky and record.flaky:
        return "failure"
    return record.result.style.junit


def _message(record: TaskRecord) -> str:
    if record.reason:
        return record.reason
    return record.result.value.replace("_", " ")


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a file as text ('' when missing), marked when cut."""
    try:
        if os.stat(path).st_size == 0:
            return ""
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(0, size - limit))
            data = fh.read(limit)
    except OSError:
        return ""
    note = ""
    if size > len(data):
        # The cut may land inside a line (or a character): start at the next whole line.
        newline = data.find(b"\n")
        if 0 <= newline < 200:
            data = data[newline + 1 :]
        note = f"[... first {size - len(data):,} bytes left out ...]\n"
    text = note + data.decode("utf-8", errors="replace")
    return xml_text(text)


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.3f}"


def _reports(record: TaskRecord, job_dir: Path | None) -> TaskReports | None:
    """The task's own JUnit reports (kept in its folder), if it named any and they hold a
    test case."""
    if job_dir is None:
        return None
    reports = read_reports(job_dir / Path(record.stdout).parent / REPORTS_FOLDER)
    return reports if reports.cases else None


def junit_counts(result: JobResult, job_dir: Path | None = None) -> dict[str, int]:
    """tests, failures, errors and skipped as the report states them: a task's own test
    cases where it wrote JUnit reports, else the task as one test case."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for record in result.tasks:
        for key, n in _task_counts(record, _reports(record, job_dir),
                                   result.fail_on_flaky).items():
            counts[key] += n
    return counts


def _task_counts(record: TaskRecord, reports: TaskReports | None,
                 fail_on_flaky: bool) -> dict[str, int]:
    if reports is None:
        kind = junit_kind(record, fail_on_flaky)
        return {"tests": 1, "failures": int(kind == "failure"), "errors": int(kind == "error"),
                "skipped": int(kind == "skipped")}
    counts = reports.counts
    if _needs_own_case(record, reports, fail_on_flaky):
        kind = junit_kind(record, fail_on_flaky)
        counts = {**counts, "tests": counts["tests"] + 1}
        if kind in ("failure", "error"):
            counts["failures" if kind == "failure" else "errors"] += 1
    return counts


def _needs_own_case(record: TaskRecord, reports: TaskReports, fail_on_flaky: bool) -> bool:
    """A task that did not pass but whose reports say no test failed (a crash, a timeout, a
    collection error) still shows as failed: a test case of its own says why. A retried
    task gets one too: its earlier attempts (flakyFailure, rerunFailure) are told there."""
    failed = (junit_kind(record, fail_on_flaky) in ("failure", "error")
              and not reports.any_failed)
    return failed or bool(record.attempts)


def _suite_name(result: JobResult) -> str:
    if result.task_file:
        return Path(result.task_file).stem or result.task_file
    return result.job_id


def _suite(parent: ET.Element, name: str, counts: dict[str, int], duration: float | None,
           start: float | None) -> ET.Element:
    suite = ET.SubElement(parent, "testsuite", {"name": name, "time": _seconds(duration),
                                                **{k: str(v) for k, v in counts.items()}})
    if start is not None:
        suite.set("timestamp", time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start)))
    return suite


def junit_xml(result: JobResult, job_dir: Path | None = None) -> bytes:
    """The report as UTF-8 bytes. `job_dir` is where the tasks' output files are.

    One `<testsuite>` for the tasks that wrote no JUnit report (a test case each), and one per
    task that did, named for the task, holding its own test cases.
    """
    name = xml_text(_suite_name(result))
    reports = {r.id: _reports(r, job_dir) for r in result.tasks}
    counts = junit_counts(result, job_dir)
    # The Ant/Jenkins schema has no `skipped` on testsuites; readers sum the suites.
    root = ET.Element("testsuites", {"name": name, "time": _seconds(result.duration),
                                     **{k: str(v) for k, v in counts.items() if k != "skipped"}})
    plain = [r for r in result.tasks if reports[r.id] is None]
    if plain or not result.tasks:
        own = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for record in plain:
            for key, n in _task_counts(record, None, result.fail_on_flaky).items():
                own[key] += n
        suite = _suite(root, name, own, result.duration, result.start)
        props = ET.SubElement(suite, "properties")
        for key, value in (("job_id", result.job_id), ("task_file", result.task_file),
                           ("spawner", result.spawner)):
            if value is not None:
                ET.SubElement(props, "property", name=key, value=xml_text(value))
        for record in plain:
            _testcase(suite, record, name, job_dir, result.fail_on_flaky)
    for record in result.tasks:
        task_reports = reports[record.id]
        if task_reports is None:
            continue
        suite = _suite(root, xml_text(record.id),
                       _task_counts(record, task_reports, result.fail_on_flaky),
                       record.duration, record.start)
        for case in task_reports.cases:
            suite.append(_xml_safe(case))
        if _needs_own_case(record, task_reports, result.fail_on_flaky):
            _testcase(suite, record, xml_text(record.id), job_dir, result.fail_on_flaky)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def _xml_safe(element: ET.Element) -> ET.Element:
    element.attrib = {k: xml_text(v) for k, v in element.attrib.items()}
    if element.text:
        element.text = xml_text(element.text)
    for child in element:
        _xml_safe(child)
    return element


def _testcase(suite: ET.Element, record: TaskRecord, classname: str, job_dir: Path | None,
              fail_on_flaky: bool = False) -> None:
    case = ET.SubElement(suite, "testcase", name=xml_text(record.id), classname=classname,
                         time=_seconds(record.duration))
    kind = junit_kind(record, fail_on_flaky)
    if kind == "failure" and record.result.ok:  # flaky, under --fail-on-flaky
        message = (f"flaky: passed only on attempt {len(record.attempts) + 1}; "
                   "--fail-on-flaky fails it")
        ET.SubElement(case, "failure", message=message, type="flaky").text = message
        kind = None
    tails = {}
    if job_dir is not None:
        tails = {tag: read_tail(job_dir / rel) for tag, rel in
                 (("system-out", record.stdout), ("system-err", record.stderr))}
    if kind is not None:
        message = _message(record)
        last = last_line(tails.get("system-err", "")) or last_line(tails.get("system-out", ""))
        if kind != "skipped" and last:
            message = f"{message}: {last}"
        detail = ET.SubElement(case, kind, message=xml_text(message))
        if kind != "skipped":
            detail.set("type", record.cause.value if record.cause else "error")
            detail.text = xml_text(_detail(record))
    _earlier_attempts(case, record, job_dir)
    for tag, tail in tails.items():
        if tail:
            ET.SubElement(case, tag).text = tail


def _earlier_attempts(case: ET.Element, record: TaskRecord, job_dir: Path | None) -> None:
    """A retried task's earlier attempts, as Maven Surefire writes a rerun test's:
    flakyFailure/flakyError when it passed in the end, rerunFailure/rerunError when not."""
    prefix = "flaky" if record.flaky else "rerun"
    for attempt in record.attempts:
        kind = "Error" if attempt.get("result") != "failed" else "Failure"
        reason = str(attempt.get("reason") or attempt.get("result") or "")
        element = ET.SubElement(case, prefix + kind, type=str(attempt.get("cause") or "error"),
                                message=xml_text(f"attempt {attempt.get('attempt')}: {reason}"))
        if job_dir is None:
            continue
        for tag, key in (("system-out", "stdout"), ("system-err", "stderr")):
            tail = read_tail(job_dir / str(attempt[key]))
            if tail:
                ET.SubElement(element, tag).text = tail


def last_line(text: str) -> str:
    """The last line of output that is not blank, for a one-line reason."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""


def _detail(record: TaskRecord) -> str:
    """The element's body: what a person needs to find the task again."""
    lines = [f"{_message(record)}", f"command: {record.command}"]
    if record.exit_code is not None:
        lines.append(f"exit code: {record.exit_code}")
    if record.signal is not None:
        lines.append(f"signal: {record.signal}")
    if record.oom:
        lines.append("out of memory: yes")
    if record.handle:
        lines.append(f"{record.spawner or 'spawner'} handle: {record.handle}")
    lines += [f"note: {note}" for note in record.notes]
    return "\n".join(lines)


def write_junit(path: Path, result: JobResult, job_dir: Path | None = None) -> None:
    """Write atomically, like results.json: a reporter never reads half a file."""
    write_atomic(path, junit_xml(result, job_dir))
