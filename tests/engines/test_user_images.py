"""Images a task file builds (`[image.NAME]`) on Docker and Podman: built once before the
tasks that need them, not rebuilt while nothing they are built from changed, rebuilt when it
does; a failed build ends its tasks as error with its last lines; nothing left behind."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spawnkit.core.buildcontext import USER_IMAGE_LABEL
from tests.conftest import CliRun, RunCli
from tests.engines.conftest import TEST_IMAGE, containers_of, engine_cli


@pytest.fixture
def image_name(engine_name: str) -> Iterator[str]:
    """A name no other test uses; every image built under it is removed after the test."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    ids = _images(engine_name, name)
    if ids:
        engine_cli(engine_name, "rmi", "-f", *ids)
    assert _images(engine_name, name) == []


def _project(root: Path, name: str, run: str) -> Path:
    (root / "ci").mkdir(parents=True, exist_ok=True)
    # The RUN step first: a failed build then leaves no step's image behind.
    (root / "ci" / "Containerfile").write_text(
        f"FROM {TEST_IMAGE}\nRUN {run}\nCOPY app.txt /app.txt\n")
    (root / "app.txt").write_text("app v1\n")
    (root / ".dockerignore").write_text("scratch\n")
    (root / "scratch").mkdir(exist_ok=True)
    path = root / "tasks.toml"
    path.write_text(
        f'[image.{name}]\ncontainerfile = "ci/Containerfile"\ncontext = "."\n'
        f'[[task]]\nid = "one"\nimage = "{name}"\ncommand = "cat /app.txt /version"\n'
        f'[[task]]\nid = "two"\nimage = "{name}"\ncommand = "cat /version"\n')
    return path


def _images(engine: str, name: str) -> list[str]:
    """The images of a name, a build's intermediate ones included (Podman labels those)."""
    return sorted(set(engine_cli(engine, "images", "-a", "-q", "--no-trunc", "--filter",
                                 f"label={USER_IMAGE_LABEL}={name}").split()))


