"""A stand-in for a project's tests, so that examples/pytest.toml runs as it is."""

import json


def test_round_trip() -> None:
    assert json.loads(json.dumps({"a": [1, 2]})) == {"a": [1, 2]}


def test_empty_object() -> None:
    assert json.dumps({}) == "{}"
