"""Engine daemons of a test's own, to kill and restart: never the shared ones.

`PrivateDocker` is a second dockerd (its own socket, data root, exec root, pid file, and the
containerd it starts); `PrivatePodman` a second `podman system service` on its own socket,
with its own storage, run root and tmp dir, so nothing it holds is seen (or reaped) through
the shared service. Each gets the test image from the shared engine of its kind.

What "down" means differs, and the tests show both: a dockerd killed with SIGKILL takes its
containerd with it, its containers run on under their shims until the daemon restarts (and
then kills them, having no live-restore); a Podman service killed leaves its containers
running under conmon, and a restarted service finds them still running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers import pid_alive

__all__ = ["PrivateDaemon", "PrivateDocker", "PrivatePodman", "StartFailed", "private_daemon"]

READY_WITHIN = 30.0
STOP_WITHIN = 20.0
IMAGE = os.environ.get("SPAWNKIT_TEST_IMAGE", "spawnkit-busybox:latest")


class StartFailed(Exception):
    """The daemon did not come up (its log's last lines say why)."""


def _run(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 60,
         check: bool = True, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, stdin=stdin)
    if check and proc.returncode != 0:
        raise StartFailed(f"{' '.join(args)}: {proc.stderr.strip()}")
    return proc


def _wait_for(condition: object, within: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            raise StartFailed(f"{what} not within {within:g} s")
        time.sleep(0.05)


class PrivateDaemon:
    """One engine daemon of a test's own, in a short folder under /tmp (socket paths are
    limited to 108 bytes; pytest's tmp_path is too long)."""

    kind: str  # "docker" or "podman"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"skf-{self.kind[0]}-", dir="/tmp"))
        self.socket = self.dir / "api.sock"
        self.url = f"unix://{self.socket}"
        self.log = self.dir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    # -- to be told by each kind ----------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def daemon_env(self) -> dict[str, str]:
        return dict(os.environ)

    def client_env(self) -> dict[str, str]:
        """What `spawnkit` (and the engine's command line) need to talk to this daemon."""
        raise NotImplementedError

    def load_image(self) -> None:
        raise NotImplementedError

    def remove_all_containers(self) -> None:
        raise NotImplementedError

    # -- life ------------------------------------------------------------------------------

    def answers(self) -> bool:
        proc = subprocess.run(
            ["curl", "-sf", "--max-time", "2", "--unix-socket", str(self.socket), "http://d/_ping"],
            capture_output=True, timeout=10, check=False,
        )
        return proc.returncode == 0

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                env=self.daemon_env(), start_new_session=True,
            )
        try:
            _wait_for(lambda: self.answers() or self._exited(), READY_WITHIN, f"{self.kind} ready")
        except StartFailed:
            raise StartFailed(f"{self.kind} daemon not ready: {self._log_tail()}") from None
        if not self.answers():
            raise StartFailed(f"{self.kind} daemon exited: {self._log_tail()}")

    def _exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-5:])
        return "(no log)"

    def kill(self) -> None:
        """SIGKILL the daemon (only it: what it started lives on, as it would)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(STOP_WITHIN)

    def restart(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP the daemon: it accepts connections (the kernel does) and answers nothing."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen and self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_WITHIN)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_WITHIN)

    def cleanup(self) -> None:
        """Remove everything: containers, the daemon, what it started, its mounts, its folder."""
        self.thaw()
        with contextlib.suppress(Exception):
            if not self.answers():
                self.restart()
            self.remove_all_containers()
        self.stop()
        # A shim or conmon of ours that outlived it all (its command line names our folder).
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mount in reversed(self.mounts()):
            subprocess.run(["umount", "-l", mount], capture_output=True, timeout=30, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def processes(self) -> list[int]:
        """Live processes whose command line names this daemon's folder."""
        mine = str(self.dir).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if mine in (entry / "cmdline").read_bytes() and pid_alive(int(entry.name)):
                    found.append(int(entry.name))
        return found

    def mounts(self) -> list[str]:
        prefix = f"{self.dir}/"
        points = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point == str(self.dir) or point.startswith(prefix):
                points.append(point)
        return points

    def cli(self, *args: str, check: bool = True) -> str:
        """The engine's own command line, against this daemon."""
        env = {**os.environ, **self.client_env()}
        return _run([self.kind, *args], env=env, check=check).stdout

    def containers(self, label: str) -> list[str]:
        return self.cli("ps", "-a", "-q", "--no-trunc", "--filter", f"label={label}").split()


