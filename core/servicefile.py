"""The task file's side of services: `[[service]]` tables and a task's `services` key, checked
as every other key is (each problem one line naming the file and the service or task)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spawnkit.core.task.service import (
    DEFAULT_READY_INTERVAL,
    DEFAULT_READY_TIMEOUT,
    SERVICE_ID,
    Service,
)
from spawnkit.core.taskkeys import (
    Check,
    _is_command,
    _is_env,
    _is_pos_number,
    _is_str,
    _is_str_list,
)

__all__ = ["SERVICE_KEYS", "parse_services", "services_of"]

#: The keys of a `[[service]]` table and what each one takes.
SERVICE_KEYS: dict[str, Check] = {
    "id": _is_str,
    "image": _is_str,
    "command": _is_command,
    "env": _is_env,
    "secrets": _is_str_list,
    "ready": _is_command,
    "ready_timeout": _is_pos_number,
    "ready_interval": _is_pos_number,
}


def parse_services(value: Any) -> tuple[dict[str, Service], list[str]]:
    """The task file's `[[service]]` tables, by id; problems as words naming the service (a
    table with no usable id by its place: `[[service]] #2`)."""
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        return {}, ["services must be [[service]] tables"]
    found: dict[str, Service] = {}
    seen: set[str] = set()  # also the ids of tables with problems: a duplicate is one still
    problems: list[str] = []
    for index, table in enumerate(value, 1):
        sid = table.get("id")
        where = f"service '{sid}'" if isinstance(sid, str) and sid else f"[[service]] #{index}"
        own: list[str] = []
        for key, item in table.items():
            check = SERVICE_KEYS.get(key)
            if check is None:
                own.append(f"unknown key '{key}' (expected: {', '.join(SERVICE_KEYS)})")
            elif problem := check(item):
                own.append(f"{key}: {problem}")
        if "id" not in table:
            own.append("missing 'id'")
        elif isinstance(sid, str) and "\0" not in sid and not SERVICE_ID.fullmatch(sid):
            own.append("id: must be a host name (lower-case letters, digits and '-', at most "
                       "63): tasks reach the service by it")
        if isinstance(sid, str) and sid in seen:
            own.append("duplicate id")
        if isinstance(sid, str):
            seen.add(sid)
        problems += [f"{where}: {p}" for p in own]
        if not own:
            found[sid] = _build(table)
    return found, problems


def _build(table: Mapping[str, Any]) -> Service:
    command, ready = table.get("command"), table.get("ready")
    return Service(
        id=table["id"],
        image=table.get("image"),
        command=command if command is None or isinstance(command, str) else tuple(command),
        env=tuple(sorted((k, _env_str(v)) for k, v in table.get("env", {}).items())),
        secrets=tuple(dict.fromkeys(table.get("secrets", ()))),
        ready=ready if ready is None or isinstance(ready, str) else tuple(ready),
        ready_timeout=float(table.get("ready_timeout", DEFAULT_READY_TIMEOUT)),
        ready_interval=float(table.get("ready_interval", DEFAULT_READY_INTERVAL)),
    )


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def services_of(
    names: Any, services: Mapping[str, Service]
) -> tuple[tuple[Service, ...], list[str]]:
    """The services a task names (its own `services`, else [defaults]'), and a problem for
    each name that is no `[[service]]` of the file. A value that is no list of names is
    the key check's to report: none here."""
    if _is_str_list(names) is not None:
        return (), []
    unknown = [f"services: unknown service '{n}' (no [[service]] has that id)"
               for n in names if n not in services]
    return tuple(services[n] for n in dict.fromkeys(names) if n in services), unknown