def _tags(engine: str, name: str) -> list[str]:
    """The tags given to the images of a name (a build's step images have none)."""
    listed = engine_cli(engine, "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                        f"label={USER_IMAGE_LABEL}={name}").split()
    return sorted({t.removeprefix("localhost/") for t in listed if "<none>" not in t})


def _log(job_dir: Path, name: str) -> str:
    return (job_dir / "images" / f"{name}.log").read_text()


def _seconds(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in:\n{text}"
    return float(found.group(1))


def _output(done: CliRun, task_id: str) -> str:
    record: dict[str, Any] = done.task(task_id)
    return (done.job_dir / record["stdout"]).read_text()


def test_built_once_not_rebuilt_then_rebuilt_when_the_containerfile_changes(
    engine_name: str, image_name: str, run_cli: RunCli, tmp_path: Path, no_leftovers: None,
) -> None:
    project = tmp_path / "project"
    path = _project(project, image_name, "echo v1 > /version")
    args = ("run", str(path), "--spawner", engine_name, "-q")

    began = time.monotonic()
    first = run_cli(*args)
    first_took = time.monotonic() - began
    assert first.code == 0, first.stdout + first.stderr
    log = _log(first.job_dir, image_name)
    # Two tasks need it: one build.
    assert log.count("spawnkit: building spawnkit-user/") == 1
    build_took = _seconds(r"spawnkit: built spawnkit-user/\S+ \(\w+\) in ([\d.]+) s", log)
    assert _output(first, "one") == "app v1\nv1\n"
    built = _tags(engine_name, image_name)
    assert len(built) == 1 and built[0].startswith(f"spawnkit-user/{image_name}:")

    # Nothing it is built from changed (an ignored file did): the same image, not rebuilt.
    (project / "scratch" / "notes").write_text("not sent to the engine")
    began = time.monotonic()
    second = run_cli(*args)
    second_took = time.monotonic() - began
    assert second.code == 0, second.stdout + second.stderr
    log = _log(second.job_dir, image_name)
    assert "spawnkit: building" not in log
    step = _seconds(r"already: not rebuilt \(image step: ([\d.]+) s\)", log)
    assert step < build_took, (step, build_took)
    assert _tags(engine_name, image_name) == built
    assert _output(second, "two") == "v1\n"
    print(f"\n{engine_name}: first run {first_took:.2f} s (build {build_took:.2f} s), "
          f"second run {second_took:.2f} s (image step {step:.2f} s, a cache hit)")

    # The Containerfile changed: a new image, and the tasks run on it.
    (project / "ci" / "Containerfile").write_text(
        f"FROM {TEST_IMAGE}\nRUN echo v2 > /version\nCOPY app.txt /app.txt\n")
    third = run_cli(*args)
    assert third.code == 0, third.stdout + third.stderr
    assert "spawnkit: building spawnkit-user/" in _log(third.job_dir, image_name)
    assert _output(third, "one") == "app v1\nv2\n"
    assert len(_tags(engine_name, image_name)) == 2


def test_the_results_folder_inside_the_context_is_never_sent(
    engine_name: str, image_name: str, run_cli: RunCli, tmp_path: Path,
) -> None:
    """A results folder in the project (the default, ./spawnkit-results) changes with every
    run: it is left out of the context, or every run would build anew."""
    project = tmp_path / "project"
    path = _project(project, image_name, "echo v1 > /version")
    results = project / "spawnkit-results"
    logs = []
    for _ in range(2):
        done = run_cli("run", str(path), "--spawner", engine_name, "-q",
                       env={"SPAWNKIT_RESULTS": str(results)})
        assert done.code == 0, done.stdout + done.stderr
        job_dir = (results / "latest").resolve()
        logs.append(_log(job_dir, image_name))
        assert containers_of(engine_name, job_dir.name) == []
    assert "spawnkit: building" in logs[0]
    assert "not rebuilt" in logs[1]


def test_a_failed_build_ends_its_tasks_as_error_with_its_last_lines(
    engine_name: str, image_name: str, run_cli: RunCli, tmp_path: Path, no_leftovers: None,
) -> None:
    project = tmp_path / "project"
    path = _project(project, image_name,
                    "echo 'step output' && echo 'the last words' >&2 && exit 3")
    with path.open("a") as f:
        f.write(f'[[task]]\nid = "other"\nimage = "{TEST_IMAGE}"\ncommand = "true"\n'
                '[[task]]\nid = "after"\ncommand = "true"\ndepends_on = ["one"]\n'
                f'image = "{TEST_IMAGE}"\n')
    done = run_cli("run", str(path), "--spawner", engine_name, "-q")
    assert done.code == 1, done.stdout + done.stderr
    for task_id in ("one", "two"):
        record = done.task(task_id)
        assert record["result"] == "error"
        assert record["reason"].startswith(
            f"image '{image_name}' could not be built (its output: images/{image_name}.log): ")
        assert "the last words" in record["reason"]
    assert done.task("other")["result"] == "passed"
    assert done.task("after")["result"] == "skipped"
    log = _log(done.job_dir, image_name)
    assert log.count("spawnkit: building") == 1
    assert "step output" in log and "spawnkit: the build failed after" in log
    assert _images(engine_name, image_name) == []


def test_images_build_file_builds_a_containerfile_once(
    engine_name: str, image_name: str, run_cli: RunCli, tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    _project(project, image_name, "echo v1 > /version")
    args = ("images", "build", "--file", "ci/Containerfile", "--context", ".", "--name",
            image_name, "--spawner", engine_name)
    first = run_cli(*args, cwd=project)
    assert first.code == 0, first.stderr
    tag = first.stdout.strip()
    assert re.fullmatch(rf"spawnkit-user/{image_name}:[0-9a-f]{{12}}", tag), tag
    assert "spawnkit: building" in first.stderr
    again = run_cli(*args, cwd=project)
    assert again.code == 0 and again.stdout.strip() == tag
    assert "not rebuilt" in again.stderr
    assert _tags(engine_name, image_name) == [tag]


def test_the_process_backend_runs_the_task_without_the_image(
    run_cli: RunCli, tmp_path: Path
) -> None:
    path = _project(tmp_path / "project", "ci", "exit 3")
    path.write_text('[image.ci]\ncontainerfile = "ci/Containerfile"\n'
                    '[[task]]\nid = "t"\nimage = "ci"\ncommand = "echo on the host"\n')
    done = run_cli("run", str(path), "-q")
    assert done.code == 0, done.stderr
    assert _output(done, "t") == "on the host\n"
    assert not (done.job_dir / "images").exists()
