"""Images a task file builds (`[image.NAME]`), built on the job's engine: once per job,
before the first task that needs one, and only when the engine has no image of the same
content (the tag holds a hash of it: core.buildcontext).

Each build's output goes to the job folder, `images/NAME.log`; a build that fails ends every
task that needs the image as `error`, with the build's last lines. The archive sent to the
engine is made here from exactly the files that were hashed, so Docker and Podman see the same
context (Podman's SDK would otherwise apply its own reading of .dockerignore).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from spawnkit.core.buildcontext import (
    USER_IMAGE_LABEL,
    USER_IMAGE_REPOSITORY,
    BuildContext,
    ContextError,
    read_context,
)
from spawnkit.core.errors import RequirementError
from spawnkit.core.images import IMAGE_LABEL
from spawnkit.core.spawner import JobContext
from spawnkit.core.task.description import ImageBuild, Task
from spawnkit.spawners.container.calls import EngineCalls
from spawnkit.spawners.container.engine import Engine
from spawnkit.spawners.container.faults import engine_message

__all__ = ["BuildFailed", "UserImages", "build_context", "log_path"]

LOG = logging.getLogger(__name__)

#: Lines of a failed build's output that go into its tasks' reason.
REASON_LINES = 3
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The engine's own lines between a step's output and its error: not worth a reason's room.
_BOOKKEEPING = re.compile(r"\s*(---> |Removing intermediate container )")


class BuildFailed(Exception):
    """The engine refused the build: its error, and the output's last lines before it."""

    def __init__(self, error: str, last_lines: Iterable[str]) -> None:
        self.error = error
        self.last_lines = list(last_lines)
        super().__init__(error)


def log_path(job: JobContext | None, name: str) -> Path | None:
    return job.job_dir / "images" / f"{name}.log" if job is not None else None


class UserImages:
    """The images of one job's task file on one engine, each made sure of once."""

    def __init__(self, spawner: str, engine: Engine, call: EngineCalls) -> None:
        self.spawner = spawner
        self.engine = engine
        self._call = call
        self._ensured: dict[str, asyncio.Future[str]] = {}  # name -> tag
        self._tags: dict[str, str] = {}

    def tag_of(self, task: Task) -> str | None:
        """The tag of the task's image once made sure of; None for an image not built here."""
        return self._tags.get(task.build.name) if task.build is not None else None

    async def ensure(self, build: ImageBuild, job: JobContext | None,
                     leave_out: Sequence[Path] = ()) -> str:
        """The image's tag, built if need be; raises RequirementError saying why not. Tasks
        that need the image meanwhile wait for the same build. The job's results folder is
        never part of the context (it changes with every run); without a job, `leave_out`."""
        ensured = self._ensured.get(build.name)
        if ensured is None:
            leave_out = [job.job_dir.parent] if job is not None else leave_out
            ensured = self._ensured[build.name] = asyncio.ensure_future(
                self._ensure(build, job, leave_out))
        tag = await asyncio.shield(ensured)
        self._tags[build.name] = tag
        return tag

    async def _ensure(self, build: ImageBuild, job: JobContext | None,
                      leave_out: Sequence[Path]) -> str:
        path = log_path(job, build.name)
        shown = f"images/{build.name}.log" if path is not None else "above"
        started = time.monotonic()
        try:
            context = await self._call(read_context, build, leave_out, retry=False)
            hashed = time.monotonic() - started
            there = await self._call(self.engine.image_exists, context.tag)
        except ContextError as exc:
            raise RequirementError(f"image '{build.name}' cannot be built: {exc.path}: "
                                   f"{exc.reason}", spawner=self.spawner) from None
        except Exception as exc:
            raise RequirementError(f"image '{build.name}': cannot ask the {self.spawner} engine",
                                   spawner=self.spawner,
                                   engine_message=engine_message(exc)) from exc
        with _open_log(path) as log:
            _say(log, f"{context.tag}: the Containerfile {build.containerfile} and "
                      f"{len(context.files)} entries of the context {build.context} "
                      f"(read and hashed in {hashed:.2f} s)")
            if there:
                _say(log, f"{context.tag} is on the {self.spawner} engine already: not rebuilt "
                          f"(image step: {time.monotonic() - started:.2f} s)")
                return context.tag
            LOG.info("%s: building %s (%s)", self.spawner, context.tag, shown)
            _say(log, f"building {context.tag} on the {self.spawner} engine")
            began = time.monotonic()
            try:
                image_id = await self._call(build_context, self.engine, context, log.write,
                                            retry=False)
            except BuildFailed as exc:
                _say(log, f"the build failed after {time.monotonic() - began:.2f} s: "
                          f"{exc.error}")
                lines = [*exc.last_lines, exc.error][-REASON_LINES:]
                raise RequirementError(
                    f"image '{build.name}' could not be built (its output: {shown})",
                    spawner=self.spawner, engine_message=" | ".join(lines),
                ) from None
            except Exception as exc:
                _say(log, f"the build failed: {engine_message(exc)}")
                raise RequirementError(f"image '{build.name}' could not be built on the "
                                       f"{self.spawner} engine", spawner=self.spawner,
                                       engine_message=engine_message(exc)) from exc
            _say(log, f"built {context.tag} ({image_id.removeprefix('sha256:')[:12]}) in "
                      f"{time.monotonic() - began:.2f} s")
        return context.tag


