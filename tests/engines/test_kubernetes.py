"""The kubernetes backend on a real API server and kubelet (`source .ci/kubernetes.sh`):
handles are Pod names, timeouts, OOM, exit codes, secrets kept out of every Pod spec and
file, Pods that can never start, and nothing left behind."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spawnkit.core.output import TaskOutput
from spawnkit.core.spawner import SpawnerOptions
from spawnkit.core.task.description import KubernetesSettings, Limits, Mount, Task
from spawnkit.spawners.kubernetes.api import KubeApi, load_api
from spawnkit.spawners.kubernetes.logs import PodLog
from spawnkit.spawners.kubernetes.pod import CONTAINER, HOST_NETWORK_VARIABLE
from spawnkit.spawners.kubernetes.spawner import KubernetesSpawner
from spawnkit.spawners.kubernetes.state import pod_state
from tests.conftest import RunCli, WriteTaskfile
from tests.engines.conftest import TEST_IMAGE, StartJob, require_engine, run_job
from tests.engines.kubernetes_cluster import POD_NAME, kubectl, kubernetes_objects, pod_json
from tests.faults.jobs import (
    job_dir_of,
    read_results,
    start_cli,
    started_handles,
    wait_until,
)

pytestmark = pytest.mark.kubernetes

SECRET = "s3cr3t-kubernetes-9c1f"


@pytest.fixture(autouse=True)
def _cluster() -> None:
    require_engine("kubernetes")


@pytest.fixture
def nothing_left(tmp_path: Path) -> Iterator[None]:
    """No Pod or Secret of the test's jobs is left (and none is left for the next test)."""
    yield
    results = tmp_path / "results"
    left = [o for job in (results.iterdir() if results.is_dir() else []) if job.is_dir()
            for o in kubernetes_objects(job.name)]
    if left:
        kubectl("delete", "--grace-period=0", "--force", *left, check=False)
    assert left == []


def _spawner(**settings: float) -> KubernetesSpawner:
    spawner = KubernetesSpawner(SpawnerOptions(image=TEST_IMAGE, grace_period=1.0))
    for name, value in settings.items():
        setattr(spawner, name, value)
    return spawner


def test_handles_are_pod_names(run_cli: RunCli, taskfile: WriteTaskfile,
                               nothing_left: None) -> None:
    path = taskfile(f'[[task]]\nid = "a"\ncommand = "echo one"\nimage = "{TEST_IMAGE}"\n'
                    f'[[task]]\nid = "B_2"\ncommand = "echo two"\nimage = "{TEST_IMAGE}"\n')
    done = run_cli("run", str(path), "--spawner", "k8s", "-q")
    assert done.code == 0, done.stderr
    handles = started_handles(done.job_dir)
    assert set(handles) == {"a", "B_2"}
    assert all(POD_NAME.fullmatch(h) for h in handles.values()), handles
    journal = (done.job_dir / "journal.jsonl").read_text().splitlines()
    started = [json.loads(line) for line in journal if '"started"' in line]
    for record in started:
        result = record["spawning_result"]
        assert result["pod"] == record["handle"] and re.fullmatch(r"[0-9a-f-]{36}",
                                                                   result["uid"])
    assert (done.job_dir / done.task("B_2")["stdout"]).read_text() == "two\n"


def test_timeout_ends_the_task_and_deletes_its_pod(
    run_cli: RunCli, taskfile: WriteTaskfile, nothing_left: None
) -> None:
    path = taskfile(f'[[task]]\nid = "sleepy"\ncommand = ["sleep", "60"]\ntimeout = 2\n'
                    f'image = "{TEST_IMAGE}"\n')
    began = time.monotonic()
    done = run_cli("run", str(path), "--spawner", "kubernetes", "--grace", "1", "-q")
    took = time.monotonic() - began
    rec = done.task("sleepy")
    assert (done.code, rec["result"], rec["reason"]) == (1, "timed_out", "timed out after 2 s")
    assert rec["duration"] < 5.0, rec["duration"]
    assert took < 5.0 + 3.0, took  # the runner's own start and end around it
    assert kubernetes_objects(done.job_dir.name) == []


