"""results.json keeps the layout that core/results.schema.json documents."""

from __future__ import annotations

import dataclasses
import json
from importlib import resources
from typing import Any

import jsonschema

from spawnkit.core.results import JobResult, TaskRecord
from spawnkit.core.task.outcome import Cause, TaskResult
from tests.ci.conftest import MixedJob


def _schema() -> dict[str, Any]:
    text = resources.files("spawnkit.core").joinpath("results.schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(_schema())


def test_real_results_json_validates(mixed_job: MixedJob) -> None:
    validator = jsonschema.Draft202012Validator(_schema())
    for path in (mixed_job.job_dir / "results.json", mixed_job.json_copy):
        errors = [e.message for e in validator.iter_errors(json.loads(path.read_text()))]
        assert errors == []


def test_schema_names_every_field_and_result() -> None:
    # A field added to the results without the schema (or the other way) fails here.
    schema = _schema()
    task_props = set(schema["$defs"]["task"]["properties"])
    # `flaky` is derived (passed after a failed attempt), written with the stored fields.
    assert task_props == {f.name for f in dataclasses.fields(TaskRecord)} | {"flaky"}
    assert set(schema["$defs"]["task"]["required"]) == task_props
    job = JobResult("j", None, None, None, None).as_dict()
    assert set(schema["properties"]) == set(job) == set(schema["required"])
    assert set(schema["$defs"]["result"]["enum"]) == {r.value for r in TaskResult}
    assert set(schema["properties"]["counts"]["required"]) == {r.value for r in TaskResult}


def test_limits_and_mounts_validate() -> None:
    record = TaskRecord(
        id="a", result=TaskResult.PASSED, status="finished", cause=Cause.EXIT_CODE, reason=None,
        exit_code=0, signal=None,
        oom=False, start=1.0, end=2.0, duration=1.0, spawner="docker", handle="abc",
        command="true", depends_on=[], image="busybox",
        limits={"cpus": 0.5, "memory": 268435456, "network": "none", "cap_add": ["NET_ADMIN"],
                "mounts": [{"source": "/src", "target": "/dst", "read_only": True}]},
        stdout="tasks/a/stdout", stderr="tasks/a/stderr", slot=0,
    )
    data = JobResult("j", "t.toml", "docker", 1.0, 2.0, [record]).as_dict()
    jsonschema.Draft202012Validator(_schema()).validate(data)
    data["tasks"][0]["surprise"] = 1
    assert not jsonschema.Draft202012Validator(_schema()).is_valid(data)
