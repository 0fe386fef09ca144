"""A stand-in for a project's tests, so that examples/pytest.toml runs as it is."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: int
    y: int


def test_equal_by_value() -> None:
    assert Point(1, 2) == Point(1, 2)


def test_frozen() -> None:
    p = Point(1, 2)
    try:
        p.x = 3  # type: ignore[misc]
    except AttributeError:
        return
    raise AssertionError("a frozen dataclass took a new value")