def test_a_dead_runner_s_pod_still_ends_at_its_backstop(
    tmp_path: Path, run_cli: RunCli, nothing_left: None
) -> None:
    """A runner killed with SIGKILL stops nothing: the task's Pod ends all the same, at the
    activeDeadlineSeconds it got once its container ran (past the timeout, the grace and a
    margin), and a resume reports the task timed out."""
    path = tmp_path / "tasks.toml"
    path.write_text(f'[[task]]\nid = "hangs"\ncommand = ["sleep", "300"]\ntimeout = 2\n'
                    f'image = "{TEST_IMAGE}"\n')
    proc = start_cli(tmp_path, "--spawner", "kubernetes", "--grace", "1", str(path))
    journal = tmp_path / "results" / "latest" / "journal.jsonl"
    wait_until(lambda: journal.exists() and "hangs" in started_handles(journal.parent), 120,
               "the task's start")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    job_dir = job_dir_of(tmp_path)
    pod = started_handles(job_dir)["hangs"]
    assert (pod_json(pod) or {}).get("spec", {}).get("activeDeadlineSeconds", 0) >= 2 + 1
    wait_until(lambda: ((pod_json(pod) or {}).get("status") or {}).get("reason")
               == "DeadlineExceeded", 60, "the Pod's own deadline")
    resumed = run_cli("resume", str(job_dir), timeout=120)
    assert resumed.code == 1, resumed.stderr
    record = read_results(job_dir)["hangs"]
    assert record["result"] == "timed_out", record
    assert record["reason"].startswith("timed out (stopped by Kubernetes at the Pod's "
                                       "activeDeadlineSeconds"), record


def test_over_its_memory_is_oom(start_job: StartJob, nothing_left: None) -> None:
    task = Task.make("hog", ["tail", "/dev/zero"], limits=Limits(memory=32 * 1024**2))
    run = run_job(start_job, "kubernetes", [task])
    rec = run.record("hog")
    assert (rec.result, rec.cause, rec.oom) == ("error", "oom", True), rec
    assert rec.reason == "killed: out of memory (OOM)"


def test_a_container_the_runtime_cannot_start_is_an_error(
    start_job: StartJob, nothing_left: None
) -> None:
    """A memory limit the runtime refuses (1 byte): the command never ran; an error with the
    runtime's words, as on Docker and Podman, not the kubelet's exit code 128."""
    run = run_job(start_job, "kubernetes", [Task.make("m", ["true"], limits=Limits(memory=1))])
    rec = run.record("m")
    assert (rec.result, rec.exit_code) == ("error", None), rec
    assert "its container could not start" in str(rec.reason)
    assert "memory" in str(rec.reason), rec.reason


def test_mounts_of_a_socket_and_a_device_are_what_they_are(
    start_job: StartJob, nothing_left: None, tmp_path: Path
) -> None:
    """A CI job's docker.sock, /dev/null: the hostPath type follows what the source is."""
    sock_path = tmp_path / "s.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(sock_path))
    try:
        task = Task.make("m", "test -S /s && test -c /n && echo both", limits=Limits(
            mounts=(Mount(str(sock_path), "/s"), Mount("/dev/null", "/n"))))
        run = run_job(start_job, "kubernetes", [task])
    finally:
        listener.close()
    assert run.record("m").result == "passed", run.record("m")
    assert run.output("m", "stdout") == "both\n"


def test_exit_3_is_exit_code_3(start_job: StartJob, nothing_left: None) -> None:
    run = run_job(start_job, "kubernetes", [Task.make("three", "echo before; exit 3")])
    rec = run.record("three")
    assert (rec.result, rec.exit_code, rec.signal, rec.reason) == (
        "failed", 3, None, "exit code 3")
    assert run.output("three", "stdout") == "before\n"


