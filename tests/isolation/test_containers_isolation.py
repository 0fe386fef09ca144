"""Container tasks are isolated by default, on docker and on podman: what a task from a pull
request tries (mount, write to a read-only root, reach the network, fork without end, use
more memory than allowed) is refused by the engine; secrets reach only the container's
environment.

The refusals run as one job per engine (a container costs about 0.3 s of engine time, and
CI shares two cores); each test then reads its own task from that job's results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spawnkit.spawners.container.isolation import DEFAULT_CAP_DROP, DEFAULT_PIDS
from tests.conftest import CliRun, child_env
from tests.engines.conftest import TEST_IMAGE, containers_of, engine_cli, remove_containers

MiB = 1024 * 1024

# What the busybox image's tasks print; each says "refused" when the engine stopped it.
MOUNT = "mkdir -p /tmp/m; if mount -t tmpfs none /tmp/m; then echo mounted; else echo refused; fi"
# The subshell forks sleepers until the engine refuses one (the shell then stops it); the
# count is written with builtins only, which need no fork once the limit is reached.
FORK = (
    "( i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); echo $i > /tmp/n; done ); "
    "read n < /tmp/n; echo forks=$n"
)
# The shell holds 100 MB of output in a variable: far past a 16 MiB limit.
HOG = "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"

REFUSALS = f"""
[defaults]
image = "{TEST_IMAGE}"
timeout = 60

[[task]]
id = "mount"
command = '''{MOUNT}'''

[[task]]
id = "priv"
privileged = true
command = '''{MOUNT}'''

[[task]]
id = "read-only-root"
read_only = true
command = "if touch /probe; then echo written; else echo refused; fi; touch /tmp/p && echo tmp-ok"

[[task]]
id = "no-network"   # network "none" from --network: the task sets none
command = "ls /sys/class/net; nc -w 1 192.0.2.1 80 </dev/null || echo refused"

[[task]]
id = "bridge"       # its own network wins over --network
network = "bridge"
command = "ls /sys/class/net"

[[task]]
id = "fork-bomb"
pids = 16
command = '''{FORK}'''

[[task]]
id = "capabilities"
command = '''grep -E 'CapBnd|NoNewPrivs' /proc/self/status
if mknod /tmp/null c 1 3; then echo mknod-allowed; else echo mknod-refused; fi
touch /tmp/f && chown 65534:65534 /tmp/f && echo chown-ok'''

[[task]]
id = "oom"
memory = "16m"
command = '''{HOG}'''

