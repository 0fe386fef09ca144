"""Files a task made, kept once it has ended: its JUnit reports and its artifacts.

A task names them with paths or globs relative to its working folder (`junit`, `artifacts`).
A backend says where that folder is (`FileSource`: a folder of this host, or a container's file
system read through the engine's archive API, so no workspace mount is needed) and calls
`keep_task_files` before it releases the task. JUnit reports go to `tasks/<id>/junit/`,
artifacts to `tasks/<id>/artifacts/`, each under a size cap; what could not be kept is a note
on the task, never an error of the job.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from spawnkit.core.junitreports import REPORTS_FOLDER, kept_name
from spawnkit.core.masking import Masker
from spawnkit.core.paths import JOB_ID
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import ExitResult

__all__ = [
    "ARTIFACTS_FOLDER",
    "ARTIFACTS_MAX",
    "JUNIT_MAX",
    "FileSource",
    "HostFolder",
    "Kept",
    "TarSource",
    "keep_task_files",
    "pattern_regex",
]

#: The folder of a task's output folder that holds its artifacts.
ARTIFACTS_FOLDER = "artifacts"
#: Bytes of artifacts kept per task unless told otherwise (`--artifacts-max`).
ARTIFACTS_MAX = 100 * 1024 * 1024
#: Bytes of JUnit reports kept per task.
JUNIT_MAX = 50 * 1024 * 1024
#: Seconds a file's time may lag the runner's clock (another host's, a shared folder's
#: server) and still count as written by the task.
CLOCK_SLACK = 2.0

_GLOB = re.compile(r"[*?\[]")


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regular expression: `*` and `?` stay within a folder, `**` crosses
    folders (as Python's Path.glob reads it)."""
    out = []
    parts = PurePosixPath(pattern).parts
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append("(?:.*/)?" if not last else ".*")
            continue
        piece = ""
        j = 0
        while j < len(part):
            c = part[j]
            if c == "*":
                piece += "[^/]*"
            elif c == "?":
                piece += "[^/]"
            elif c == "[":
                end = part.find("]", j + 1)
                if end < 0:
                    piece += re.escape(c)
                else:
                    piece += "[" + part[j + 1 : end].replace("!", "^", 1) + "]"
                    j = end
            else:
                piece += re.escape(c)
            j += 1
        out.append(piece + ("" if last else "/"))
    return re.compile("".join(out) + r"\Z")


def static_prefix(pattern: str) -> str:
    """The folders of a pattern before its first glob ('' when it starts with one); the whole
    pattern when it has none (a file)."""
    parts = PurePosixPath(pattern).parts
    fixed: list[str] = []
    for part in parts:
        if _GLOB.search(part):
            return posixpath.join(*fixed) if fixed else ""
        fixed.append(part)
    return posixpath.join(*fixed)


class FileSource(Protocol):
    """Where a task's working folder is, once the task has ended."""

    def files(self, pattern: str) -> Iterator[tuple[str, int, float, IO[bytes]]]:
        """(path relative to the working folder, size, modification time in epoch seconds,
        readable content) of each regular file the pattern matches."""


@dataclass
class HostFolder:
    """A working folder of this host (the process backend; a shared folder of a cluster)."""

    root: Path

    def files(self, pattern: str) -> Iterator[tuple[str, int, float, IO[bytes]]]:
        # Matched as TarSource matches (pattern_regex), not by Path.glob: there `logs/**`
        # names only folders, and a task file must keep the same files on every backend.
        base = self.root.resolve()
        regex = pattern_regex(pattern)
        start = base / static_prefix(pattern)
        if start.is_file():
            found = [start]
        else:
            found = [Path(top) / name for top, _dirs, names in os.walk(start)
                     for name in names]
        for path in sorted(found):
            rel = path.relative_to(base).as_posix()
            if path.is_symlink() or not path.is_file() or not regex.match(rel):
                continue
            real = path.resolve()
            if not real.is_relative_to(base):
                continue  # outside the working folder: not the task's to hand over
            with open(real, "rb") as fh:
                info = os.fstat(fh.fileno())
                yield rel, info.st_size, info.st_mtime, fh


@dataclass
class TarSource:
    """A working folder read as tar streams: `fetch(path)` gives the tar of one path of the
    folder (a file or a folder, named by its last component inside the tar) or None."""

    fetch: Callable[[str], Iterable[bytes] | None]

    def files(self, pattern: str) -> Iterator[tuple[str, int, float, IO[bytes]]]:
        prefix = static_prefix(pattern)
        chunks = self.fetch(prefix or ".")
        if chunks is None:
            return
        parent = posixpath.dirname(prefix) if prefix else ""
        regex = pattern_regex(pattern)
        with tarfile.open(fileobj=io.BufferedReader(_Chunks(chunks), 1 << 20), mode="r|") as tar:
            for member in tar:
                name = posixpath.normpath(posixpath.join(parent, member.name))
                if prefix == "":
                    # The tar of "." names its members "./x": relative to the folder itself.
                    name = posixpath.normpath(member.name)
                if not member.isfile() or name.startswith("../") or not regex.match(name):
                    continue
                content = tar.extractfile(member)
                if content is not None:
                    yield name, member.size, float(member.mtime), content


