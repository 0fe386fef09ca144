"""The engine fixtures of tests/engines, for the isolation tests of the container backends:
`engine_name` (docker, podman; a test that cannot reach its engine fails under CI=true) and
`no_leftovers`."""

from __future__ import annotations

from tests.engines.conftest import engine_name, no_leftovers

__all__ = ["engine_name", "no_leftovers"]
