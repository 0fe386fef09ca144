"""Benchmarks of the container backends, against floors measured in the same run.

    python bench/containers.py [--engine docker|podman|all] [--tasks 50] [--max-running 8]
                               [--rounds 3]
        50 `/bin/true` tasks on the busybox image through `spawnkit run --max-running 8`, and
        the floor: the SDK's own create, start, wait and remove of the same containers in 8
        threads. Each round measures the floor, then spawnkit; prints the medians of the
        rounds, their ratio (target: 1.0x or better) and each round's ratio. On two cores the
        engines' own speed varies from one run to the next by 10-20%: one round says little.

    python bench/containers.py features [--rounds 3]
        Docker only: the bare floor against the same SDK calls doing what spawnkit must do for
        each container (an init, the `local` log driver, its output read, an inspect), in
        alternate rounds: what those alone cost on this machine.

    python bench/containers.py cpu [--engine ...] [--seconds 10]
        spawnkit's own CPU while 8 long tasks run: the runner's utime+stime over a window in
        the middle of the run, as a share of one core (target: under 5%).

Needs the engines and the image (`source .ci/engines.sh`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

IMAGE = os.environ.get("SPAWNKIT_TEST_IMAGE", "spawnkit-busybox:latest")
ENGINES = ("docker", "podman")


def _client(engine: str) -> Any:
    if engine == "docker":
        import docker

        return docker.from_env(max_pool_size=32)
    import podman

    from spawnkit.spawners.podman import PodmanEngine

    return podman.PodmanClient(base_url=PodmanEngine.default_url(), max_pool_size=32)


def floor_rate(engine: str, n: int, parallel: int, *, as_spawnkit: bool = False) -> float:
    """Tasks/s of the SDK's create, start, wait, remove in `parallel` threads. `as_spawnkit`
    (Docker): with what spawnkit asks of each container besides (an init, the `local` log
    driver, its output read, an inspect once it ended)."""
    client = _client(engine)
    settings: dict[str, Any] = {}
    if as_spawnkit:
        import docker

        settings = {"init": True, "log_config": docker.types.LogConfig(type="local")}

    def one(_: int) -> None:
        container = client.containers.create(IMAGE, ["/bin/true"], labels={"spawnkit.bench": "1"},
                                             **settings)
        container.start()
        if as_spawnkit:
            for _chunk in container.logs(stream=True, follow=True):
                pass
        container.wait()
        if as_spawnkit:
            container.reload()
        container.remove(force=True)

    try:
        began = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(one, range(n)))
        return n / (time.perf_counter() - began)
    finally:
        client.close()


def _spawnkit(engine: str, taskfile: Path, results: Path, parallel: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "spawnkit.cli", "run", "-q", "--no-gc", "--spawner", engine,
         "--image", IMAGE, "--max-running", str(parallel), "--results", str(results),
         str(taskfile)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def spawnkit_rate(engine: str, n: int, parallel: int, workdir: Path) -> tuple[float, float]:
    """(tasks/s of the job itself, tasks/s of the whole command, start-up included)."""
    taskfile = workdir / "bench.toml"
    taskfile.write_text("".join(f'[[task]]\nid = "t{i}"\ncommand = ["/bin/true"]\n'
                                for i in range(n)))
    results = workdir / f"results-{engine}"
    began = time.perf_counter()
    proc = _spawnkit(engine, taskfile, results, parallel)
    _, err = proc.communicate()
    whole = time.perf_counter() - began
    data = json.loads((results / "latest" / "results.json").read_text())
    if data["counts"]["passed"] != n:
        raise SystemExit(f"{engine}: not every task passed: {data['counts']}\n{err}")
    return n / data["duration"], n / whole


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_share(engine: str, seconds: float, workdir: Path) -> float:
    """spawnkit's CPU, as a share of one core, while 8 tasks sleep."""
    taskfile = workdir / "cpu.toml"
    length = seconds + 6
    taskfile.write_text("".join(f'[[task]]\nid = "s{i}"\ncommand = ["sleep", "{length:g}"]\n'
                                for i in range(8)))
    results = workdir / f"cpu-{engine}"
    proc = _spawnkit(engine, taskfile, results, 8)
    try:
        # Measure once all eight run, well before the first ends.
        journal = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = list(results.glob("*/journal.jsonl"))
            if found:
                journal = found[0]
                if journal.read_text().count('"status": "started"') >= 8:
                    break
            time.sleep(0.2)
        else:
            raise SystemExit(f"{engine}: the 8 tasks did not start")
        time.sleep(1.0)
        hz = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), _cpu_ticks(proc.pid)
        time.sleep(seconds)
        t1, c1 = time.monotonic(), _cpu_ticks(proc.pid)
        return (c1 - c0) / hz / (t1 - t0)
    finally:
        proc.communicate()


def _warm_up(engine: str) -> None:
    floor_rate(engine, 2, 2)


def features(n: int, parallel: int, rounds: int) -> None:
    bare, full = [], []
    for _ in range(rounds):
        bare.append(floor_rate("docker", n, parallel))
        full.append(floor_rate("docker", n, parallel, as_spawnkit=True))
    b, f = statistics.median(bare), statistics.median(full)
    print(f"docker, {n} x /bin/true, {parallel} threads, median of {rounds} rounds")
    print(f"  floor:                              {b:6.2f} tasks/s")
    print(f"  floor doing what spawnkit must do:  {f:6.2f} tasks/s ({f / b:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=("rate", "cpu", "features"), default="rate")
    parser.add_argument("--engine", choices=(*ENGINES, "all"), default="all")
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--max-running", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternate rounds (rate, features).")
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU window (cpu).")
    args = parser.parse_args()
    engines = ENGINES if args.engine == "all" else (args.engine,)
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    if args.what == "features":
        if "docker" not in engines:
            parser.error("features measures Docker only")
        _warm_up("docker")
        features(args.tasks, args.max_running, args.rounds)
        return
    with tempfile.TemporaryDirectory(prefix="spawnkit-bench-") as tmp:
        for engine in engines:
            _warm_up(engine)
            if args.what == "cpu":
                share = cpu_share(engine, args.seconds, Path(tmp))
                print(f"{engine}: spawnkit CPU while 8 tasks run: {share * 100:.2f}% of a core "
                      f"(over {args.seconds:g} s)")
                continue
            floors, jobs, wholes = [], [], []
            for _ in range(args.rounds):
                # The floor first, then spawnkit: neither gets a cold engine.
                floors.append(floor_rate(engine, args.tasks, args.max_running))
                job, whole = spawnkit_rate(engine, args.tasks, args.max_running, Path(tmp))
                jobs.append(job)
                wholes.append(whole)
            floor, job, whole = (statistics.median(v) for v in (floors, jobs, wholes))
            rounds = " ".join(f"{j / f:.2f}x" for j, f in zip(jobs, floors, strict=True))
            print(f"{engine}, {args.tasks} x /bin/true on {IMAGE}, max-running "
                  f"{args.max_running}, median of {args.rounds} rounds")
            print(f"  spawnkit, the job alone:           {job:6.2f} tasks/s ({job / floor:.2f}x;"
                  f" rounds {rounds})")
            print(f"  spawnkit run, start-up included:   {whole:6.2f} tasks/s "
                  f"({whole / floor:.2f}x)")
            print(f"  floor, SDK create/start/wait/remove in {args.max_running} threads: "
                  f"{floor:6.2f} tasks/s")


if __name__ == "__main__":
    main()
