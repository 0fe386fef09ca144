"""A task's output made whole from a complete read once a followed log ended short (the
container and Kubernetes backends: core.output.CatchUp)."""

from __future__ import annotations

from pathlib import Path

from spawnkit.core.output import MaskedStream


def _followed(tmp_path: Path, live: list[bytes]) -> MaskedStream:
    stream = MaskedStream(tmp_path / "stdout", ["s3cr3t"])
    for chunk in live:
        stream.write(chunk)
    stream.seal()
    return stream


def test_what_the_follower_missed_is_appended(tmp_path: Path) -> None:
    stream = _followed(tmp_path, [b"one\n", b"tw"])
    catch_up = stream.catch_up()
    for chunk in (b"on", b"e\ntwo\nthe s3", b"cr3t\n"):  # cut elsewhere than the live chunks
        catch_up.feed(chunk)
    stream.close()
    assert catch_up.same
    assert (tmp_path / "stdout").read_bytes() == b"one\ntwo\nthe ***\n"


def test_a_read_that_begins_otherwise_writes_nothing(tmp_path: Path) -> None:
    stream = _followed(tmp_path, [b"one\n"])
    catch_up = stream.catch_up()
    catch_up.feed(b"uno\nmore\n")
    assert not catch_up.same
    stream.restart()
    stream.write_rest(b"uno\nmore\n")
    stream.close()
    assert (tmp_path / "stdout").read_bytes() == b"uno\nmore\n"


def test_a_read_shorter_than_what_was_followed_is_not_the_same(tmp_path: Path) -> None:
    stream = _followed(tmp_path, [b"one\ntwo\n"])
    catch_up = stream.catch_up()
    catch_up.feed(b"one\n")
    stream.close()
    assert not catch_up.same and catch_up.short
    assert (tmp_path / "stdout").read_bytes() == b"one\ntwo\n"


def test_nothing_followed_takes_the_whole_read(tmp_path: Path) -> None:
    stream = _followed(tmp_path, [])
    catch_up = stream.catch_up()
    catch_up.feed(b"all\n")
    stream.close()
    assert catch_up.same
    assert (tmp_path / "stdout").read_bytes() == b"all\n"


def test_a_live_write_after_the_seal_is_not_taken(tmp_path: Path) -> None:
    """A follower that outlived its wait writes after the stream was sealed: dropped, so the
    complete read's rest is not written twice."""
    stream = _followed(tmp_path, [b"one\n"])
    catch_up = stream.catch_up()
    stream.write(b"two\n")  # late, from the follower
    for chunk in (b"one\ntwo\n", b"three\n"):
        catch_up.feed(chunk)
    stream.close()
    assert catch_up.same and not catch_up.short
    assert (tmp_path / "stdout").read_bytes() == b"one\ntwo\nthree\n"
