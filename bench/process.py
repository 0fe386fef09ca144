"""Benchmark: 200 `/bin/true` tasks at --max-running 8 on the process backend.

Prints spawnkit's tasks per second and, measured in the same run, a floor: the same
200 `subprocess.run` calls in 8 threads. Run: `python bench/process.py [--tasks N]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def spawnkit_rate(n: int, parallel: int, workdir: Path) -> tuple[float, float]:
    """(tasks/s of the whole command, tasks/s of the job itself, start-up excluded)."""
    taskfile = workdir / "bench.toml"
    taskfile.write_text("".join(f'[[task]]\nid = "t{i}"\ncommand = ["/bin/true"]\n'
                                for i in range(n)))
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "spawnkit.cli", "run", "-q", "--max-running", str(parallel),
         "--results", str(workdir / "results"), str(taskfile)],
        check=True, stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - began
    data = json.loads((workdir / "results" / "latest" / "results.json").read_text())
    assert data["counts"]["passed"] == n, data["counts"]
    return n / elapsed, n / data["duration"]


def floor_rate(n: int, parallel: int) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(lambda _: subprocess.run(["/bin/true"], check=True), range(n)))
    return n / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--max-running", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        whole, job = spawnkit_rate(args.tasks, args.max_running, Path(tmp))
    floor = floor_rate(args.tasks, args.max_running)
    print(f"process backend, {args.tasks} x /bin/true, max-running {args.max_running}")
    print(f"  spawnkit, the job alone:                 {job:8.1f} tasks/s ({job / floor:.2f}x)")
    print(f"  spawnkit run, start-up included:         {whole:8.1f} tasks/s ({whole / floor:.2f}x)")
    print(f"  floor, subprocess.run in {args.max_running} threads:     {floor:8.1f} tasks/s")


if __name__ == "__main__":
    main()