def test_a_secret_is_a_reference_in_the_pod_and_in_no_file(
    tmp_path: Path, nothing_left: None
) -> None:
    (tmp_path / "ws").mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "t"\nsecrets = ["API_TOKEN"]\nworkspace = "ws"\n'
                    'command = "echo token=$API_TOKEN; touch started; exec sleep 300"\n'
                    'timeout = 60\n')
    proc = start_cli(tmp_path, "--spawner", "kubernetes", "--image", TEST_IMAGE,
                     "--grace", "1", str(path), env={"API_TOKEN": SECRET})
    try:
        wait_until(lambda: (tmp_path / "ws" / "started").exists()
                   and (tmp_path / "results" / "latest").exists()
                   and started_handles(job_dir_of(tmp_path)), 60, "the task")
        pod = started_handles(job_dir_of(tmp_path))["t"]
        spec = kubectl("get", "pod", pod, "-o", "yaml")
        assert SECRET not in spec
        env = pod_json(pod)["spec"]["containers"][0]["env"]  # type: ignore[index]
        assert {"name": "API_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": pod, "key": "s0"}}} in env
        stdout = job_dir_of(tmp_path) / "tasks" / "t" / "stdout"
        wait_until(lambda: stdout.read_text() == "token=***\n", 30, "the masked line")
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert [p for p in tmp_path.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()
            ] == []
    assert kubernetes_objects(job_dir_of(tmp_path).name) == []


def test_an_image_that_cannot_be_pulled_ends_within_its_bound(
    start_job: StartJob, nothing_left: None
) -> None:
    missing = Task.make("missing", ["true"], image="spawnkit-does-not-exist:1")
    never = Task.make("never", ["true"], image="spawnkit-does-not-exist:2",
                      kubernetes=KubernetesSettings(image_pull_policy="Never"))
    began = time.monotonic()
    run = run_job(start_job, "kubernetes", [missing, never], spawner=_spawner(pull_wait=3.0))
    assert time.monotonic() - began < 3.0 + 10.0
    rec = run.record("missing")
    assert (rec.result, rec.cause) == ("error", "spawn_failure"), rec
    assert "image 'spawnkit-does-not-exist:1' cannot be pulled" in str(rec.reason)
    assert re.search(r"ErrImagePull|ImagePullBackOff", str(rec.reason)), rec.reason
    assert "ErrImageNeverPull" in str(run.record("never").reason)


def test_a_pod_no_node_can_take_ends_within_its_bound(
    start_job: StartJob, nothing_left: None
) -> None:
    task = Task.make("nowhere", ["true"], kubernetes=KubernetesSettings(
        node_selector=(("spawnkit.test/no-such-label", "x"),)))
    run = run_job(start_job, "kubernetes", [task], spawner=_spawner(pending_wait=3.0))
    rec = run.record("nowhere")
    assert (rec.result, rec.cause) == ("error", "spawn_failure"), rec
    assert "still Pending after 3 s" in str(rec.reason)
    assert "node(s) didn't match" in str(rec.reason), rec.reason


def test_a_pod_stopped_while_pending_is_not_run(tmp_path: Path, nothing_left: None) -> None:
    """Its command never began: not run, as a task the stop found unstarted (found by trying:
    it was `interrupted`, killed by signal 9)."""
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "pend"\ncommand = "true"\n'
                    'kubernetes = { node_selector = { "spawnkit.test/no-such-label" = "x" } }\n')
    proc = start_cli(tmp_path, "--spawner", "kubernetes", "--image", TEST_IMAGE, str(path))
    try:
        wait_until(lambda: (tmp_path / "results" / "latest").exists()
                   and any(o.startswith("pod/")
                           for o in kubernetes_objects(job_dir_of(tmp_path).name)),
                   60, "the Pod")
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, err
    rec = read_results(job_dir_of(tmp_path))["pend"]
    assert (rec["result"], rec["reason"], rec["signal"], rec["duration"]) == (
        "not_run", "not run: SIGTERM received", None, None), rec


def test_the_timeout_counts_from_the_start(start_job: StartJob, nothing_left: None) -> None:
    """A Pod takes about a second to start here: a 1 s timeout still gives the task its
    second, then its TERM."""
    cmd = "trap 'echo got TERM; exit 0' TERM; echo ready; sleep 100 & wait"
    run = run_job(start_job, "kubernetes", [Task.make("polite", cmd, timeout=1.0)], grace=5.0)
    rec = run.record("polite")
    assert rec.result == "timed_out" and rec.duration is not None and rec.duration < 3.0, rec
    assert run.output("polite", "stdout") == "ready\ngot TERM\n"


_ENDED_FIRST = ("it had ended by itself when its stop (timed out after 0.8 s) came: judged by "
                "its own exit")


