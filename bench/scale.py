"""Benchmark: does a job's cost per task stay flat from 1,000 to 10,000 tasks?

Runs `spawnkit run -q --max-running 8` on 1,000 and on 10,000 `/bin/true` tasks (process
backend), one after the other in the same run, and prints each job's cost per task (its own
duration, start-up excluded), their ratio (goal: at most 1.3) and the runner's peak resident
memory at 10,000 tasks (goal: under 150 MB).

    python bench/scale.py [--small 1000] [--large 10000] [--max-running 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run_job(n: int, parallel: int, workdir: Path) -> tuple[float, float]:
    """(seconds per task of the job itself, the runner's peak RSS in MB)."""
    taskfile = workdir / f"scale-{n}.toml"
    taskfile.write_text("".join(f'[[task]]\nid = "t{i}"\ncommand = ["/bin/true"]\n'
                                for i in range(n)))
    results = workdir / f"results-{n}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "spawnkit.cli", "run", "-q", "--max-running", str(parallel),
         "--no-gc", "--results", str(results), str(taskfile)],
        stdout=subprocess.DEVNULL,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"spawnkit run failed with {proc.returncode} at {n} tasks")
    data = json.loads((results / "latest" / "results.json").read_text())
    assert data["counts"]["passed"] == n, data["counts"]
    return data["duration"] / n, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--max-running", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small, small_rss = run_job(args.small, args.max_running, Path(tmp))
        large, large_rss = run_job(args.large, args.max_running, Path(tmp))
    ratio = large / small
    print(f"process backend, /bin/true tasks, max-running {args.max_running}")
    print(f"  {args.small:>6} tasks: {small * 1e3:7.3f} ms per task, peak RSS {small_rss:6.1f} MB")
    print(f"  {args.large:>6} tasks: {large * 1e3:7.3f} ms per task, peak RSS {large_rss:6.1f} MB")
    print(f"  per-task cost at {args.large} / at {args.small}: {ratio:.2f}x (goal <= 1.3x); "
          f"peak RSS at {args.large}: {large_rss:.0f} MB (goal < 150 MB)")


if __name__ == "__main__":
    main()