class _Chunks(io.RawIOBase):
    """A raw file over an iterator of byte chunks, for tarfile's stream mode."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._it)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


@dataclass
class Kept:
    """What was kept of one task, and the notes to say about it."""

    junit: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def keep_task_files(
    task: Task, exit: ExitResult | None, source: FileSource, task_dir: Path,
    *, artifacts_max: int = ARTIFACTS_MAX, since: float | None = None,
    masked: Sequence[str] = (),
) -> Kept:
    """Copy the task's JUnit reports and (when `artifacts_when` says so) its artifacts from
    `source` into its folder, the `masked` values replaced as they are copied (in a report,
    as XML writes them too: `&amp;`). A report older than `since` (epoch seconds: when the
    task's spawn began) is an earlier run's, left in a workspace that persists: not kept, as
    Jenkins' junit step refuses one. Blocking: run it off the event loop."""
    kept = Kept()
    if task.junit:
        before = len(kept.notes)
        kept.junit = _copy(source, task.junit, task_dir / REPORTS_FOLDER, JUNIT_MAX, "JUnit report",
                           kept.notes, flat=True, since=since, masked=masked)
        for name in kept.junit:
            _mask_report(task_dir / REPORTS_FOLDER / kept_name(name), masked)
        if not kept.junit and len(kept.notes) == before:  # else a note says why not
            kept.notes.append(f"no JUnit report matches {', '.join(task.junit)}")
    passed = exit is not None and exit.successful
    wanted = {"always": True, "on_success": passed, "on_failure": not passed}
    if task.artifacts and wanted.get(task.artifacts_when, True):
        kept.artifacts = _copy(source, task.artifacts, task_dir / ARTIFACTS_FOLDER, artifacts_max,
                               "artifact", kept.notes, flat=False, masked=masked)
        if not kept.artifacts:
            kept.notes.append(f"no artifact matches {', '.join(task.artifacts)}")
    return kept


def _mask_report(path: Path, values: Sequence[str]) -> None:
    """A kept JUnit report masked as XML reads it, too: a value written with character
    references (`&#38;`) is the value itself once parsed, and results.xml writes it out again.
    What does not parse is no report (core.junitreports says so): masked as bytes only."""
    masker = Masker(values)
    if not masker.active:
        return
    try:
        tree = ET.parse(path)
    except (ET.ParseError, OSError):
        return
    changed = False
    for element in tree.iter():
        for slot in ("text", "tail"):
            text = getattr(element, slot)
            if text and (masked := masker.text(text)) != text:
                setattr(element, slot, masked)
                changed = True
        for key, text in element.attrib.items():
            if (masked := masker.text(text)) != text:
                element.set(key, masked)
                changed = True
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)


def _in_job_folder(name: str) -> bool:
    """A file of a spawnkit job folder (results kept inside the workspace, `artifacts =
    ["**"]`): never a task's artifact, or each run would keep the last one's whole, nested."""
    return any(JOB_ID.fullmatch(part) for part in name.split("/")[:-1])


def _copy(
    source: FileSource, patterns: Iterable[str], dest: Path, limit: int, what: str,
    notes: list[str], *, flat: bool, since: float | None = None, masked: Sequence[str] = (),
) -> list[str]:
    copied: list[str] = []
    total = 0
    for pattern in patterns:
        try:
            for name, size, mtime, content in source.files(pattern):
                if name in copied or _in_job_folder(name):
                    continue
                if since is not None and mtime < since - CLOCK_SLACK:
                    notes.append(f"{what} {name} not kept: written before the task began "
                                 "(an earlier run's)")
                    continue
                if total + size > limit:
                    notes.append(f"{what} {name} not kept: the cap of {limit:,} bytes per task "
                                 "is reached")
                    continue
                target = dest / (kept_name(name) if flat else name)
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as out:
                    masker = Masker(masked)
                    while chunk := content.read(1 << 20):
                        out.write(masker.feed(chunk))
                    out.write(masker.close())
                total += size
                copied.append(name)
        except (OSError, tarfile.TarError) as exc:
            notes.append(f"{what}s matching {pattern} could not be read: {exc}")
    return copied