[[task]]
id = "user"
user = "65534:65534"
workspace = "ws"
workspace_read_only = true
command = "id -u; id -g; cat input.txt; if touch new; then echo written; else echo refused; fi"
"""

# Bits of CapBnd for what stays of the engines' default set once DEFAULT_CAP_DROP is gone:
# CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6, SETUID 7, NET_BIND_SERVICE 10.
KEPT_CAPS = sum(1 << bit for bit in (0, 1, 3, 4, 5, 6, 7, 10))

SECRET_NAME = "SPAWNKIT_ISOLATION_TOKEN"
SECRET_VALUE = "v4lue-0f-the-t0ken-5e1d"


def spawnkit(root: Path, *args: str, env: dict[str, str] | None = None) -> CliRun:
    """`spawnkit ARGS` in a child process, results and state under `root`."""
    proc = subprocess.run(
        [sys.executable, "-m", "spawnkit.cli", *args],
        capture_output=True, text=True, timeout=180, cwd=root,
        env=child_env(root, env),
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr, root / "results")


def output(run: CliRun, task_id: str, stream: str = "stdout") -> str:
    return (run.job_dir / run.task(task_id)[stream]).read_text()


def host_lacks_capabilities() -> bool:
    """The runner's own bounding set lacks a capability the kernel knows.

    Docker gives a privileged container every capability the kernel knows, and cannot start
    it when the host lacks one (this project's VMs lack SYS_RESOURCE); Podman grants what the
    host has.
    """
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    status = Path("/proc/self/status").read_text()
    bounding = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("CapBnd")), 16)
    return bounding != (1 << (last + 1)) - 1


# -- one job of refusals per engine ---------------------------------------------------------


@pytest.fixture(scope="module")
def _refusal_runs() -> dict[str, CliRun]:
    return {}


@pytest.fixture
def refusals(
    engine_name: str, _refusal_runs: dict[str, CliRun], tmp_path_factory: pytest.TempPathFactory
) -> CliRun:
    """The job of REFUSALS on the engine, run once per engine with `--network none`."""
    if engine_name not in _refusal_runs:
        root = tmp_path_factory.mktemp(f"refusals-{engine_name}")
        workspace = root / "ws"
        workspace.mkdir()
        (workspace / "input.txt").write_text("from the host\n")
        (root / "tasks.toml").write_text(REFUSALS)
        _refusal_runs[engine_name] = spawnkit(
            root, "run", "--spawner", engine_name, "--network", "none", "--max-running", "4",
            "tasks.toml",
        )
    return _refusal_runs[engine_name]


def test_mount_is_refused(refusals: CliRun) -> None:
    assert refusals.task("mount")["result"] == "passed", output(refusals, "mount", "stderr")
    assert output(refusals, "mount") == "refused\n"


def test_privileged_only_when_written_and_warned_once(
    engine_name: str, refusals: CliRun
) -> None:
    warnings = [ln for ln in refusals.stderr.splitlines() if "WARNING" in ln]
    assert warnings == [
        "spawnkit: WARNING: privileged = true: priv: every capability and the host's devices, "
        "no isolation from the host"
    ]
    priv = refusals.task("priv")
    if engine_name == "docker" and host_lacks_capabilities():
        # Written, so asked of the engine, which cannot grant it on this host.
        assert (priv["result"], priv["status"]) == ("error", "fail_start"), priv
        assert "unable to apply caps" in priv["reason"], priv
    else:
        assert priv["result"] == "passed", output(refusals, "priv", "stderr")
        assert output(refusals, "priv") == "mounted\n"
        assert priv["applied"]["privileged"] is True
        assert priv["applied"]["cap_drop"] == []


def test_writing_to_a_read_only_root_is_refused(refusals: CliRun) -> None:
    task = refusals.task("read-only-root")
    assert task["result"] == "passed", output(refusals, "read-only-root", "stderr")
    assert output(refusals, "read-only-root") == "refused\ntmp-ok\n"
    assert "Read-only file system" in output(refusals, "read-only-root", "stderr")
    assert task["applied"]["read_only"] is True


def test_no_network_has_only_loopback(refusals: CliRun) -> None:
    task = refusals.task("no-network")
    assert task["result"] == "passed", output(refusals, "no-network", "stderr")
    assert output(refusals, "no-network") == "lo\nrefused\n"
    assert "Network is unreachable" in output(refusals, "no-network", "stderr")
    # From --network: recorded as the task's own setting, and applied.
    assert task["limits"]["network"] == task["applied"]["network"] == "none"


def test_a_tasks_own_network_wins_over_the_command_line(refusals: CliRun) -> None:
    task = refusals.task("bridge")
    assert task["result"] == "passed", output(refusals, "bridge", "stderr")
    assert output(refusals, "bridge").split() == ["eth0", "lo"]
    assert task["applied"]["network"] == "bridge"


def test_forking_past_the_pids_limit_is_refused(refusals: CliRun) -> None:
    task = refusals.task("fork-bomb")
    assert task["result"] == "passed", output(refusals, "fork-bomb", "stderr")
    forks = int(output(refusals, "fork-bomb").removeprefix("forks="))
    # The two shells count too: the engine stopped the sleepers short of 16 processes.
    assert 0 < forks < 16, forks
    assert "can't fork" in output(refusals, "fork-bomb", "stderr")
    assert task["limits"]["pids"] == task["applied"]["pids"] == 16


def test_capabilities_dropped_and_no_new_privileges_by_default(refusals: CliRun) -> None:
    task = refusals.task("capabilities")
    assert task["result"] == "passed", output(refusals, "capabilities", "stderr")
    assert output(refusals, "capabilities").splitlines() == [
        f"CapBnd:\t{KEPT_CAPS:016x}",
        "NoNewPrivs:\t1",
        "mknod-refused",
        "chown-ok",
    ]
    assert task["limits"] == {"network": "none"}
    assert task["applied"] == {
        "pids": DEFAULT_PIDS,
        "network": "none",
        "read_only": False,
        "privileged": False,
        "no_new_privileges": True,
        "cap_add": [],
        "cap_drop": list(DEFAULT_CAP_DROP),
        "entrypoint": [],  # the image's replaced: the command runs as given
    }


def test_exceeding_memory_is_reported_as_oom(refusals: CliRun) -> None:
    task = refusals.task("oom")
    assert task["oom"] is True, task
    assert (task["result"], task["reason"]) == ("error", "killed: out of memory (OOM)")
    assert "survived" not in output(refusals, "oom")
    assert task["limits"]["memory"] == task["applied"]["memory"] == 16 * MiB


def test_user_and_read_only_workspace(refusals: CliRun) -> None:
    task = refusals.task("user")
    assert task["result"] == "passed", output(refusals, "user", "stderr")
    assert output(refusals, "user") == "65534\n65534\nfrom the host\nrefused\n"
    assert task["applied"]["user"] == "65534:65534"


def test_the_job_leaves_no_container(engine_name: str, refusals: CliRun) -> None:
    assert containers_of(engine_name, refusals.results["job_id"]) == []


# -- secrets --------------------------------------------------------------------------------


def _without(data: Any, drop: Callable[[list[str]], bool], path: list[str] | None = None) -> Any:
    """`data` less the keys whose path `drop` accepts."""
    path = path or []
    if isinstance(data, dict):
        return {k: _without(v, drop, [*path, k]) for k, v in data.items() if not drop([*path, k])}
    if isinstance(data, list):
        return [_without(v, drop, path) for v in data]
    return data


def test_secret_only_in_the_containers_environment(
    engine_name: str, tmp_path: Path, no_leftovers: None
) -> None:
    (tmp_path / "tasks.toml").write_text(
        f'[defaults]\nimage = "{TEST_IMAGE}"\nsecrets = ["{SECRET_NAME}"]\n'
        f'[[task]]\nid = "uses"\n'
        f'command = "echo got=${SECRET_NAME}; echo ${SECRET_NAME} >&2; '
        f'echo length=${{#{SECRET_NAME}}}"\n'
    )
    extra = tmp_path / "copies"
    extra.mkdir()
    run = spawnkit(
        tmp_path, "run", "-v", "--spawner", engine_name, "--keep-containers",
        "--json", str(extra / "results.json"), "--junit", str(extra / "junit.xml"), "tasks.toml",
        env={SECRET_NAME: SECRET_VALUE},
    )
    handle = run.task("uses")["handle"] if (run.job_dir / "results.json").exists() else None
    try:
        assert run.code == 0, run.stderr
        assert output(run, "uses") == f"got=***\nlength={len(SECRET_VALUE)}\n"
        assert output(run, "uses", "stderr") == "***\n"
        written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "tasks.toml"]
        assert run.job_dir / "journal.jsonl" in written
        assert [p for p in written if SECRET_VALUE.encode() in p.read_bytes()] == []
        assert SECRET_VALUE not in run.stdout + run.stderr

        assert handle is not None
        inspected = json.loads(engine_cli(engine_name, "inspect", handle))[0]
        assert f"{SECRET_NAME}={SECRET_VALUE}" in inspected["Config"]["Env"]
        assert SECRET_VALUE not in json.dumps(inspected["Config"]["Labels"])
        elsewhere = _without(inspected, lambda p: p == ["Config", "Env"])
        assert SECRET_VALUE not in json.dumps(elsewhere)

        # The defaults, as the engine holds them.
        host = inspected["HostConfig"]
        assert host["Privileged"] is False
        assert "no-new-privileges" in host["SecurityOpt"]
        dropped = {c.upper().removeprefix("CAP_") for c in host["CapDrop"] or ()}
        assert dropped == set(DEFAULT_CAP_DROP)
        assert host["PidsLimit"] == DEFAULT_PIDS
    finally:
        if handle is not None:
            remove_containers(engine_name, [handle])
