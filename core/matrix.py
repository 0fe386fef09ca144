"""Matrix tasks: `matrix = { python = ["3.11", "3.12"], db = ["pg", "sqlite"] }` makes one
task per combination, `unit[python=3.11,db=pg]` and so on, with `${{ matrix.python }}`
replaced in `command`, `image`, `env` values and `cwd`.

The expansion works on the task file's tables, before any task is built: every check the
loader makes (keys, duplicate ids, unknown dependencies, cycles) then applies to the
expansions as to any other task. A dependency on a matrix task's own id means every one of
its expansions.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_EXPANSIONS",
    "SUBSTITUTED_KEYS",
    "Expansion",
    "check_matrix",
    "expand_matrix",
    "matrix_id",
]

#: More tasks than this from one matrix is almost surely a mistake (an axis too many), and a
#: job that size is better split across runners (`--shard`).
MAX_EXPANSIONS = 256

#: The keys whose values take `${{ matrix.AXIS }}`.
SUBSTITUTED_KEYS = ("command", "image", "env", "cwd")

_PLACEHOLDER = re.compile(r"\$\{\{\s*matrix\.([^\s}]*)\s*\}\}")
_AXIS = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# A value is part of the expansion's id, which `--only` splits at commas and reads up to `]`.
_ID_CHARS = ",=[]"

Problems = list[tuple[str | None, str]]
#: One expansion's values, (axis, value) in the axes' order.
Cell = tuple[tuple[str, str], ...]


def check_matrix(value: Any) -> str | None:
    """The shape of a `matrix` key: a table of axes, each a non-empty list of distinct
    strings or whole numbers, making at most MAX_EXPANSIONS tasks."""
    if not isinstance(value, dict) or not value:
        return "must be a table of axes such as { python = [\"3.11\", \"3.12\"] }"
    count = 1
    for axis, values in value.items():
        if not _AXIS.fullmatch(axis):
            return f"axis '{axis}' must be a name of letters, digits, '_' and '-'"
        if not isinstance(values, list):
            return f"axis '{axis}' must be a list of values, such as [\"a\", \"b\"]"
        if not values:
            return f"axis '{axis}' is empty: give it at least one value"
        seen: set[str] = set()
        for item in values:
            problem = _value_problem(item)
            if problem is not None:
                return f"axis '{axis}': {problem}"
            text = _text(item)
            if text in seen:
                return f"axis '{axis}': value '{text}' is given twice"
            seen.add(text)
        count *= len(values)
    if count > MAX_EXPANSIONS:
        return (f"makes {count} tasks, more than {MAX_EXPANSIONS}: drop an axis or some values "
                "(or split the job with --shard)")
    return None


def _value_problem(item: Any) -> str | None:
    if isinstance(item, float):
        # 3.10 is read as the number 3.1: a version must be written as a string.
        shown = repr(item) if math.isfinite(item) else "a non-finite number"
        return (f"{shown} is a decimal number (3.10 would read as 3.1): write the value as a "
                "string, in quotes")
    if not isinstance(item, str | int):
        return "values must be strings, whole numbers or true/false"
    text = _text(item)
    if text == "":
        return "a value must not be empty"
    if not text.isprintable():
        return f"value {text!r} holds a control character"
    if any(c in text for c in _ID_CHARS):
        return f"value '{text}' holds one of {' '.join(_ID_CHARS)}, which the task's id cannot"
    return None


def _text(item: Any) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"
    return str(item)


def matrix_id(name: str, cell: Sequence[tuple[str, str]]) -> str:
    """`unit[python=3.11,db=pg]`: the id of one expansion of the matrix task `name`."""
    return f"{name}[{','.join(f'{axis}={value}' for axis, value in cell)}]"


@dataclass
class Expansion:
    """The task file's task tables with every matrix expanded."""

    #: (the task's place in the file, from 1; its table), every expansion at its task's place.
    tables: list[tuple[int, dict[str, Any]]]
    #: A matrix task's id -> the ids of its expansions, in order.
    groups: dict[str, list[str]] = field(default_factory=dict)
    #: An expansion's id -> its matrix task's id and its values, axis by axis.
    cells: dict[str, tuple[str, Cell]] = field(default_factory=dict)
    problems: Problems = field(default_factory=list)


