"""The keys of a task file and what each one takes: one check per key, which says what is
wrong in words (one line, naming the key), or nothing when the value is fine."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spawnkit.core.matrix import check_matrix
from spawnkit.core.select import BETWEEN_IDS

__all__ = ["COMMON_KEYS", "MAX_INT", "MIN_CPUS", "TASK_KEYS", "WHEN", "Check", "Problems",
           "parse_memory"]

Problems = list[tuple[str | None, str]]
Check = Callable[[Any], str | None]  # returns a problem, or None when the value is fine


#: What every backend takes: a 64-bit integer (TOML's own range; Python reads any size).
MAX_INT = 2**63 - 1
_NUL = "holds a NUL byte, which no command, variable or path can"


def _is_str(v: Any) -> str | None:
    if not (isinstance(v, str) and v != ""):
        return "must be a non-empty string"
    return _NUL if "\0" in v else None


def _is_id(v: Any) -> str | None:
    """A task's id names it on one line of a CI log, in reports and in summaries."""
    problem = _is_str(v)
    # Control characters, and the line and paragraph separators some logs break lines at.
    if problem is None and any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in v):
        return "must hold no control character (a line end, an escape)"
    if problem is None and BETWEEN_IDS.search(v):  # a matrix expansion's, in brackets, is one
        return "must hold no comma (--only and --exclude take ids separated by commas)"
    return problem


def _is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _is_pos_number(v: Any) -> str | None:
    if not (isinstance(v, int | float) and not isinstance(v, bool) and v > 0
            and math.isfinite(v)):
        return "must be a finite number greater than 0"
    return None if v <= MAX_INT else f"must be at most {MAX_INT} (a 64-bit integer)"


#: The smallest CPU limit every backend enforces: Docker takes no less (below, it would
#: silently apply none), Podman's CFS quota of 1 ms per 100 ms period neither.
MIN_CPUS = 0.01


def _is_cpus(v: Any) -> str | None:
    problem = _is_pos_number(v)
    if problem is None and v < MIN_CPUS:
        return f"must be at least {MIN_CPUS} (the least Docker and Podman can enforce)"
    return problem


def _is_pos_int(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_INT
    return None if ok else f"must be a whole number from 1 to {MAX_INT}"


def _is_str_list(v: Any) -> str | None:
    if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
        return "must be a list of strings"
    if not all(v):
        return "must hold no empty string"
    return _NUL if any("\0" in x for x in v) else None


def _is_secret_names(v: Any) -> str | None:
    """Names of environment variables: no `=` in them (the environment could not hold it)."""
    problem = _is_str_list(v)
    if problem is None and (bad := [x for x in v if "=" in x]):
        return f"'{bad[0]}' is not a variable name (it holds '=')"
    return problem


def _is_command(v: Any) -> str | None:
    if isinstance(v, str):
        if not v.strip():
            return "must not be empty"
        return _NUL if "\0" in v else None
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        if not v[0]:
            return "its first word, the program, must not be empty"
        return _NUL if any("\0" in x for x in v) else None
    return "must be a string or a non-empty list of strings"


def _is_paths(v: Any) -> str | None:
    """A path or glob, or a list of them, relative to the task's working folder."""
    items = [v] if isinstance(v, str) else v
    if not (isinstance(items, list) and items and all(isinstance(x, str) and x for x in items)):
        return "must be a path or glob, or a list of them"
    for item in items:
        if "\0" in item:
            return _NUL
        if Path(item).is_absolute() or ".." in Path(item).parts:
            return f"'{item}' must be relative to the task's working folder, inside it"
    return None


def _is_when(v: Any) -> str | None:
    return None if v in WHEN else f"must be one of: {', '.join(WHEN)}"


WHEN = ("always", "on_failure", "on_success")


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


_KUBERNETES_KEYS = ("node_selector", "tolerations", "service_account", "image_pull_policy")
_TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")


def _is_kubernetes(v: Any) -> str | None:
    if not isinstance(v, dict):
        return "must be a table such as { node_selector = { pool = \"ci\" } }"
    for key, value in v.items():
        if key not in _KUBERNETES_KEYS:
            return f"unknown key '{key}' (expected: {', '.join(_KUBERNETES_KEYS)})"
        problem: str | None = None
        if key == "node_selector":
            if not (isinstance(value, dict) and all(
                    isinstance(x, str) and _is_str(y) is None for x, y in value.items())):
                problem = "must be a table of label = \"value\""
        elif key == "tolerations":
            if not (isinstance(value, list) and all(
                    isinstance(t, dict) and t and all(
                        k in _TOLERATION_KEYS and (_is_pos_int(x) is None
                                                   if k == "tolerationSeconds"
                                                   else isinstance(x, str))
                        for k, x in t.items()) for t in value)):
                problem = ("must be a list of tables of " + ", ".join(_TOLERATION_KEYS)
                           + " (tolerationSeconds a number, the others strings)")
        elif key == "image_pull_policy":
            if value not in ("Always", "IfNotPresent", "Never"):
                problem = "must be Always, IfNotPresent or Never"
        else:
            problem = _is_str(value)
        if problem:
            return f"{key}: {problem}"
    return None


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
                abs(value) > MAX_INT or not math.isfinite(value)):
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
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_INT:
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*([bkmg]?)i?b?\s*", value.lower())
        if m and 0 < int(m.group(1)) * _UNITS[m.group(2)] <= MAX_INT:
            return int(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError("must be a size such as \"256m\" or \"1g\"")


_RESULTS = ("failed", "error", "timed_out", "lost")


def _is_retry(v: Any) -> str | None:
    if not isinstance(v, dict):
        return "must be a table such as { max = 2, when = [\"error\", \"timed_out\"] }"
    for key, value in v.items():
        if key == "max":
            if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10):
                return "max: must be a whole number from 1 to 10"
        elif key == "when":
            if not (isinstance(value, list) and all(x in _RESULTS for x in value)):
                return f"when: must be a list of results among {', '.join(_RESULTS)}"
        elif key == "exit_codes":
            if not (isinstance(value, list) and all(
                    isinstance(x, int) and not isinstance(x, bool) and 0 < x < 256
                    for x in value)):
                return "exit_codes: must be a list of exit codes from 1 to 255"
        else:
            return f"unknown key '{key}' (expected: max, when, exit_codes)"
    return None


COMMON_KEYS: dict[str, Check] = {
    "env": _is_env,
    "cwd": _is_str,
    "timeout": _is_pos_number,
    "image": _is_str,
    "secrets": _is_secret_names,
    "cpus": _is_cpus,
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
    "junit": _is_paths,
    "artifacts": _is_paths,
    "artifacts_when": _is_when,
    "slurm": _is_slurm,
    "kubernetes": _is_kubernetes,
    "retry": _is_retry,
    "services": _is_str_list,  # ids of [[service]] tables (core.servicefile)
}
TASK_KEYS: dict[str, Check] = {
    "id": _is_id,
    "command": _is_command,
    "depends_on": _is_str_list,
    "teardown": _is_bool,
    "matrix": check_matrix,
    **COMMON_KEYS,
}