class PrivateDocker(PrivateDaemon):
    kind = "docker"

    def command(self) -> list[str]:
        d = self.dir
        return [
            # A network namespace of its own: even with --bridge=none, a dockerd starting on
            # the host's network deletes the host's docker0, which the shared daemon's
            # containers need. (unshare execs dockerd: the PID stays the daemon's.)
            "unshare", "--net",
            "dockerd", "-H", self.url, "--data-root", str(d / "data"), "--exec-root",
            str(d / "x"), "--pidfile", str(d / "dockerd.pid"),
            "--bridge=none", "--iptables=false", "--ip-masq=false",
        ]

    def start(self) -> None:
        # A dockerd killed hard leaves its pid file, and a new one refuses to start beside it.
        (self.dir / "dockerd.pid").unlink(missing_ok=True)
        super().start()

    def kill(self) -> None:
        # Its containerd dies with it (a parent-death signal), a moment later: a dockerd
        # started before then would attach to the dying one and fail.
        pid_file = self.dir / "x" / "containerd" / "containerd.pid"
        containerd = int(pid_file.read_text()) if pid_file.exists() else None
        super().kill()
        if containerd is not None:
            _wait_for(lambda: not pid_alive(containerd), STOP_WITHIN, "containerd's end")
            # Dead but maybe not yet reaped (this machine's PID 1 reaps late): dockerd would
            # take the zombie for a live containerd. Its pid file goes with it.
            pid_file.unlink(missing_ok=True)

    def client_env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.url}

    def load_image(self) -> None:
        shared = {**os.environ}
        shared.pop("DOCKER_HOST", None)  # the shared daemon, on its usual socket
        saved = self.dir / "image.tar"
        _run(["docker", "save", "-o", str(saved), IMAGE], env=shared)
        self.cli("load", "-i", str(saved))
        saved.unlink()

    def remove_all_containers(self) -> None:
        ids = self.cli("ps", "-a", "-q").split()
        if ids:
            self.cli("rm", "-f", *ids, check=False)


class PrivatePodman(PrivateDaemon):
    kind = "podman"

    def _local(self) -> list[str]:
        """podman, local (not a client of a service), on this daemon's storage."""
        d = self.dir
        return ["podman", "--root", str(d / "root"), "--runroot", str(d / "run"),
                "--tmpdir", str(d / "tmp")]

    def daemon_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("CONTAINER_HOST", None)  # else podman is a client of the very service it starts
        return env

    def command(self) -> list[str]:
        return [*self._local(), "system", "service", "--time=0", self.url]

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        super().start()

    def client_env(self) -> dict[str, str]:
        return {"CONTAINER_HOST": self.url}

    def local(self, *args: str, check: bool = True) -> str:
        """The same storage without the service: works while the service is down."""
        return _run([*self._local(), *args], env=self.daemon_env(), check=check).stdout

    def load_image(self) -> None:
        saved = self.dir / "image.tar"
        _run(["podman", "save", "-o", str(saved), IMAGE], env=self.daemon_env())
        self.local("load", "-i", str(saved))
        saved.unlink()

    def remove_all_containers(self) -> None:
        self.local("rm", "--all", "--force", "--time", "0", check=False)


def private_daemon(kind: str) -> PrivateDaemon:
    """A started daemon of `kind` with the test image; StartFailed (and nothing left) if not."""
    daemon: PrivateDaemon = PrivateDocker() if kind == "docker" else PrivatePodman()
    try:
        daemon.start()
        daemon.load_image()
    except BaseException:
        daemon.cleanup()
        raise
    return daemon
