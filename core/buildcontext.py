"""Images a task file builds (`[image.NAME]`): their tables checked, and what a build sends.

A build is named by its content: `spawnkit-user/NAME:<hash12>`, the hash over the
Containerfile and every file of the context that `.dockerignore` (or `.containerignore`, which
Podman prefers) leaves in: path, kind, mode and content. The same files go into the archive
sent to the engine, so an image is rebuilt exactly when what the engine would see changed,
and never because of a file the engine is not sent. Which files are left in is decided by
the `docker` SDK's own matcher (`docker.utils.build.exclude_paths`), the one `docker build`
from Python uses.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from spawnkit.core.errors import SpawnkitError
from spawnkit.core.task.description import ImageBuild

__all__ = [
    "USER_IMAGE_LABEL",
    "USER_IMAGE_REPOSITORY",
    "BuildContext",
    "ContextError",
    "is_image_name",
    "parse_images",
    "read_context",
]

#: Where the images a task file builds are tagged: `spawnkit-user/NAME:<hash12>`.
USER_IMAGE_REPOSITORY = "spawnkit-user"
#: Every image built from a task file carries it, with the image's NAME as value.
USER_IMAGE_LABEL = "spawnkit.user-image"
#: Read in this order; the first found is used (Podman's choice, which Docker's file follows).
IGNORE_FILES = (".containerignore", ".dockerignore")
# A name that ends up in a tag: the engine's rules for one path component.
_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_KEYS = ("containerfile", "context")
# The Containerfile's name in the archive when it lies outside the context folder.
_OUTSIDE_NAME = ".spawnkit.Containerfile"
_CHUNK = 1 << 20


class ContextError(SpawnkitError):
    """A build context that cannot be read: which image, which path, and why."""

    def __init__(self, image: str, path: str, reason: str) -> None:
        self.image, self.path, self.reason = image, path, reason
        super().__init__(f"image '{image}': {path}: {reason}")


def is_image_name(name: str) -> bool:
    """Whether `name` can be NAME in `[image.NAME]`: one component of an engine's tag."""
    return _NAME.fullmatch(name) is not None


def parse_images(
    value: Any, base_dir: Path | None
) -> tuple[dict[str, ImageBuild], list[str]]:
    """The task file's `[image.NAME]` tables, paths relative to its folder; problems as
    words naming the table."""
    if not isinstance(value, dict):
        return {}, ["[image] must hold tables such as [image.ci] with a containerfile"]
    found: dict[str, ImageBuild] = {}
    problems: list[str] = []
    for name, table in value.items():
        where = f"[image.{name}]"
        if not is_image_name(name):
            problems.append(f"{where}: the name must be lower-case letters and digits, "
                            "with '.', '_' or '-' between them")
            continue
        if not isinstance(table, dict):
            problems.append(f"{where} must be a table with a containerfile")
            continue
        own = [f"{where}: unknown key '{k}' (expected: {', '.join(_KEYS)})"
               for k in table if k not in _KEYS]
        if "containerfile" not in table:
            own.append(f"{where}: missing 'containerfile'")
        for key in _KEYS:
            given = table.get(key)
            if given is not None and not (isinstance(given, str) and given and "\0" not in given):
                own.append(f"{where}: {key}: must be a non-empty path")
        if own:
            problems += own
            continue
        base = base_dir or Path.cwd()
        containerfile = (base / Path(table["containerfile"]).expanduser()).resolve()
        context = (base / Path(table.get("context", ".")).expanduser()).resolve()
        if not containerfile.is_file():
            problems.append(f"{where}: containerfile: no file '{table['containerfile']}' "
                            f"(relative to the task file's folder, {base})")
        elif not context.is_dir():
            problems.append(f"{where}: context: no folder '{table.get('context', '.')}' "
                            f"(relative to the task file's folder, {base})")
        else:
            found[name] = ImageBuild(name, str(containerfile), str(context))
    return found, problems


