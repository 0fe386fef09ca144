"""The Pod a task becomes, and the task file's `kubernetes` key: no cluster needed."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from spawnkit.core.errors import TaskFileError
from spawnkit.core.output import TaskOutput
from spawnkit.core.spawner import JobContext
from spawnkit.core.task.description import KubernetesSettings, Limits, Task
from spawnkit.core.taskfile import parse_taskfile
from spawnkit.spawners.kubernetes.execstatus import ExecRefused, exec_status
from spawnkit.spawners.kubernetes.logs import PodLog
from spawnkit.spawners.kubernetes.pod import pod_name, pod_plan

JOB = JobContext("20261130-101010-abc123", Path("/tmp/job"), "host:1:2")


def test_the_task_key_is_read_and_merged_with_defaults() -> None:
    text = (
        '[defaults]\nkubernetes = { service_account = "ci", node_selector = { pool = "a" } }\n'
        '[[task]]\nid = "t"\ncommand = "true"\n'
        'kubernetes = { node_selector = { pool = "b", zone = "z" }, image_pull_policy = "Never",'
        ' tolerations = [{ key = "ci", operator = "Exists", tolerationSeconds = 30 }] }\n'
    )
    task = parse_taskfile(text).tasks[0]
    assert task.kubernetes == KubernetesSettings(
        node_selector=(("pool", "b"), ("zone", "z")),
        tolerations=((("key", "ci"), ("operator", "Exists"), ("tolerationSeconds", "30")),),
        service_account="ci", image_pull_policy="Never")


@pytest.mark.parametrize(("value", "problem"), [
    ('{ node = "x" }', "unknown key 'node'"),
    ('{ image_pull_policy = "Sometimes" }', "must be Always, IfNotPresent or Never"),
    ('{ tolerations = [{ colour = "red" }] }', "tolerations: must be a list of tables"),
    ('{ node_selector = { a = 1 } }', "node_selector: must be a table"),
])
def test_a_bad_task_key_is_one_line(value: str, problem: str) -> None:
    with pytest.raises(TaskFileError) as err:
        parse_taskfile(f'[[task]]\nid = "t"\ncommand = "true"\nkubernetes = {value}\n')
    assert problem in str(err.value) and "\n" not in str(err.value)


def test_pod_names_are_dns_labels_and_tell_ids_apart() -> None:
    a, b = pod_name(JOB.job_id, "Unit Tests"), pod_name(JOB.job_id, "unit_tests")
    assert a != b
    long = pod_name(JOB.job_id, "x" * 300)
    for name in (a, b, long):
        assert len(name) <= 63 and name == name.lower() and name[0].isalpha()


def test_the_pod_spec() -> None:
    task = Task.make("t", "echo $HOME $(X)", env={"V": "$(HOME)"}, cwd="/src",
                     limits=Limits(cpus=0.5, memory=64 * 1024**2, user="1000:1000",
                                   read_only=True))
    plan = pod_plan(task, JOB, "img:1", grace=2.5)
    spec = plan.pod["spec"]
    main, reader = spec["containers"]
    # Passed on verbatim, after the wrapper that puts its stderr on the reader's FIFO.
    assert main["command"][:2] == ["sh", "-c"] and main["command"][3] == "spawnkit"
    assert main["command"][4:] == ["sh", "-c", "echo $$HOME $$(X)"]
    assert {"name": "spawnkit", "mountPath": "/.spawnkit"} in main["volumeMounts"]
    # The stderr reader: the task's image and user, no privilege, a small fixed share.
    assert (reader["name"], reader["image"]) == ("spawnkit-stderr", "img:1")
    assert reader["securityContext"] == {
        "runAsUser": 1000, "runAsGroup": 1000, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert reader["resources"]["limits"] == reader["resources"]["requests"]
    assert plan.split and plan.applied["stderr_apart"] is True
    assert {"name": "V", "value": "$$(HOME)"} in main["env"]
    assert main["imagePullPolicy"] == "IfNotPresent"
    assert main["resources"] == {"requests": {"cpu": "500m", "memory": "67108864"},
                                 "limits": {"cpu": "500m", "memory": "67108864"}}
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert (main["securityContext"]["runAsUser"], main["securityContext"]["runAsGroup"]) == (
        1000, 1000)
    assert "NET_RAW" in main["securityContext"]["capabilities"]["drop"]
    assert (spec["restartPolicy"], spec["shareProcessNamespace"],
            spec["terminationGracePeriodSeconds"]) == ("Never", True, 3)
    assert spec["automountServiceAccountToken"] is False
    # A working folder the image must have is checked before the task runs.
    assert spec["initContainers"][0]["command"][-1] == "/src"
    assert plan.secret is None


def test_secrets_are_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "s3cr3t-value")
    task = Task.make("t", ["true"], secrets=("API_TOKEN",))
    plan = pod_plan(task, JOB, "img:1", grace=1)
    assert "s3cr3t-value" not in repr(plan.pod)
    assert plan.secret is not None and plan.secret["stringData"] == {"s0": "s3cr3t-value"}
    env = plan.pod["spec"]["containers"][0]["env"]
    assert {"name": "API_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": plan.name, "key": "s0"}}} in env
    # The owner goes in an annotation: a label value cannot hold "host:pid:start".
    assert plan.pod["metadata"]["annotations"]["spawnkit.owner"] == "host:1:2"


def test_the_images_entrypoint_or_no_split_means_one_stream() -> None:
    """With the image's own entrypoint (or no sh in the image: made again with split=False)
    the command runs as given, in a Pod of one container."""
    for task, split in ((Task.make("t", ["echo", "x"], entrypoint="image"), True),
                        (Task.make("t", ["echo", "x"]), False)):
        plan = pod_plan(task, JOB, "img:1", grace=1, split=split)
        (main,) = plan.pod["spec"]["containers"]
        assert main.get("command", main.get("args")) == ["echo", "x"]
        assert not plan.split and plan.applied["stderr_apart"] is False


def test_retries_and_keeping_are_in_the_name_and_labels() -> None:
    task = Task.make("t", ["true"])
    first, second = (pod_plan(task, JOB, "img:1", grace=1, attempt=n) for n in (1, 2))
    assert first.name != second.name and first.name == pod_name(JOB.job_id, "t")
    assert "spawnkit.keep" not in first.pod["metadata"]["labels"]
    kept = pod_plan(task, JOB, "img:1", grace=1, keep="failed")
    assert kept.pod["metadata"]["labels"]["spawnkit.keep"] == "failed"


def test_gc_keeps_kept_pods_and_held_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dead runner's Pods go, but an ended kept one only with --kept, and none of a job
    that a resumed runner holds."""
    from spawnkit.core import runs
    from spawnkit.spawners.kubernetes import reap

    dead = f"{socket.gethostname()}:999999999:1"  # no such PID: its runner is gone

    def pod(name: str, job: str, *, keep: str | None = None, ended: bool = True) -> dict[str, Any]:
        labels = {"spawnkit.managed": "true", **({"spawnkit.keep": keep} if keep else {})}
        state = {"terminated": {"exitCode": 3}} if ended else {"running": {}}
        return {"metadata": {"name": name, "labels": labels, "annotations": {
                    "spawnkit.owner": dead, "spawnkit.job": job, "spawnkit.task": "t"}},
                "status": {"phase": "Failed" if ended else "Running",
                           "containerStatuses": [{"name": "main", "state": state}]}}

    listed = [pod("plain", "j1"), pod("kept", "j1", keep="failed"),
              pod("kept-running", "j1", keep="failed", ended=False), pod("held", "j2")]
    monkeypatch.setattr(runs, "leave_alone",
                        lambda job_id, job_dir=None, *, spare_recent=False: job_id == "j2")
    names = [p["metadata"]["name"] for p in reap.orphans(listed, pods=True)]
    assert names == ["plain", "kept-running"]
    names = [p["metadata"]["name"] for p in reap.orphans(listed, pods=True, kept=True)]
    assert names == ["plain", "kept", "kept-running"]
    assert reap.describe(listed[1], "Pod") == "Pod kept (job j1, task t, kept)"


