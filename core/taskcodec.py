"""Tasks to JSON and back, whole: the journal keeps every task a job runs, so `spawnkit
resume` and `spawnkit results` need neither the task file nor the command line that made it.

Generic over the description's frozen dataclasses (`Task`, `Limits`, ...), driven by their
type hints: a field added to one is kept with nothing to change here. No secret value is in a
task (it names its secrets; their values come from the runner's environment).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any, TypeVar

from spawnkit.core.task.description import Task

T = TypeVar("T")

__all__ = ["from_json", "task_from_json", "task_to_json"]


def task_to_json(task: Task) -> dict[str, Any]:
    """A JSON-ready dict of every field (tuples stay tuples: JSON writes them as lists)."""
    out: dict[str, Any] = _plain(task)
    return out


def _plain(value: Any) -> Any:
    # Not dataclasses.asdict: it deep-copies every value, a cost per task in a job's header.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in _fields(type(value))}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return value


@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


def task_from_json(data: dict[str, Any]) -> Task:
    """The task `task_to_json` wrote (ValueError when it does not read as one)."""
    try:
        task = _decode(Task, data)
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"a task in the journal does not read as a task: {exc}") from None
    assert isinstance(task, Task)
    return task


def from_json(cls: type[T], data: Any) -> T:
    """Any of spawnkit's dataclasses from what `task_to_json` (or `dataclasses.asdict`) wrote,
    its types checked; keys it does not know are left out. TypeError, KeyError or ValueError
    when it does not read as one."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a table for {cls.__name__}, got {type(data).__name__}")
    value = _decode(cls, data)
    assert isinstance(value, cls)
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(hint: Any, value: Any) -> Any:
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = _hints(hint)
        known = {f.name for f in dataclasses.fields(hint)}
        return hint(**{k: _decode(hints[k], v) for k, v in value.items() if k in known})
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(hint), value)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if origin is dict:
        _key, item = typing.get_args(hint)
        return {str(k): _decode(item, v) for k, v in value.items()}
    if hint is float and isinstance(value, int):
        return float(value)
    if isinstance(hint, type) and not isinstance(value, hint):
        raise TypeError(f"expected {hint.__name__}, got {type(value).__name__}")
    return value


def _union(options: tuple[Any, ...], value: Any) -> Any:
    """The first option the JSON value fits: null, a list (a tuple), a dict (a dataclass),
    else a plain value."""
    if value is None:
        if type(None) in options:
            return None
        raise TypeError("null where a value is needed")
    for option in options:
        if option is type(None):
            continue
        origin = typing.get_origin(option)
        if isinstance(value, list) and origin is tuple:
            return _decode(option, value)
        if isinstance(value, dict) and (dataclasses.is_dataclass(option) or origin is dict):
            return _decode(option, value)
        if isinstance(option, type) and isinstance(value, option):
            return value
        if option is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    raise TypeError(f"no option of {options} fits {type(value).__name__}")