def _open_log(path: Path | None) -> contextlib.AbstractContextManager[IO[str]]:
    """The job's log of the image; with no job (`spawnkit images build --file`), stderr."""
    if path is None:
        return contextlib.nullcontext(sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Line-buffered: a person can follow a long build as it goes.
    return open(path, "a", encoding="utf-8", buffering=1)


def _say(log: IO[str], text: str) -> None:
    log.write(f"spawnkit: {text}\n")


# -- on the engine (blocking: run in the spawner's engine threads) ------------------------------


def build_context(engine: Engine, context: BuildContext, write: Callable[[str], None]) -> str:
    """Build the context on the engine, its output to `write`; the image's ID. Raises
    BuildFailed when the engine refuses the build (its error and last lines)."""
    # IMAGE_LABEL too: an image built FROM one of spawnkit's own would otherwise carry its
    # recipe's name, and `spawnkit images list` would show it as that recipe.
    labels = {USER_IMAGE_LABEL: context.build.name, "spawnkit.context": context.digest,
              IMAGE_LABEL: f"{USER_IMAGE_REPOSITORY}/{context.build.name}"}
    last: deque[str] = deque(maxlen=REASON_LINES)

    def output(text: str) -> None:
        text = _ANSI.sub("", text)  # Docker colours what a step writes to stderr
        write(text if text.endswith("\n") else text + "\n")
        last.extend(line.strip() for line in text.splitlines()
                    if line.strip() and not _BOOKKEEPING.match(line))

    with tempfile.TemporaryFile(prefix="spawnkit-context-") as archive:
        context.archive(archive)
        if engine.name == "docker":
            return _docker_build(engine, context, archive, labels, output, last)
        if engine.name == "podman":
            return _podman_build(engine, context, archive, labels, output, last)
        raise BuildFailed(f"the {engine.name} engine builds no images of a task file", [])


def _docker_build(engine: Any, context: BuildContext, archive: IO[bytes],
                  labels: dict[str, str], output: Callable[[str], None],
                  last: deque[str]) -> str:
    image_id = ""
    # forcerm: a failed step's container is removed too (nothing of a build is left).
    for event in engine.api.build(
        fileobj=archive, custom_context=True, dockerfile=context.dockerfile,
        tag=context.tag, labels=labels, rm=True, forcerm=True, decode=True,
    ):
        if "stream" in event:
            output(str(event["stream"]))
        elif "status" in event:
            output(" ".join(str(event[k]) for k in ("id", "status", "progress") if event.get(k)))
        if "error" in event:
            raise BuildFailed(str(event["error"]).strip(), last)
        aux = event.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            image_id = str(aux["ID"])
    return image_id or str(engine.api.inspect_image(context.tag)["Id"])


def _podman_build(engine: Any, context: BuildContext, archive: IO[bytes],
                  labels: dict[str, str], output: Callable[[str], None],
                  last: deque[str]) -> str:
    import podman.errors

    try:
        image, lines = engine.client.images.build(
            fileobj=archive, custom_context=True, dockerfile=context.dockerfile,
            tag=context.tag, labels=labels, rm=True, forcerm=True,
        )
    except podman.errors.BuildError as exc:
        _podman_output(exc.build_log, output)
        raise BuildFailed(str(exc.msg).strip(), last) from None
    _podman_output(lines, output)
    return str(image.id)


def _podman_output(lines: Iterable[bytes | str], output: Callable[[str], None]) -> None:
    """Podman's SDK hands the output over once the build has ended, as JSON lines."""
    for raw in lines:
        try:
            event = json.loads(raw)
        except ValueError:
            output(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
            continue
        if isinstance(event, dict) and "stream" in event:
            output(str(event["stream"]))
