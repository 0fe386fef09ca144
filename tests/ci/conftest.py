"""One mixed job, run once for the whole folder: every CI output is checked against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

# Passed, failed, timed out, skipped, and output no XML can hold as it is: NULs and other
# control bytes, invalid UTF-8, an ANSI colour code, `]]>`, markup, and a log too long to
# keep whole.
MIXED_TASKS = r"""
[[task]]
id = "ok"
command = "echo 'all good'"

[[task]]
id = "fails"
command = "echo 'about to fail'; echo 'assertion failed: 1 == 2' >&2; exit 3"

[[task]]
id = "hangs"
command = "sleep 30"
timeout = 0.5

[[task]]
id = "after-fail"
command = "echo never"
depends_on = ["fails"]

[[task]]
id = "junk"
command = '''
printf 'nul\000bell\007esc\033[31mred\033[0m ]]> <b>&amp; \377\376\300 end\n'
printf '\001\002\003 ]]>' >&2'''

[[task]]
id = "junk-fails"
command = "head -c 3000 /dev/urandom; head -c 2000 /dev/urandom >&2; exit 1"

[[task]]
id = "chatty"
command = "i=0; while [ $i -lt 3000 ]; do echo \"line $i of a long log ]]>\"; i=$((i+1)); done"
"""

MIXED_RESULTS = {
    "ok": "passed",
    "fails": "failed",
    "hangs": "timed_out",
    "after-fail": "skipped",
    "junk": "passed",
    "junk-fails": "failed",
    "chatty": "passed",
}


@dataclass
class MixedJob:
    code: int
    stdout: str
    stderr: str
    job_dir: Path
    junit_copy: Path
    json_copy: Path

    @property
    def results(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.job_dir / "results.json").read_text())
        return data


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a child CLI: no CI runner's variables unless a test sets them."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_STEP_SUMMARY")}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def mixed_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MixedJob]:
    root = tmp_path_factory.mktemp("mixed")
    path = root / "mixed.toml"
    path.write_text(MIXED_TASKS)
    junit, js = root / "out" / "junit.xml", root / "out" / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "spawnkit.cli", "run", str(path), "--results", str(root / "r"),
         "--junit", str(junit), "--json", str(js), "--grace", "1"],
        capture_output=True, text=True, timeout=60, env=cli_env(CI="true"), cwd=root,
    )
    yield MixedJob(proc.returncode, proc.stdout, proc.stderr, (root / "r" / "latest").resolve(),
                   junit, js)
