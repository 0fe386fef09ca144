"""A stand-in for a project's tests, so that examples/pytest.toml runs as it is."""

import shlex


def test_split_keeps_quoted_words() -> None:
    assert shlex.split("run 'a b' c") == ["run", "a b", "c"]


def test_join_quotes_what_needs_it() -> None:
    assert shlex.join(["echo", "a b"]) == "echo 'a b'"
