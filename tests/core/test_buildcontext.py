"""What names a task file's image: `[image.NAME]` tables checked, and a tag that changes
exactly when what the engine would be sent changes (.dockerignore honoured)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from spawnkit.core.buildcontext import BuildContext, read_context
from spawnkit.core.errors import TaskFileError
from spawnkit.core.task.description import ImageBuild
from spawnkit.core.taskfile import load_taskfile


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "ci").mkdir(parents=True)
    (root / "ci" / "Containerfile").write_text("FROM scratch\nCOPY app.py /\n")
    (root / "app.py").write_text("print('hi')\n")
    (root / "build").mkdir()
    (root / "build" / "out.o").write_text("object")
    (root / ".dockerignore").write_text("# generated\nbuild\n*.log\n")
    return root


def _context(root: Path, leave_out: Sequence[Path] = ()) -> BuildContext:
    return read_context(ImageBuild("ci", str(root / "ci" / "Containerfile"), str(root)),
                        leave_out)


def test_the_tag_names_the_image_and_its_content(project: Path) -> None:
    context = _context(project)
    assert context.tag == f"spawnkit-user/ci:{context.digest[:12]}"
    assert context.dockerfile == "ci/Containerfile"
    assert set(context.files) == {".dockerignore", "app.py", "ci", "ci/Containerfile"}


def test_ignored_files_change_nothing_the_rest_changes_the_tag(project: Path) -> None:
    before = _context(project).tag
    (project / "build" / "out.o").write_text("another object")
    (project / "debug.log").write_text("noise")
    assert _context(project).tag == before
    (project / "app.py").write_text("print('changed')\n")
    changed = _context(project).tag
    assert changed != before
    (project / "app.py").chmod(0o755)
    assert _context(project).tag != changed
    (project / "ci" / "Containerfile").write_text("FROM scratch\n")
    assert _context(project).tag not in (before, changed)


def test_a_containerignore_comes_before_the_dockerignore(project: Path) -> None:
    (project / ".containerignore").write_text("app.py\n")
    assert "app.py" not in _context(project).files
    assert "build/out.o" in _context(project).files


def test_folders_left_out_are_not_sent(project: Path) -> None:
    results = project / "spawnkit-results"
    (results / "job").mkdir(parents=True)
    (results / "job" / "results.json").write_text("{}")
    before = _context(project, leave_out=[results]).tag
    (results / "job" / "results.json").write_text('{"changed": true}')
    again = _context(project, leave_out=[results])
    assert again.tag == before
    assert not any(f.startswith("spawnkit-results") for f in again.files)


def test_the_archive_holds_what_was_hashed_and_a_containerfile_from_outside(
    project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "Containerfile.ci"
    outside.write_text("FROM scratch\n")
    context = read_context(ImageBuild("ci", str(outside), str(project)))
    buffer = io.BytesIO()
    context.archive(buffer)
    with tarfile.open(fileobj=buffer) as tar:
        names = set(tar.getnames())
        assert names == {*context.files, context.dockerfile}
        member = tar.extractfile(context.dockerfile)
        assert member is not None and member.read() == b"FROM scratch\n"
    # Its text is part of the tag, as a Containerfile inside the context is.
    first = context.tag
    outside.write_text("FROM scratch\nENV A=1\n")
    assert read_context(ImageBuild("ci", str(outside), str(project))).tag != first


def test_the_task_file_names_images_relative_to_its_folder(project: Path) -> None:
    path = project / "tasks.toml"
    path.write_text('[image.ci]\ncontainerfile = "ci/Containerfile"\n'
                    '[[task]]\nid = "t"\nimage = "ci"\ncommand = "true"\n'
                    '[[task]]\nid = "u"\nimage = "busybox"\ncommand = "true"\n')
    loaded = load_taskfile(path)
    task, other = loaded.tasks
    assert task.build == ImageBuild("ci", str(project / "ci" / "Containerfile"), str(project))
    assert task.image == "ci"
    assert other.build is None


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[image.CI]\ncontainerfile = "ci/Containerfile"',
         "[image.CI]: the name must be lower-case letters and digits, with '.', '_' or '-' "
         "between them"),
        ('[image.ci]\ncontext = "."', "[image.ci]: missing 'containerfile'"),
        ('[image.ci]\ncontainerfile = "nope"',
         "[image.ci]: containerfile: no file 'nope' (relative to the task file's folder, "
         "{root})"),
        ('[image.ci]\ncontainerfile = "ci/Containerfile"\ncontext = "nowhere"',
         "[image.ci]: context: no folder 'nowhere' (relative to the task file's folder, "
         "{root})"),
        ('[image.ci]\ncontainerfile = "ci/Containerfile"\nbuild_args = {}',
         "[image.ci]: unknown key 'build_args' (expected: containerfile, context)"),
        ('image = "ci"', "[image] must hold tables such as [image.ci] with a containerfile"),
    ],
)
def test_a_bad_image_table_is_one_line(project: Path, table: str, expected: str) -> None:
    path = project / "tasks.toml"
    path.write_text(f'{table}\n[[task]]\nid = "t"\ncommand = "true"\n')
    with pytest.raises(TaskFileError) as caught:
        load_taskfile(path)
    assert caught.value.lines() == [f"{path}: {expected.format(root=project)}"]
