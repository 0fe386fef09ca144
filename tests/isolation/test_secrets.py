"""Secrets reach the task, and their values are written nowhere spawnkit writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from spawnkit.core import masking as secrets
from spawnkit.core.masking import mask_file
from tests.conftest import RunCli, WriteTaskfile

VALUE = "s3cr3t-Value-9f2c"


def _files_holding(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_secret_reaches_the_task_and_is_masked_everywhere(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile(
        '[defaults]\nsecrets = ["API_TOKEN"]\n'
        '[[task]]\nid = "uses"\n'
        # "token=***" below shows the task got the exact value: only that value is masked.
        'command = "echo token=$API_TOKEN; echo $API_TOKEN$API_TOKEN >&2"\n'
    )
    run = run_cli("run", "-v", str(path), env={"API_TOKEN": VALUE})
    assert run.code == 0, run.stderr
    job = run.job_dir
    assert (job / "tasks/uses/stdout").read_text() == "token=***\n"
    assert (job / "tasks/uses/stderr").read_text() == "******\n"
    assert _files_holding(job, VALUE) == []
    assert VALUE not in run.stdout + run.stderr


def test_missing_secret_fails_triage_naming_it_not_running(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    path = taskfile(f'[[task]]\nid = "t"\nsecrets = ["NOPE_1"]\ncommand = "touch {marker}"\n')
    run = run_cli("run", str(path))
    task = run.task("t")
    assert (run.code, task["result"], task["status"]) == (1, "error", "fail_triage")
    assert task["reason"] == "secret not set in the runner's environment: NOPE_1"
    assert not marker.exists()


@pytest.mark.parametrize("chunk", [3, 4, 5, 7, 1 << 20])
def test_masking_finds_values_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(secrets, "_CHUNK", chunk)
    path = tmp_path / "out"
    path.write_bytes(b"a" + VALUE.encode() + b"\n" + VALUE.encode() * 3 + b"\xff\x00end")
    assert mask_file(path, [VALUE, ""]) == 4
    assert path.read_bytes() == b"a***\n*********\xff\x00end"


@pytest.mark.parametrize("chunk", [3, 1 << 20])
def test_each_line_of_a_multi_line_value_is_masked_but_not_a_rule_or_a_brace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(secrets, "_CHUNK", chunk)
    key = '{\r\n  "key": "k3y-Line-9f2c",\r\n  "id": "42"\r\n}\r\n-----\r\n'
    path = tmp_path / "out"
    path.write_bytes(b'  "key": "k3y-Line-9f2c",\n{ "id": "42" }\n===== 3 passed -----\n')
    mask_file(path, [key])
    assert path.read_bytes() == b"  ***\n{ *** }\n===== 3 passed -----\n"


def test_a_value_is_masked_as_xml_and_json_escape_it_too(tmp_path: Path) -> None:
    """A task that prints its own JUnit report or a JSON document to stdout: the escaped
    value is the value for whoever reads that report or document."""
    value = 'p&ss<1>"q-9c1e\nsecond-Line-7b'
    path = tmp_path / "out"
    path.write_text('<failure message="p&amp;ss&lt;1&gt;&quot;q-9c1e&#10;second-Line-7b"/>\n'
                    "p&#38;ss&#60;1&#62;&#34;q-9c1e\n"
                    '{"token": "p&ss<1>\\"q-9c1e\\nsecond-Line-7b"}\n'
                    # Go's JSON (<, >, & as \\u00..), XML hex references (found by review).
                    '{"go": "p\\u0026ss\\u003c1\\u003e\\"q-9c1e"}\n'
                    "p&#x26;ss&#x3c;1&#x3e;&#x22;q-9c1e\n"
                    "p&ss plain words stay\n")
    mask_file(path, [value])
    assert path.read_text() == ('<failure message="***&#10;***"/>\n'
                                "***\n"
                                '{"token": "***"}\n'
                                '{"go": "***"}\n'
                                "***\n"
                                "p&ss plain words stay\n")
