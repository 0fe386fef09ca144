"""Task files (TOML): loading and validation. Every problem is one line naming file and task."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spawnkit.core.errors import TaskFileError
from spawnkit.core.plan import find_cycle
from spawnkit.core.task.description import Limits, Mount, SlurmSettings, Task

__all__ = ["TaskFile", "load_taskfile", "parse_memory", "parse_taskfile"]

Problems = list[tuple[str | None, str]]
Check = Callable[[Any], str | None]  # returns a problem, or None when the value is fine


#: What every backend takes: a 64-bit integer (TOML's own range; Python reads any size).
_MAX_INT = 2**63 - 1
_NUL = "holds a NUL byte, which no command, variable or path can"


def _is_str(v: Any) -> str | None:
    if not (isinstance(v, str) and v != ""):
        return "must be a non-empty string"
    return _NUL if "\0" in v else None


def _is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _is_pos_number(v: Any) -> str | None:
    ok = (isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= _MAX_INT
          and math.isfinite(v))
    return None if ok else "must be a finite number greater than 0"


def _is_pos_int(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 0 < v <= _MAX_INT
    return None if ok else f"must be a whole number from 1 to {_MAX_INT}"


def _is_str_list(v: Any) -> str | None:
    if not (isinstance(v, list) and all(isinstance(x, str) and x for x in v)):
        return "must be a list of strings"
    return _NUL if any("\0" in x for x in v) else None


def _is_command(v: Any) -> str | None:
    if isinstance(v, str):
        if not v.strip():
            return "must not be empty"
        return _NUL if "\0" in v else None
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return _NUL if any("\0" in x for x in v) else None
    return "must be a string or a non-empty list of strings"


def _is_entrypoint(v: Any) -> str | None:
    if v == "image" or (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        return _NUL if isinstance(v, list) and any("\0" in x for x in v) else None
    return "must be \"image\" (the image's own) or a list of strings"


_SLURM_KEYS = ("partition", "account", "qos", "extra", "container")


def _is_slurm(v: Any) -> str | None:
    if not isinstance(v, dict):
        return "must be a table such as { partition = \"debug\", account = \"ci\" }"
    for key, value in v.items():
        if key not in _SLURM_KEYS:
            return f"unknown key '{key}' (expected: {', '.join(_SLURM_KEYS)})"
        if key == "extra":
            problem = _is_str_list(value)
            if problem is None and not all(x.startswith("-") for x in value):
                problem = "must be a list of sbatch options such as \"--gres=gpu:1\""
        elif key == "container":
            problem = None if value in ("docker", "podman") else "must be docker or podman"
        else:
            problem = _is_str(value)
        if problem:
            return f"{key}: {problem}"
    return None


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


def _is_env(v: Any) -> str | None:
    if not isinstance(v, dict):
        return "must be a table of NAME = \"value\""
    for name, value in v.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            return f"'{name}' is not a valid variable name"
        if not isinstance(value, str | int | float | bool):
            return f"value of '{name}' must be a string"
        if isinstance(value, str) and "\0" in value:
            return f"value of '{name}' {_NUL}"
        if isinstance(value, int | float) and not isinstance(value, bool) and (
                abs(value) > _MAX_INT or not math.isfinite(value)):
            return f"value of '{name}' must be a finite number within 64 bits, or a string"
    return None


def _is_memory(v: Any) -> str | None:
    try:
        parse_memory(v)
    except ValueError as exc:
        return str(exc)
    return None


def _is_network(v: Any) -> str | None:
    return None if v in ("none", "bridge", "host") else "must be one of: none, bridge, host"


def _is_user(v: Any) -> str | None:
    ok = isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?", v)
    return None if ok else "must be \"UID\", \"UID:GID\" or a user name"


def _is_caps(v: Any) -> str | None:
    ok = isinstance(v, list) and all(
        isinstance(x, str) and re.fullmatch(r"[A-Za-z_]+", x) for x in v
    )
    return None if ok else "must be a list of capability names such as \"NET_RAW\" or \"ALL\""


def _is_mounts(v: Any) -> str | None:
    if not isinstance(v, list):
        return "must be a list of \"SOURCE:TARGET[:ro]\""
    for item in v:
        if not (isinstance(item, str) and re.fullmatch(r"[^:]+:/[^:]*(:ro|:rw)?", item)):
            return f"'{item}' is not \"SOURCE:/TARGET[:ro]\""
    return None


_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_memory(value: Any) -> int:
    """`256m`, `1g`, `512k` or bytes as an integer."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_INT:
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*([bkmg]?)i?b?\s*", value.lower())
        if m and 0 < int(m.group(1)) * _UNITS[m.group(2)] <= _MAX_INT:
            return int(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError("must be a size such as \"256m\" or \"1g\"")


COMMON_KEYS: dict[str, Check] = {
    "env": _is_env,
    "cwd": _is_str,
    "timeout": _is_pos_number,
    "image": _is_str,
    "secrets": _is_str_list,
    "cpus": _is_pos_number,
    "memory": _is_memory,
    "pids": _is_pos_int,
    "network": _is_network,
    "user": _is_user,
    "read_only": _is_bool,
    "privileged": _is_bool,
    "no_new_privileges": _is_bool,
    "cap_add": _is_caps,
    "cap_drop": _is_caps,
    "mounts": _is_mounts,
    "workspace": _is_str,
    "workspace_read_only": _is_bool,
    "entrypoint": _is_entrypoint,
    "slurm": _is_slurm,
}
TASK_KEYS: dict[str, Check] = {
    "id": _is_str,
    "command": _is_command,
    "depends_on": _is_str_list,
    "teardown": _is_bool,
    **COMMON_KEYS,
}
TOP_KEYS = ("defaults", "task")


@dataclass
class TaskFile:
    path: str
    tasks: list[Task]
    defaults: dict[str, Any] = field(default_factory=dict)


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
    problems: Problems = []
    for key in data:
        if key not in TOP_KEYS:
            problems.append((None, f"unknown key '{key}' (expected [defaults] and [[task]])"))
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append((None, "[defaults] must be a table"))
        defaults = {}
    problems += [(None, f"[defaults]: {p}") for p in _check_keys(defaults, COMMON_KEYS)]
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
    for index, raw in enumerate(raw_tasks, 1):
        tid = raw.get("id")
        label = tid if isinstance(tid, str) and tid else f"#{index}"
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
        if _is_str_list(raw.get("depends_on", [])) is None:
            needs.append((label, list(raw.get("depends_on", []))))
        if not own:
            tasks.append(_build(raw, defaults if isinstance(defaults, dict) else {}, base_dir))
    for label, deps in needs:
        for dep in deps:
            if dep == label:
                problems.append((label, "depends on itself"))
            elif dep not in seen:
                problems.append((label, f"depends_on: unknown task '{dep}'"))
    if not problems and (cycle := find_cycle(tasks)):
        problems.append((cycle[0], "circular dependency: " + " -> ".join(cycle)))
    if problems:
        raise TaskFileError(name, problems)
    return TaskFile(name, tasks, dict(defaults))


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
        slurm=_slurm(defaults, raw),
    )


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
