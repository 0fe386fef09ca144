"""What a container task is given, without an engine: spawnkit's defaults, what a task file
changes of them, where secrets go, and the command line's --network."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from spawnkit.core.errors import TaskFileError
from spawnkit.core.registry import get_spawner_class
from spawnkit.core.results import JobResult, TaskRecord
from spawnkit.core.spawner import JobContext, SpawnerOptions
from spawnkit.core.task.description import Limits, Task
from spawnkit.core.task.outcome import Cause, TaskResult
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.core.taskfile import parse_taskfile
from spawnkit.spawners.container.engine import ContainerSpec
from spawnkit.spawners.container.isolation import (
    DEFAULT_CAP_DROP,
    DEFAULT_PIDS,
    applied_settings,
    isolation_of,
)
from spawnkit.spawners.container.spawner import ContainerSpawner
from tests.conftest import RunCli, WriteTaskfile

SECRET = "n0t-in-any-label-7c1e"


def _specs(text: str, name: str = "docker") -> dict[str, ContainerSpec]:
    spawner = get_spawner_class(name)(SpawnerOptions(image="img"))
    assert isinstance(spawner, ContainerSpawner)
    spawner.job = JobContext("job-1", Path("/nonexistent"), "host:1:2")
    tasks = parse_taskfile(text).tasks
    return {t.id: spawner.container_spec(RuntimeTask(t)) for t in tasks}


def test_defaults_of_a_task_that_says_nothing() -> None:
    iso = isolation_of(Limits())
    assert iso.privileged is False
    assert iso.security_opt == ("no-new-privileges",)
    assert iso.cap_add == ()
    assert iso.cap_drop == DEFAULT_CAP_DROP
    assert iso.pids == DEFAULT_PIDS == 4096
    # What CI tasks use stays in the engine's set.
    kept = {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL"}
    assert not kept & set(DEFAULT_CAP_DROP)


@pytest.mark.parametrize("name", ["docker", "podman"])
def test_each_default_changes_per_task_or_in_defaults(name: str) -> None:
    specs = _specs(
        '[defaults]\npids = 256\ncap_add = ["net_raw"]\n'
        '[[task]]\nid = "plain"\ncommand = "true"\n'
        '[[task]]\nid = "own"\ncommand = "true"\npids = 64\ncap_drop = ["ALL"]\n'
        'cap_add = ["CAP_CHOWN"]\nno_new_privileges = false\n'
        '[[task]]\nid = "keeps-all"\ncommand = "true"\ncap_drop = []\n'
        '[[task]]\nid = "priv"\ncommand = "true"\nprivileged = true\n',
        name,
    )
    plain, own, keeps_all, priv = specs["plain"], specs["own"], specs["keeps-all"], specs["priv"]
    assert (plain.pids, plain.privileged) == (256, False)
    assert plain.security_opt == ("no-new-privileges",)
    # A capability asked for is not also dropped, whichever engine would win.
    assert plain.cap_add == ("NET_RAW",)
    assert plain.cap_drop == tuple(c for c in DEFAULT_CAP_DROP if c != "NET_RAW")
    assert (own.pids, own.cap_add, own.cap_drop, own.security_opt) == (64, ("CHOWN",), ("ALL",), ())
    assert keeps_all.cap_drop == ()
    assert (priv.privileged, priv.cap_drop, priv.security_opt) == (
        True, (), ("no-new-privileges",))
    assert [s.privileged for s in specs.values()] == [False, False, False, True]


def test_secrets_go_into_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", SECRET)
    spec = _specs(
        '[[task]]\nid = "t"\ncommand = "echo $API_TOKEN"\nsecrets = ["API_TOKEN"]\n'
        'env = { PLAIN = "1" }\n'
    )["t"]
    assert spec.env == {"PLAIN": "1", "API_TOKEN": SECRET, "SPAWNKIT_TASK_ID": "t"}
    assert SECRET not in json.dumps(
        [spec.labels, spec.command, spec.name, spec.workdir, applied_settings(spec)]
    )


def test_applied_settings_validate_against_the_schema() -> None:
    spec = _specs('[[task]]\nid = "t"\ncommand = "true"\ncpus = 0.5\nmemory = "64m"\n'
                  'network = "none"\nuser = "1000:1000"\nread_only = true\n')["t"]
    applied = applied_settings(spec)
    assert applied == {
        "cpus": 0.5, "memory": 64 * 1024 * 1024, "pids": DEFAULT_PIDS, "network": "none",
        "user": "1000:1000", "read_only": True, "privileged": False, "no_new_privileges": True,
        "cap_add": [], "cap_drop": list(DEFAULT_CAP_DROP),
    }
    record = TaskRecord(
        id="t", result=TaskResult.PASSED, status="finished", cause=Cause.EXIT_CODE, reason=None,
        exit_code=0, signal=None,
        oom=False, start=1.0, end=2.0, duration=1.0, spawner="docker", handle="abc",
        command="true", depends_on=[], image="img",
        limits={"no_new_privileges": True}, stdout="tasks/t/stdout", stderr="tasks/t/stderr",
        slot=0, applied=applied,
    )
    text = resources.files("spawnkit.core").joinpath("results.schema.json").read_text()
    validator = jsonschema.Draft202012Validator(json.loads(text))
    data = JobResult("j", None, "docker", 1.0, 2.0, [record]).as_dict()
    validator.validate(data)
    data["tasks"][0]["applied"]["environment"] = {"API_TOKEN": "x"}
    assert not validator.is_valid(data)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("no_new_privileges = 1", "no_new_privileges: must be true or false"),
        ('cap_add = ["NET RAW"]', "cap_add: must be a list of capability names"),
        ('cap_drop = "ALL"', "cap_drop: must be a list of capability names"),
    ],
)
def test_task_file_checks_the_new_keys(line: str, problem: str) -> None:
    with pytest.raises(TaskFileError) as caught:
        parse_taskfile(f'[[task]]\nid = "t"\ncommand = "true"\n{line}\n')
    assert problem in str(caught.value)


def test_network_from_the_command_line_is_said_unenforced_on_process(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile(
        '[defaults]\nnetwork = "bridge"\n'
        '[[task]]\nid = "a"\ncommand = "true"\nnetwork = "none"\n'
        '[[task]]\nid = "b"\ncommand = "true"\n'
    )
    # [defaults] counts as the task file's say: --network changes neither task.
    run = run_cli("run", "--network", "host", str(path))
    assert run.code == 0, run.stderr
    assert [run.task(t)["limits"] for t in ("a", "b")] == [{"network": "none"},
                                                          {"network": "bridge"}]
    run = run_cli("run", "--network", "none", "--", "true")
    assert run.code == 0, run.stderr
    assert run.task("command")["limits"] == {"network": "none"}
    assert run.task("command")["applied"] is None
    assert "the process backend cannot enforce: network (command): ignored" in run.stderr


def test_privileged_is_not_warned_twice_on_process(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    """The process backend says it cannot enforce it: no second line claiming it runs so."""
    path = taskfile('[[task]]\nid = "p"\ncommand = "true"\nprivileged = true\n')
    run = run_cli("run", str(path))
    assert [ln for ln in run.stderr.splitlines() if "WARNING" in ln] == [
        "spawnkit: WARNING: the process backend cannot enforce: privileged (p): ignored"
    ]


def test_a_task_made_through_the_api_gets_the_defaults_too() -> None:
    iso = isolation_of(Task.make("t", ["true"]).limits)
    assert iso.security_opt == ("no-new-privileges",) and iso.pids == DEFAULT_PIDS
