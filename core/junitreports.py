"""The JUnit reports a task wrote itself (`junit = "..."`), read back for results.xml.

Any report a test runner writes (pytest, Maven Surefire, go-junit-report, ...) is read: its
test cases, wherever they sit under `<testsuites>`/`<testsuite>`, are taken with what the
strict schema (the Jenkins xUnit plug-in's junit-10.xsd) allows of them, so results.xml stays
valid whatever the reports held. A report that cannot be read is a note, never a failure.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["REPORTS_FOLDER", "TaskReports", "kept_name", "read_reports"]

#: Where a task's kept JUnit reports are, in its output folder.
REPORTS_FOLDER = "junit"

#: What a testcase may hold, and which attributes each may carry (junit-10.xsd).
_CASE_ATTRS = ("name", "time", "classname", "group")
_CHILD_ATTRS = {
    "skipped": ("type", "message"),
    "error": ("type", "message"),
    "failure": ("type", "message"),
    "flakyFailure": ("type", "message"),
    "flakyError": ("type", "message"),
    "rerunFailure": ("type", "message"),
    "rerunError": ("type", "message"),
    "system-out": (),
    "system-err": (),
}


@dataclass
class TaskReports:
    """The test cases of one task's reports, and what to say of them."""

    cases: list[ET.Element] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        kinds = [_kind(c) for c in self.cases]
        return {"tests": len(self.cases), "failures": kinds.count("failure"),
                "errors": kinds.count("error"), "skipped": kinds.count("skipped")}

    @property
    def any_failed(self) -> bool:
        return any(_kind(c) in ("failure", "error") for c in self.cases)


def _kind(case: ET.Element) -> str | None:
    for kind in ("failure", "error", "skipped"):
        if case.find(kind) is not None:
            return kind
    return None


def kept_name(path: str) -> str:
    """The file name a report found at `path` (relative, with `/`) is kept under: the
    reports of a task sit side by side in its `junit/` folder."""
    return path.replace("/", "__")


def _found_at(kept: str) -> str:
    """Where a kept report was found, as its task file's pattern matched it (a name that held
    `__` itself reads as a folder: a note's words only)."""
    return kept.replace("__", "/")


def read_reports(folder: Path) -> TaskReports:
    """Every test case of the reports in `folder` (files in name order)."""
    reports = TaskReports()
    if not folder.is_dir():
        return reports
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:
            reports.notes.append(f"JUnit report {_found_at(path.name)} cannot be read: "
                                 f"{exc}")
            continue
        if root.tag not in ("testsuites", "testsuite", "testcase"):
            reports.notes.append(f"JUnit report {_found_at(path.name)} is not JUnit XML "
                                 f"(its root is <{root.tag}>)")
            continue
        found = [root] if root.tag == "testcase" else list(root.iter("testcase"))
        reports.cases += [_clean(case) for case in found]
    return reports


def _clean(case: ET.Element) -> ET.Element:
    """The case as the strict schema allows it: known attributes and children only."""
    out = ET.Element("testcase", {k: case.get(k, "") for k in _CASE_ATTRS if case.get(k)})
    out.set("name", case.get("name") or "(unnamed)")
    for child in case:
        allowed = _CHILD_ATTRS.get(child.tag)
        if allowed is None:
            continue
        kept = ET.SubElement(out, child.tag, {k: v for k, v in child.attrib.items()
                                              if k in allowed})
        if child.tag.startswith(("flaky", "rerun")):
            kept.set("type", child.get("type") or child.tag)
        kept.text = child.text
    return out
