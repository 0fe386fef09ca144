"""Task files (TOML): loading and validation. Every problem is one line naming file and task."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spawnkit.core.buildcontext import parse_images
from spawnkit.core.errors import TaskFileError
from spawnkit.core.matrix import expand_matrix
from spawnkit.core.plan import cycles_in
from spawnkit.core.servicefile import parse_services, services_of
from spawnkit.core.task.description import (
    ImageBuild,
    KubernetesSettings,
    Limits,
    Mount,
    RetryPolicy,
    SlurmSettings,
    Task,
)
from spawnkit.core.task.service import Service
from spawnkit.core.taskkeys import COMMON_KEYS, TASK_KEYS, Check, Problems, parse_memory

__all__ = ["TASK_KEYS", "TaskFile", "load_taskfile", "parse_memory", "parse_taskfile"]

TOP_KEYS = ("defaults", "task", "image", "service")

#: Every task finds its own id here, on every backend (a matrix expansion, its full id).
TASK_ID_VARIABLE = "SPAWNKIT_TASK_ID"


@dataclass
class TaskFile:
    path: str
    tasks: list[Task]
    defaults: dict[str, Any] = field(default_factory=dict)
    #: The images it builds (`[image.NAME]`), by name.
    images: dict[str, ImageBuild] = field(default_factory=dict)
    #: Its services (`[[service]]`), by id.
    services: dict[str, Service] = field(default_factory=dict)


def load_taskfile(path: str | Path) -> TaskFile:
    """Read and validate a task file; raise TaskFileError with every problem found."""
    name = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise TaskFileError(name, [(None, "no such file")]) from None
    except IsADirectoryError:
        raise TaskFileError(name, [(None, "is a folder, not a task file")]) from None
    except UnicodeDecodeError:
        raise TaskFileError(name, [(None, "is not UTF-8 text")]) from None
    except OSError as exc:
        raise TaskFileError(name, [(None, f"cannot read: {exc.strerror}")]) from None
    return parse_taskfile(text, name, base_dir=Path(path).resolve().parent)


def parse_taskfile(text: str, name: str = "<tasks>", base_dir: Path | None = None) -> TaskFile:
    if text.startswith("\ufeff"):
        raise TaskFileError(name, [(None, "starts with a UTF-8 byte-order mark (BOM), which "
                                          "TOML does not allow: save the file without one")])
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TaskFileError(name, [(None, f"invalid TOML: {exc}")]) from None
    except RecursionError:  # the reader recurses once per level of arrays and tables
        raise TaskFileError(name, [(None, "invalid TOML: arrays or tables nested too "
                                          "deeply")]) from None
    problems: Problems = []
    for key in data:
        if key not in TOP_KEYS:
            problems.append((None, f"unknown key '{key}' (expected [defaults], [[task]], "
                                   "[[service]] and [image.NAME])"))
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append((None, "[defaults] must be a table"))
        defaults = {}
    default_problems = _check_keys(defaults, COMMON_KEYS)
    problems += [(None, f"[defaults]: {p}") for p in default_problems]
    if not default_problems and (clash := _env_beside_secrets(defaults)):
        problems.append((None, f"[defaults]: {clash}"))
    builds, image_problems = parse_images(data.get("image", {}), base_dir)
    problems += [(None, p) for p in image_problems]
    services, service_problems = parse_services(data.get("service", []))
    problems += [(None, p) for p in service_problems]
    raw_tasks = data.get("task", [])
    if not isinstance(raw_tasks, list) or not all(isinstance(t, dict) for t in raw_tasks):
        raise TaskFileError(name, [*problems, (None, "tasks must be [[task]] tables")])
    if not raw_tasks:
        problems.append((None, "no tasks: add at least one [[task]]"))
    tasks: list[Task] = []
    seen: set[str] = set()
    # Every task's dependencies, also of tasks with other problems: a typo in depends_on is
    # worth reporting in the same pass as a typo elsewhere in the task.
    needs: list[tuple[str, list[str]]] = []
    # A matrix task becomes its expansions here: every check below applies to each of them.
    expansion = expand_matrix(raw_tasks, defaults if isinstance(defaults, dict) else {},
                              lambda raw: not _check_keys(raw, TASK_KEYS))
    problems += expansion.problems
    for index, raw in expansion.tables:
        tid = raw.get("id")
        label = tid if isinstance(tid, str) and TASK_KEYS["id"](tid) is None else f"#{index}"
        own = _check_keys(raw, TASK_KEYS)
        if "id" not in raw:
            own.append("missing 'id'")
        if "command" not in raw:
            own.append("missing 'command'")
        if isinstance(tid, str) and tid in seen:
            own.append("duplicate id")
        if isinstance(tid, str):
            seen.add(tid)
        problems += [(label, p) for p in own]
        used, unknown = services_of({**defaults, **raw}.get("services"), services)
        problems += [(label, p) for p in unknown]
        if TASK_KEYS["depends_on"](raw.get("depends_on", [])) is None:
            needs.append((label, list(raw.get("depends_on", []))))
        if not own:
            task = _build(raw, defaults if isinstance(defaults, dict) else {}, base_dir)
            # ([defaults] env that a task's secret replaces is the usual override.)
            if clash := _env_beside_secrets({"env": raw.get("env", {}),
                                             "secrets": task.secrets}):
                problems.append((label, clash))
            cell = expansion.cells.get(task.id)
            tasks.append(replace(
                task, build=builds.get(task.image or ""),
                matrix_of=cell[0] if cell else None, matrix=cell[1] if cell else (),
                env=tuple(sorted({**dict(task.env), TASK_ID_VARIABLE: task.id}.items())),
                services=used,
            ))
    for label, deps in needs:
        for dep in deps:
            if dep == label:
                problems.append((label, "depends on itself"))
            elif dep not in seen:
                problems.append((label, f"depends_on: unknown task '{dep}'"))
    # Said with the other problems, among the dependencies that are there: a fix of those
    # must not reveal a cycle only on the next try.
    for cycle in cycles_in({label: [d for d in deps if d != label and d in seen]
                            for label, deps in needs}):
        problems.append((cycle[0], "circular dependency: " + " -> ".join(cycle)))
    if problems:
        raise TaskFileError(name, problems)
    return TaskFile(name, tasks, dict(defaults), builds, services)


def _env_beside_secrets(table: Mapping[str, Any]) -> str | None:
    """A value written beside a secret of the same name (in one table) would never be seen:
    the secret's wins."""
    clash = sorted(set(table.get("env") or {}) & set(table.get("secrets") or ()))
    if not clash:
        return None
    return (f"env and secrets both name {', '.join(clash)}: the secret's value, from the "
            "runner's environment, wins")


