"""Bad input, fuzzed: the task-file loader and the command line never raise a traceback;
task ids of any shape become folder names inside the job folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spawnkit.cli.main import main
from spawnkit.core.errors import TaskFileError
from spawnkit.core.paths import safe_name
from spawnkit.core.taskfile import TASK_KEYS, parse_taskfile

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
_values = st.recursive(
    _scalars.filter(lambda v: v is not None),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=10,
)
_task = st.dictionaries(
    st.sampled_from([*TASK_KEYS, "bogus", "Id", ""]), _values, max_size=8
)
_document = st.fixed_dictionaries(
    {},
    optional={
        "task": st.lists(_task, max_size=4) | _values,
        "defaults": st.dictionaries(st.sampled_from([*TASK_KEYS, "x"]), _values, max_size=5),
        "other": _values,
    },
)


def _toml(value: object) -> str:
    """A tiny TOML writer for what hypothesis builds (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if value == value and abs(value) != float("inf") else '"nan"'
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid in TOML
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _render(doc: dict[str, object]) -> str:
    lines = []
    for key, value in doc.items():
        if key == "task" and isinstance(value, list) and all(isinstance(t, dict) for t in value):
            for table in value:
                assert isinstance(table, dict)
                lines.append("[[task]]")
                lines += [f"{_toml(str(k))} = {_toml(v)}" for k, v in table.items()]
        else:
            lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


@FUZZ
@given(_document)
@example({"task": [{"\n": False}]})  # found by the fuzzer: a key with a line break, echoed
def test_loader_accepts_or_explains_structured_junk(doc: dict[str, object]) -> None:
    text = _render(doc)
    try:
        loaded = parse_taskfile(text, "fuzz.toml")
    except TaskFileError as exc:
        assert exc.lines()
        assert all(line.startswith("fuzz.toml") and "\n" not in line for line in exc.lines())
    else:
        assert loaded.tasks and all(t.id and t.argv for t in loaded.tasks)


@FUZZ
@given(st.text(max_size=300))
def test_loader_explains_any_text(text: str) -> None:
    try:
        loaded = parse_taskfile(text, "fuzz.toml")
    except TaskFileError as exc:
        assert exc.lines()
        assert all(line.startswith("fuzz.toml") and "\n" not in line for line in exc.lines())
    else:
        assert loaded.tasks and all(t.id and t.argv for t in loaded.tasks)


_words = st.sampled_from(
    ["run", "validate", "list", "results", "gc", "--spawner", "--max-running", "--timeout",
     "--grace", "--only", "--exclude", "-k", "--failfast", "--results", "--dry-run", "-q",
     "-v", "--json", "--junit", "-0", "nan", "0", "1e9", "process", "docker", "x.toml", "",
     "\x00", "é", "--", "--help", "--no-gc", "--image"]
) | st.text(max_size=12)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_words, max_size=6))
def test_command_line_never_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    # Random `--json NAME` and the like write relative paths: keep them out of the checkout.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPAWNKIT_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SPAWNKIT_STATE_DIR", str(tmp_path / "state"))
    # No engine here: --spawner docker must fail cleanly too. The ad hoc command stays harmless.
    if "--" in argv:
        argv = [*argv[: argv.index("--") + 1], "true"]
    try:
        code = main(argv)
    except SystemExit as exc:  # --help and --version exit through click
        code = exc.code if isinstance(exc.code, int) else 0
    assert code in (0, 1, 2, 130), (argv, code)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2:
        assert err.strip().startswith("spawnkit: error:") or "Usage:" in err, err


@FUZZ
@given(st.text(min_size=1, max_size=400))
def test_any_task_id_is_a_safe_folder_name(task_id: str) -> None:
    name = safe_name(task_id)
    assert name and len(name) <= 100
    assert "/" not in name and "\x00" not in name and name not in (".", "..")
    assert not name.startswith(".")
    assert name.isascii()


def test_hostile_ids_write_only_inside_the_job_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (A NUL byte no engine takes in a label, and a line end or an escape that would break
    # a CI log's lines: refused by the loader, see below.)
    ids = ["../escape", "/abs/path", "..", ".", "a/../../b", "x" * 500, "émoji-🚀", "CON",
           "a b", "quote'\"`|*?<>:;&$"]
    text = "".join(f'[[task]]\nid = {_toml(i)}\ncommand = "echo out; echo err >&2"\n'
                   for i in ids)
    path = tmp_path / "t.toml"
    path.write_text(text)
    results = tmp_path / "results"
    before = set(tmp_path.rglob("*"))
    monkeypatch.setenv("SPAWNKIT_STATE_DIR", str(tmp_path / "state"))
    assert main(["run", "-q", "--results", str(results), str(path)]) == 0
    job = (results / "latest").resolve()
    written = set(tmp_path.rglob("*")) - before
    outside = [p for p in written
               if not (p.is_relative_to(results) or p.is_relative_to(tmp_path / "state"))]
    assert outside == []
    folders = {p.name for p in (job / "tasks").iterdir()}
    assert len(folders) == len(ids)  # one folder each: no two ids collide
    with pytest.raises(TaskFileError, match="NUL byte"):
        parse_taskfile('[[task]]\nid = "nul\\u0000byte"\ncommand = "true"\n', "t.toml")
    with pytest.raises(TaskFileError, match="must hold no control character"):
        parse_taskfile('[[task]]\nid = "tab\\tnew\\nline"\ncommand = "true"\n', "t.toml")
