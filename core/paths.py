"""Paths in a job folder: its name (the job id), safe folder names for task ids (nothing a
task id holds can write outside the job folder), and files written whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import time
import unicodedata
from pathlib import Path

__all__ = ["JOB_ID", "new_job_id", "safe_name", "write_atomic"]

#: A job id as new_job_id makes it (the name of its folder): when it began, and 6 hex digits.
JOB_ID = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}")


def new_job_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)

_MAX = 80


def safe_name(task_id: str) -> str:
    """A folder name for a task id: ASCII letters, digits, `._-`; unique per id.

    An id that had to change (or was cut) gets a short hash of the original, so two ids
    that map to the same text still get two folders.
    """
    text = unicodedata.normalize("NFKD", task_id).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:_MAX]
    if text != task_id or not text:
        digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        text = f"{text}-{digest}" if text else f"task-{digest}"
    return text


def write_atomic(path: Path, data: bytes, *, make_folder: bool = True) -> None:
    """Write a file so that a reader sees the old one or the whole new one, never half.
    OSError when it cannot, with no temporary file left; FileNotFoundError when its folder
    is not there and not `make_folder`."""
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):  # a full disk leaves no half-written file
            tmp.unlink(missing_ok=True)
        raise
