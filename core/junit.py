"""JUnit XML of a job, as GitLab, Jenkins and GitHub test reporters read it.

One `testsuite` per job, one `testcase` per task. A task that did not pass is a `failure` when
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

from spawnkit.core.paths import write_atomic
from spawnkit.core.results import JobResult, TaskRecord

__all__ = [
    "TAIL_BYTES",
    "junit_counts",
    "junit_kind",
    "junit_xml",
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


def junit_kind(record: TaskRecord) -> str | None:
    """The element a task's testcase holds: None (passed), failure, error or skipped."""
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


def junit_counts(result: JobResult) -> dict[str, int]:
    """tests, failures, errors and skipped as the report states them."""
    kinds = [junit_kind(t) for t in result.tasks]
    return {
        "tests": len(kinds),
        "failures": kinds.count("failure"),
        "errors": kinds.count("error"),
        "skipped": kinds.count("skipped"),
    }


def _suite_name(result: JobResult) -> str:
    if result.task_file:
        return Path(result.task_file).stem or result.task_file
    return result.job_id


def junit_xml(result: JobResult, job_dir: Path | None = None) -> bytes:
    """The report as UTF-8 bytes. `job_dir` is where the tasks' output files are."""
    name = xml_text(_suite_name(result))
    counts = junit_counts(result)
    total_time = _seconds(result.duration)
    # The Ant/Jenkins schema has no `skipped` on testsuites; readers sum the suites.
    numbers = {k: str(v) for k, v in counts.items()}
    root = ET.Element("testsuites", {"name": name, "time": total_time,
                                     **{k: v for k, v in numbers.items() if k != "skipped"}})
    suite = ET.SubElement(root, "testsuite", {"name": name, "id": "0", "time": total_time,
                                              **numbers})
    if result.start is not None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(result.start))
        suite.set("timestamp", stamp)
    props = ET.SubElement(suite, "properties")
    for key, value in (("job_id", result.job_id), ("task_file", result.task_file),
                       ("spawner", result.spawner)):
        if value is not None:
            ET.SubElement(props, "property", name=key, value=xml_text(value))
    for record in result.tasks:
        _testcase(suite, record, name, job_dir)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def _testcase(suite: ET.Element, record: TaskRecord, classname: str, job_dir: Path | None) -> None:
    case = ET.SubElement(suite, "testcase", name=xml_text(record.id), classname=classname,
                         time=_seconds(record.duration))
    kind = junit_kind(record)
    if kind is not None:
        detail = ET.SubElement(case, kind, message=xml_text(_message(record)))
        if kind != "skipped":
            detail.set("type", record.cause.value if record.cause else "error")
            detail.text = xml_text(_detail(record))
    if job_dir is None:
        return
    for tag, rel in (("system-out", record.stdout), ("system-err", record.stderr)):
        tail = read_tail(job_dir / rel)
        if tail:
            ET.SubElement(case, tag).text = tail


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
    return "\n".join(lines)


def write_junit(path: Path, result: JobResult, job_dir: Path | None = None) -> None:
    """Write atomically, like results.json: a reporter never reads half a file."""
    write_atomic(path, junit_xml(result, job_dir))