class _SplitLogApi:
    """A log API answer cut where a real one may be: the kubelet's error for a container it
    removed (HTTP 200) comes after the log, split across two chunks."""

    namespace = "ns"

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def log(self, name: str, container: str, *, follow: bool) -> Any:
        return iter(self.chunks) if follow else iter([b"".join(self.chunks)])


@pytest.mark.parametrize("cut", [1, 4, 12, 40])
def test_the_kubelets_error_cut_across_chunks_is_no_output(tmp_path: Path, cut: int) -> None:
    error = b"unable to retrieve container logs for containerd://0123abcd"
    api = _SplitLogApi([b"out\nfailed to fetch? no: last line\n" + error[:cut], error[cut:]])
    log = PodLog(api, "pod", "uid", TaskOutput(tmp_path, ()), split=False)  # type: ignore[arg-type]
    log.known({"main": "0123abcd"})
    log.start()
    notes = log.finish()
    assert (tmp_path / "stdout").read_bytes() == b"out\nfailed to fetch? no: last line\n"
    assert notes == [
        "stdout and stderr may be incomplete (what was read while the task ran is kept): the "
        "Kubernetes log API gave an error in place of the log of container main: "
        + error.decode()]


@pytest.mark.parametrize(("status", "expected"), [
    ('{"metadata":{},"status":"Success"}', 0),
    ('{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit '
     'code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode",'
     '"details":{"causes":[{"reason":"ExitCode","message":"3"}]}}', 3),
    ("", None),
])
def test_an_exec_status_is_read_from_its_error_channel(status: str, expected: int | None) -> None:
    assert exec_status(status) == expected


@pytest.mark.parametrize("status", [
    '{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing '
    'command in container: exec: \\"sh\\": executable file not found in $PATH",'
    '"reason":"InternalError","details":{"causes":[{"message":"error executing command in '
    'container"}]},"code":500}',
    "null", "[]", "not json",
])
def test_an_exec_the_runtime_refused_says_its_words(status: str) -> None:
    """The client's own reading raised `invalid literal for int()` here (found by trying)."""
    with pytest.raises(ExecRefused) as refused:
        exec_status(status)
    assert "invalid literal" not in str(refused.value)
    if "InternalError" in status:
        assert 'exec: "sh": executable file not found in $PATH' in str(refused.value)