@dataclass(frozen=True)
class BuildContext:
    """What a build of one image sends to the engine, and the tag that names it."""

    build: ImageBuild
    #: The Containerfile's path in the archive.
    dockerfile: str
    #: The context's entries that are sent (files, folders, links), relative, sorted.
    files: tuple[str, ...]
    #: The Containerfile's text, when it lies outside the context (added to the archive).
    outside: str | None
    digest: str

    @property
    def tag(self) -> str:
        return f"{USER_IMAGE_REPOSITORY}/{self.build.name}:{self.digest[:12]}"

    def archive(self, fileobj: IO[bytes]) -> None:
        """Write the context as the tar archive the engine's build API takes."""
        import docker.utils.build

        extra = [(self.dockerfile, self.outside)] if self.outside is not None else None
        docker.utils.build.create_archive(root=self.build.context, files=list(self.files),
                                          fileobj=fileobj, extra_files=extra)
        fileobj.seek(0)


def read_context(build: ImageBuild, leave_out: Sequence[Path] = ()) -> BuildContext:
    """Find the files a build sends and hash them (raises ContextError when it cannot).

    `leave_out`: folders never sent, as if the ignore file named them (spawnkit's results
    folder: it changes with every run, and would make every run build anew)."""
    root = Path(build.context)
    containerfile = Path(build.containerfile)
    try:
        inside = containerfile.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        inside = None
    dockerfile = inside or _OUTSIDE_NAME
    # Imported here: loading a task file (validate, list) never pays for the SDK.
    import docker.utils.build

    try:
        # The matcher always keeps the Containerfile (and the ignore file) whatever the
        # patterns say, as `docker build` does.
        patterns = _ignore_patterns(root) + _inside(root, leave_out)
        files = tuple(sorted(docker.utils.build.exclude_paths(
            str(root), patterns, dockerfile=dockerfile)))
    except OSError as exc:
        raise ContextError(build.name, exc.filename or str(root),
                           exc.strerror or str(exc)) from None
    digest = hashlib.sha256(b"spawnkit-image-v1\0")
    digest.update(f"{dockerfile}\0".encode())
    outside = None
    if inside is None:
        outside = _read_text(build, containerfile)
        digest.update(outside.encode())
    for name in files:
        _hash_entry(build, root, name, digest)
    return BuildContext(build, dockerfile, files, outside, digest.hexdigest())


def _inside(root: Path, folders: Sequence[Path]) -> list[str]:
    """The folders that lie inside the context, as patterns relative to it."""
    out = []
    for folder in folders:
        try:
            relative = folder.resolve().relative_to(root.resolve())
        except ValueError:
            continue
        if relative.parts:
            out.append(relative.as_posix())
    return out


def _ignore_patterns(root: Path) -> list[str]:
    """The ignore file's patterns as the docker SDK reads them (comments and blanks out)."""
    for name in IGNORE_FILES:
        path = root / name
        if path.is_file():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            return [line.strip() for line in lines if line.strip() and
                    not line.strip().startswith("#")]
    return []


def _read_text(build: ImageBuild, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ContextError(build.name, str(path), exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise ContextError(build.name, str(path), "is not UTF-8 text") from None


def _hash_entry(build: ImageBuild, root: Path, name: str, digest: Any) -> None:
    path = root / name
    try:
        info = os.lstat(path)
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            digest.update(_bytes(f"L\0{name}\0{mode:o}\0{os.readlink(path)}\0"))
        elif stat.S_ISDIR(info.st_mode):
            digest.update(_bytes(f"D\0{name}\0{mode:o}\0"))
        elif stat.S_ISREG(info.st_mode):
            digest.update(_bytes(f"F\0{name}\0{mode:o}\0{info.st_size}\0"))
            with open(path, "rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
        # Sockets and FIFOs: the archive leaves them out, so does the hash.
    except OSError as exc:
        raise ContextError(build.name, str(path), exc.strerror or str(exc)) from None


def _bytes(text: str) -> bytes:
    # A file name that is not UTF-8 comes back from the file system as it was.
    return os.fsencode(text)
