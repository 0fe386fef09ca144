"""Benchmarks of the slurm backend, against floors measured in the same run.

    python bench/slurm.py [--tasks 200] [--max-running 8] [--rounds 2]
        200 `/bin/true` tasks through `spawnkit run --spawner slurm --max-running 8`, and the
        floor: raw `sbatch --wrap /bin/true` with at most 8 jobs in flight, a new one
        submitted as soon as one `squeue` per 0.1 s shows one ended (notes/slurm_floor.py's
        loop). Rounds alternate floor and spawnkit; prints each rate and the ratio of the
        medians (goal: 0.9x or better).

    python bench/slurm.py poll [--jobs 1000]
        The cost of one poll with that many jobs in the controller (held, so none runs):
        `squeue -t all -j` for 8, 100 and all of them, and `scontrol -o show job`.

Needs the Slurm of `.ci/slurm.sh` (`source .ci/slurm.sh`).
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
from pathlib import Path

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
            "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


def _env() -> dict[str, str]:
    """A small environment exported whole (--export=ALL): no login shell on the node."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if "SLURM_CONF" in os.environ:
        env["SLURM_CONF"] = os.environ["SLURM_CONF"]
    return env


def floor_rate(n: int, slots: int, interval: float = 0.1) -> float:
    """Jobs/s of raw sbatch + one squeue per interval for the jobs in flight."""
    owner = f"spawnkit-bench-floor:{os.getpid()}"

    def submit(i: int) -> str:
        out = subprocess.run(
            ["sbatch", "--parsable", "--export=ALL", "--no-requeue", "--output=/dev/null",
             f"--job-name=floor-{i}", f"--comment={owner};task={i}", "--wrap", "/bin/true"],
            env=_env(), capture_output=True, text=True, check=True).stdout.strip()
        return out.split(";")[0]

    def poll(ids: list[str]) -> dict[str, str]:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T"],
                             capture_output=True, text=True, check=False).stdout
        return dict(line.split("|") for line in out.split())

    began = time.perf_counter()
    inflight: set[str] = set()
    submitted = 0
    while submitted < n or inflight:
        while submitted < n and len(inflight) < slots:
            inflight.add(submit(submitted))
            submitted += 1
        time.sleep(interval)
        for job_id, state in poll(sorted(inflight)).items():
            if state in TERMINAL:
                inflight.discard(job_id)
    return n / (time.perf_counter() - began)


def spawnkit_rate(n: int, slots: int, workdir: Path) -> tuple[float, float]:
    """(tasks/s of the whole command, tasks/s of the job itself, start-up excluded)."""
    taskfile = workdir / "bench.toml"
    taskfile.write_text("".join(f'[[task]]\nid = "t{i}"\ncommand = ["/bin/true"]\n'
                                for i in range(n)))
    results = workdir / "results"
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "spawnkit.cli", "run", "-q", "--spawner", "slurm",
         "--max-running", str(slots), "--results", str(results), str(taskfile)],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    elapsed = time.perf_counter() - began
    data = json.loads((results / "latest" / "results.json").read_text())
    assert data["counts"]["passed"] == n, data["counts"]
    return n / elapsed, n / data["duration"]


def throughput(args: argparse.Namespace) -> None:
    floors, wholes, jobs = [], [], []
    for _ in range(args.rounds):
        floors.append(floor_rate(args.tasks, args.max_running))
        with tempfile.TemporaryDirectory() as tmp:
            whole, job = spawnkit_rate(args.tasks, args.max_running, Path(tmp))
        wholes.append(whole)
        jobs.append(job)
    floor, whole, job = (statistics.median(x) for x in (floors, wholes, jobs))
    print(f"slurm backend, {args.tasks} x /bin/true, max-running {args.max_running}, "
          f"{args.rounds} rounds (medians)")
    print(f"  spawnkit, the job alone:            {job:6.2f} tasks/s ({job / floor:.2f}x)")
    print(f"  spawnkit run, start-up included:    {whole:6.2f} tasks/s ({whole / floor:.2f}x)")
    print(f"  floor, sbatch + squeue every 0.1 s: {floor:6.2f} tasks/s")
    print(f"  rounds: floor {', '.join(f'{x:.2f}' for x in floors)}; spawnkit run "
          f"{', '.join(f'{x:.2f}' for x in wholes)}")


def _timed(argv: list[str], repeat: int = 5) -> tuple[float, int]:
    """Median seconds of a call, and the size of its output."""
    times, size = [], 0
    for _ in range(repeat):
        began = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, check=True).stdout
        times.append(time.perf_counter() - began)
        size = len(out)
    return statistics.median(times), size


def poll_cost(args: argparse.Namespace) -> None:
    ids = []
    try:
        for i in range(args.jobs):
            ids.append(subprocess.run(
                ["sbatch", "--parsable", "--hold", "--output=/dev/null",
                 f"--comment=spawnkit-bench-poll;task={i}", "--wrap", "true"],
                env=_env(), capture_output=True, text=True, check=True,
            ).stdout.strip().split(";")[0])
        fmt = "JobID:|,State:|,Reason:|,exit_code:|,NodeList:|,Comment:|"
        print(f"one poll with {len(ids)} held jobs in the controller (median of 5 calls)")
        for count in (8, 100, len(ids)):
            took, size = _timed(["squeue", "-h", "-t", "all", "-j", ",".join(ids[:count]),
                                 "-O", fmt])
            print(f"  squeue -t all -j <{count} ids> -O ...: {took * 1000:6.1f} ms, "
                  f"{size / 1024:6.1f} KiB")
        took, size = _timed(["scontrol", "-o", "show", "job"])
        print(f"  scontrol -o show job (every job):      {took * 1000:6.1f} ms, "
              f"{size / 1024:6.1f} KiB")
    finally:
        for start in range(0, len(ids), 500):
            subprocess.run(["scancel", *ids[start:start + 500]], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="throughput", choices=["throughput", "poll"])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--max-running", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    if args.what == "poll":
        poll_cost(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