def expand_matrix(
    raw_tasks: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any],
    well_formed: Callable[[Mapping[str, Any]], bool],
) -> Expansion:
    """Expand each task table that has a `matrix` and is `well_formed` (its keys all fine).
    Any other is left as written: the loader reports its problems once, under the task's own
    id, not once per expansion. An expansion has its placeholders replaced, also in the values
    [defaults] gives it."""
    out = Expansion([])
    out.problems += [(None, f"[defaults]: {p}") for p in _misplaced(defaults)]
    plain_ids: set[str] = set()
    for index, raw in enumerate(raw_tasks, 1):
        tid = raw.get("id")
        label = tid if isinstance(tid, str) and tid else f"#{index}"
        if "matrix" not in raw or not isinstance(tid, str) or not well_formed(raw):
            if isinstance(tid, str):
                plain_ids.add(tid)
            out.problems += [(label, p) for p in _stray_placeholders(raw, defaults)]
            out.tables.append((index, dict(raw)))
            continue
        if tid in out.groups:
            out.problems.append((label, "duplicate id"))
            continue
        expanded, problems = _expand_one(tid, raw, defaults)
        out.problems += [(label, p) for p in problems]
        out.groups[tid] = [table["id"] for table, _ in expanded]
        for table, cell in expanded:
            out.tables.append((index, table))
            out.cells[table["id"]] = (tid, cell)
    for name in sorted(plain_ids & set(out.groups)):
        out.problems.append((name, "duplicate id (a matrix task has it too: which would a "
                                   "dependency on it mean?)"))
    for _, table in out.tables:
        tid = table.get("id")
        found = out.cells.get(tid) if isinstance(tid, str) else None
        _point_at_expansions(table, found[0] if found else None, out.groups, out.problems)
    return out


def _expand_one(
    name: str, raw: Mapping[str, Any], defaults: Mapping[str, Any]
) -> tuple[list[tuple[dict[str, Any], Cell]], list[str]]:
    matrix: dict[str, list[Any]] = raw["matrix"]
    axes = list(matrix)
    problems = [f"{where}: {_placeholder_words(axis)} names no axis of the matrix "
                f"(axes: {', '.join(axes)})"
                for where, axis in _placeholders(raw, defaults) if axis not in matrix]
    problems += _misplaced(raw)
    if problems:
        return [], problems
    body = {k: v for k, v in raw.items() if k != "matrix"}
    # A placeholder that [defaults] gives is replaced here too: the task takes the default's
    # value, made its own.
    for key in ("command", "image", "cwd"):
        if key not in body and _has_placeholder(defaults.get(key)):
            body[key] = defaults[key]
    default_env = defaults.get("env")
    if isinstance(default_env, dict) and any(_has_placeholder(v) for v in default_env.values()):
        body["env"] = {**default_env, **body.get("env", {})}
    tables = []
    for combination in itertools.product(*(matrix[a] for a in axes)):
        cell = tuple((axis, _text(v)) for axis, v in zip(axes, combination, strict=True))
        values = dict(cell)
        table = {k: _substitute(v, values) if k in SUBSTITUTED_KEYS else v
                 for k, v in body.items()}
        table["id"] = matrix_id(name, cell)
        tables.append((table, cell))
    return tables, []


def _substitute(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], value)
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    return value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _has_placeholder(value: Any) -> bool:
    return any(_PLACEHOLDER.search(s) for s in _strings(value))


def _placeholder_words(axis: str) -> str:
    return f"'${{{{ matrix.{axis} }}}}'"


def _placeholders(
    raw: Mapping[str, Any], defaults: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    """(where, axis) of every placeholder the task's substituted keys will hold, its own
    and those [defaults] gives it."""
    for key in SUBSTITUTED_KEYS:
        own = raw.get(key)
        inherited = defaults.get(key)
        if key == "env" and isinstance(inherited, dict):
            inherited = {k: v for k, v in inherited.items()
                         if not (isinstance(own, dict) and k in own)}
        elif own is not None:
            inherited = None
        for where, value in ((key, own), (f"{key} (from [defaults])", inherited)):
            for text in _strings(value):
                for match in _PLACEHOLDER.finditer(text):
                    yield where, match.group(1)


def _misplaced(raw: Mapping[str, Any]) -> list[str]:
    """Placeholders where nothing replaces them: said, not left as text."""
    return [f"{key}: placeholders are replaced only in {', '.join(SUBSTITUTED_KEYS)}"
            for key, value in raw.items()
            if key not in SUBSTITUTED_KEYS and key != "matrix" and _has_placeholder(value)]


def _stray_placeholders(raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[str]:
    """Placeholders in a task with no (well-formed) matrix; a malformed matrix has its own
    problem, and its placeholders are not worth a second line."""
    if "matrix" in raw:
        return []
    found = [f"{where}: {_placeholder_words(axis)}, but the task has no matrix"
             for where, axis in _placeholders(raw, defaults)]
    return found + _misplaced(raw)


def _point_at_expansions(
    table: dict[str, Any], own: str | None, groups: Mapping[str, list[str]], problems: Problems
) -> None:
    """A dependency on a matrix task is one on each of its expansions."""
    deps = table.get("depends_on")
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        return  # the key's own check says what is wrong
    out: list[str] = []
    for dep in deps:
        if dep == own:
            problem = (own, "depends on itself (a dependency on a matrix task is one on "
                            "each of its expansions)")
            if problem not in problems:
                problems.append(problem)
            continue
        out += groups.get(dep, [dep])
    table["depends_on"] = list(dict.fromkeys(out))