def _check_keys(table: Mapping[str, Any], allowed: Mapping[str, Check]) -> list[str]:
    out = []
    for key, value in table.items():
        check = allowed.get(key)
        if check is None:
            out.append(f"unknown key '{key}'")
            continue
        problem = check(value)
        if problem:
            out.append(f"{key}: {problem}")
    return out


def _path(value: str, base_dir: Path | None) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() or base_dir is None else (base_dir / p))


def _kubernetes(defaults: Mapping[str, Any], raw: Mapping[str, Any]) -> KubernetesSettings | None:
    """A task's own keys win over [defaults]' one by one, as for `slurm`."""
    merged = {**defaults.get("kubernetes", {}), **raw.get("kubernetes", {})}
    if not merged:
        return None
    return KubernetesSettings(
        node_selector=tuple(sorted(merged.get("node_selector", {}).items())),
        tolerations=tuple(tuple((k, str(v)) for k, v in t.items())
                          for t in merged.get("tolerations", [])),
        service_account=merged.get("service_account"),
        image_pull_policy=merged.get("image_pull_policy"),
    )


def _slurm(defaults: Mapping[str, Any], raw: Mapping[str, Any]) -> SlurmSettings | None:
    """A task's own keys win over [defaults]' one by one, as for `env`."""
    merged = {**defaults.get("slurm", {}), **raw.get("slurm", {})}
    if not merged:
        return None
    return SlurmSettings(
        partition=merged.get("partition"), account=merged.get("account"),
        qos=merged.get("qos"), extra=tuple(merged.get("extra", ())),
        container=merged.get("container"),
    )


def _build(raw: Mapping[str, Any], defaults: Mapping[str, Any], base_dir: Path | None) -> Task:
    merged = {**defaults, **raw}
    env = {**defaults.get("env", {}), **raw.get("env", {})}
    mounts = []
    for item in merged.get("mounts", []):
        parts = item.split(":")
        mounts.append(
            Mount(_path(parts[0], base_dir), parts[1], read_only=parts[2:] == ["ro"])
        )
    limits = Limits(
        cpus=merged.get("cpus"),
        memory=parse_memory(merged["memory"]) if "memory" in merged else None,
        pids=merged.get("pids"),
        network=merged.get("network"),
        user=merged.get("user"),
        read_only=merged.get("read_only"),
        privileged=merged.get("privileged", False),
        no_new_privileges=merged.get("no_new_privileges"),
        cap_add=tuple(merged.get("cap_add", ())),
        cap_drop=tuple(merged["cap_drop"]) if "cap_drop" in merged else None,
        mounts=tuple(mounts),
        workspace=_workspace(merged, base_dir),
        workspace_read_only=merged.get("workspace_read_only", False),
    )
    command = merged["command"]
    return Task(
        id=raw["id"],
        command=command if isinstance(command, str) else tuple(command),
        env=tuple(sorted((k, _env_str(v)) for k, v in env.items())),
        cwd=merged.get("cwd"),
        timeout=float(merged["timeout"]) if "timeout" in merged else None,
        depends_on=tuple(raw.get("depends_on", ())),
        image=merged.get("image"),
        teardown=bool(raw.get("teardown", False)),
        secrets=tuple(dict.fromkeys([*defaults.get("secrets", []), *raw.get("secrets", [])])),
        limits=limits,
        entrypoint=_entrypoint(merged.get("entrypoint")),
        junit=_paths(merged.get("junit")),
        artifacts=_paths(merged.get("artifacts")),
        artifacts_when=merged.get("artifacts_when", "always"),
        slurm=_slurm(defaults, raw),
        kubernetes=_kubernetes(defaults, raw),
        retry=_retry(merged.get("retry")),
    )


def _retry(value: Any) -> RetryPolicy | None:
    if value is None:
        return None
    default = RetryPolicy()
    return RetryPolicy(max=value.get("max", default.max),
                       when=tuple(value.get("when", default.when)),
                       exit_codes=tuple(value.get("exit_codes", default.exit_codes)))


def _paths(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _entrypoint(value: Any) -> tuple[str, ...] | str | None:
    if value is None or value == "image":
        return value  # type: ignore[no-any-return]
    return tuple(value)


def _workspace(merged: Mapping[str, Any], base_dir: Path | None) -> str | None:
    """The workspace (relative to the task file's folder); a relative `cwd` with none makes
    the task file's folder the workspace: on every backend the task then works in the same
    files (a container gets them at /workspace)."""
    if "workspace" in merged:
        return _path(merged["workspace"], base_dir)
    cwd = merged.get("cwd")
    if isinstance(cwd, str) and not Path(cwd).is_absolute() and base_dir is not None:
        return str(base_dir)
    return None


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