def test_a_task_that_ends_within_a_short_timeout_passes(
    start_job: StartJob, nothing_left: None
) -> None:
    """A task that exits 0 by itself within its timeout passes, as on every backend. The
    kubelet reports an exit up to a second after it, so a deadline under a second may pass
    before spawnkit sees the end: the stop then finds the task ended, and its own exit
    stands. Its output is read whole, never the kubelet's error for a container it removed
    (what deleting the Pod to stop it did). Whether a Pod shows the race depends on where
    the kubelet's relist falls: six waves of two Pods make it all but certain (measured
    before the fix: most waves timed out)."""
    tasks = [Task.make(f"t{i}", "sleep 0.2; echo done", timeout=0.8) for i in range(12)]
    run = run_job(start_job, "kubernetes", tasks, max_running=2)
    for task in tasks:
        rec = run.record(task.id)
        assert (rec.result, rec.exit_code, rec.reason) == ("passed", 0, None), rec
        assert rec.notes in ([], [_ENDED_FIRST]), rec
        assert run.output(task.id, "stdout") == "done\n"
        assert run.output(task.id, "stderr") == ""
    errors = [p for p in run.job.job_dir.rglob("*")
              if p.is_file() and b"unable to retrieve" in p.read_bytes()]
    assert errors == []


def test_the_kubelets_error_in_place_of_a_log_is_a_note(tmp_path: Path) -> None:
    """Once the kubelet has removed a container of a Pod being deleted, the log API answers
    HTTP 200 with the kubelet's error as the body ("unable to retrieve container logs for
    containerd://..."): never written as the task's output. What was followed before stays;
    the task gets a note with the kubelet's words."""
    api = KubeApi(load_api())
    name = f"sk-test-refusal-{int(time.time() * 1000) % 10**8}"
    # The second container holds the Pod (its sleep, PID 1, ignores TERM) after `main`
    # ended, so the delete is a graceful one and the kubelet removes `main` meanwhile.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
        "hostNetwork": os.environ.get(HOST_NETWORK_VARIABLE) == "1",
        "containers": [{"name": n, "image": TEST_IMAGE, "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", c]}
                       for n, c in ((CONTAINER, "echo out"), ("hold", "exec sleep 60"))]}}
    made = api.create_pod(pod)
    try:
        uid = made["metadata"]["uid"]
        wait_until(lambda: (pod_state(api.pod(name) or {}).terminated is not None), 60,
                   "main's end")
        state = pod_state(api.pod(name) or {})
        followed = PodLog(api, name, uid, TaskOutput(tmp_path / "followed", ()), split=False)
        followed.known(state.container_ids)
        followed.start()  # the container has ended: its follower reads it all, then ends
        unread = PodLog(api, name, uid, TaskOutput(tmp_path / "unread", ()), split=False)
        unread.known(state.container_ids)
        wait_until(lambda: (tmp_path / "followed" / "stdout").read_text() == "out\n", 30,
                   "the followed log")
        api.delete_pod(name, 2)
        # As spawnkit's own read gets it: 200, and the kubelet's words for a body.
        item = api.pod(name) or {}
        said = "unable to retrieve container logs for " + next(
            cs["containerID"] for cs in item["status"]["containerStatuses"]
            if cs["name"] == CONTAINER)
        wait_until(lambda: b"".join(api.log(name, CONTAINER, follow=False)) == said.encode(),
                   30, "the kubelet's error")
        notes = followed.finish() + unread.finish()
    finally:
        kubectl("delete", "pod", name, "--ignore-not-found", "--grace-period=0", "--force",
                check=False)
        api.close()
    assert (tmp_path / "followed" / "stdout").read_text() == "out\n"
    assert (tmp_path / "unread" / "stdout").read_text() == ""
    assert [(tmp_path / d / "stderr").read_text() for d in ("followed", "unread")] == ["", ""]
    assert notes == [
        "stdout and stderr may be incomplete (what was read while the task ran is kept): the "
        f"Kubernetes log API gave an error in place of the log of container main: {said}",
        "stdout and stderr could not be read: the Kubernetes log API gave an error in place "
        f"of the log of container main: {said}"]


def test_the_command_and_variables_are_passed_verbatim(
    start_job: StartJob, nothing_left: None
) -> None:
    """Kubernetes expands `$(NAME)` and reads `$$` as `$` in a command and in variables."""
    task = Task.make("dollars", ["sh", "-c", "echo '$(HOME)'\"|$$|$V\""],
                     env={"V": "$(HOME)$$"})
    run = run_job(start_job, "kubernetes", [task])
    out = run.output("dollars", "stdout")
    assert re.fullmatch(r"\$\(HOME\)\|[0-9]+\|\$\(HOME\)\$\$\n", out), out


def test_output_is_byte_for_byte(start_job: StartJob, nothing_left: None) -> None:
    cmd = r"printf 'a\377b'; head -c 300000 /dev/zero | tr '\0' x; printf 'end'"
    run = run_job(start_job, "kubernetes", [Task.make("bytes", cmd)])
    out_dir = run.job.job_dir / "tasks" / "bytes"
    assert (out_dir / "stdout").read_bytes() == b"a\xffb" + b"x" * 300000 + b"end"


def test_a_pod_deleted_from_outside_was_killed(
    start_job: StartJob, nothing_left: None
) -> None:
    """`kubectl delete pod` is how a Kubernetes user kills a task: the TERM it sends is then
    known, not guessed from the exit code."""
    run = start_job("kubernetes", [Task.make("victim", ["sleep", "100"], timeout=60.0)])
    pod = run.wait_started("victim")
    kubectl("delete", "pod", pod, "--grace-period=1", "--wait=false")
    run.wait(timeout=30)
    rec = run.record("victim")
    assert (rec.result, rec.signal, rec.reason) == (
        "failed", 15, "killed by signal 15 (SIGTERM)"), rec


def test_a_missing_kubeconfig_is_one_line(run_cli: RunCli, taskfile: WriteTaskfile,
                                          tmp_path: Path) -> None:
    path = taskfile(f'[[task]]\nid = "t"\ncommand = "true"\nimage = "{TEST_IMAGE}"\n')
    done = run_cli("run", str(path), "--spawner", "kubernetes", "-q",
                   env={"KUBECONFIG": str(tmp_path / "nope")})
    assert done.code != 0
    assert f"no usable kubeconfig at {tmp_path / 'nope'}" in done.stderr, done.stderr


def test_a_namespace_that_does_not_exist_is_one_line(run_cli: RunCli,
                                                    taskfile: WriteTaskfile) -> None:
    path = taskfile(f'[[task]]\nid = "a"\ncommand = "true"\nimage = "{TEST_IMAGE}"\n'
                    f'[[task]]\nid = "b"\ncommand = "true"\nimage = "{TEST_IMAGE}"\n')
    done = run_cli("run", str(path), "--spawner", "kubernetes", "--namespace", "no-such-ns")
    assert done.code == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "namespace 'no-such-ns' does not exist" in lines[0], lines
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not done.results_root.exists()  # no job folder, nor the results folder


def test_gc_of_a_namespace_torn_down_finds_nothing(run_cli: RunCli) -> None:
    # A CI's clean-up step often runs after its namespace is gone: nothing is left there.
    done = run_cli("gc", "--dry-run", "--spawner", "kubernetes", "--namespace", "no-such-ns")
    assert done.code == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_the_engine_url_is_the_server_asked(run_cli: RunCli, taskfile: WriteTaskfile) -> None:
    # Credentials from the kubeconfig, the server from --engine-url: one that nothing
    # answers on is refused, not replaced by the kubeconfig's own server.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = taskfile(f'[[task]]\nid = "a"\ncommand = "true"\nimage = "{TEST_IMAGE}"\n')
    done = run_cli("run", str(path), "--spawner", "kubernetes", "-q",
                   "--engine-url", f"https://127.0.0.1:{port}")
    assert done.code == 2, done.stderr
    assert f"cannot reach the Kubernetes API server at https://127.0.0.1:{port}" in done.stderr


def test_keep_failed_keeps_the_failed_pod_until_gc_kept(
    run_cli: RunCli, taskfile: WriteTaskfile, nothing_left: None
) -> None:
    """--keep-failed: only the Pod of the task that did not pass stays (labelled, its Secret
    gone, its note saying how to look at it); gc leaves it, gc --kept removes it."""
    path = taskfile(f'[defaults]\nimage = "{TEST_IMAGE}"\n'
                    '[[task]]\nid = "good"\ncommand = "echo fine"\n'
                    '[[task]]\nid = "bad"\ncommand = "echo bad; echo oops >&2; exit 3"\n'
                    'secrets = ["API_TOKEN"]\n')
    run = run_cli("run", str(path), "--spawner", "kubernetes", "--keep-failed", "-q",
                  env={"API_TOKEN": SECRET})
    assert run.code == 1, run.stderr
    job_id = run.results["job_id"]
    bad, good = run.task("bad"), run.task("good")
    assert (bad["result"], good["result"]) == ("failed", "passed")
    pod = bad["handle"]
    assert kubernetes_objects(job_id) == [f"pod/{pod}"]  # no Secret, no passed task's Pod
    kept = pod_json(pod)
    assert kept is not None and kept["metadata"]["labels"]["spawnkit.keep"] == "failed"
    assert bad["notes"] == [f"Pod {pod} kept: kubectl --namespace default describe pod {pod}; "
                            f"its output: kubectl --namespace default logs {pod} -c main"]
    assert good["notes"] == []
    # The note's command works as given (a Pod with more than one container needs `-c`).
    said = shlex.split(bad["notes"][0].split("its output: ")[1])
    assert said[0] == "kubectl" and kubectl(*said[1:]) == "bad\n"
    assert (run.job_dir / bad["stderr"]).read_text() == "oops\n"

    # Its runner is gone: plain gc leaves the kept Pod, --kept removes it.
    gc = run_cli("gc", "--spawner", "kubernetes")
    assert gc.code == 0 and pod not in gc.stdout, gc.stdout
    assert kubernetes_objects(job_id) == [f"pod/{pod}"]
    gc = run_cli("gc", "--spawner", "kubernetes", "--kept")
    assert gc.code == 0, gc.stderr
    assert f"kubernetes: removed Pod {pod} (job {job_id}, task bad, kept)" \
        in gc.stdout.splitlines(), gc.stdout
    assert kubernetes_objects(job_id) == []


def test_an_image_without_sh_runs_with_its_stderr_in_stdout(
    start_job: StartJob, nothing_left: None
) -> None:
    """The wrapper that keeps stderr apart needs `sh`: an image without one (the sandbox's
    pause image, imported by .ci/kubernetes.sh) gets its Pod made again without it."""
    task = Task.make("nosh", ["/pause", "-v"], image="docker.io/spawnkit/pause:3.4")
    run = run_job(start_job, "kubernetes", [task])
    rec = run.record("nosh")
    assert (rec.result, rec.exit_code) == ("passed", 0), rec
    assert rec.applied is not None and rec.applied["stderr_apart"] is False
    assert run.output("nosh", "stdout").startswith("pause.c ")


def test_a_pod_made_again_without_sh_is_watched_as_itself(
    start_job: StartJob, nothing_left: None, caplog: pytest.LogCaptureFixture
) -> None:
    """The Pod made again under the same name is not its predecessor, which a listing taken
    before it may still show (its `exec: "sh"` failure): found by trying, some runs ended
    such a task as error, or lost its output at its timeout (its log never followed). Six
    at once make the race all but certain (measured before the fix: most runs lost one).
    Their stop (no `sh` to signal from inside) is said in the runtime's words, not the
    client's misreading of them ("invalid literal for int()")."""
    tasks = [Task.make(f"nosh{i}", ["/pause"], image="docker.io/spawnkit/pause:3.4",
                       timeout=2.0) for i in range(6)]
    with caplog.at_level(logging.INFO, logger="spawnkit"):
        run = run_job(start_job, "kubernetes", tasks, grace=2.0)
    stops = [r.getMessage() for r in caplog.records if "from inside" in r.getMessage()]
    assert len(stops) == len(tasks), stops
    assert all('"sh"' in m and "invalid literal" not in m for m in stops), stops
    for task in tasks:
        rec = run.record(task.id)
        assert (rec.result, rec.reason) == ("timed_out", "timed out after 2 s"), rec
        # Followed while it ran: its last words, after the TERM, are in.
        out = run.output(task.id, "stdout")
        assert "Shutting down, got signal: Terminated" in out, (task.id, out, rec.notes)
        assert not [n for n in rec.notes if "could not be read" in n], rec.notes
