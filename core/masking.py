"""Masking a stream of bytes: every occurrence of a secret's value becomes `***`, and of each
line of a value that has several (MIN_LINE characters or more), as written or as XML and JSON
escape it.

`Masker` masks as the bytes flow, in chunks of any size (a value cut across two chunks is
still found), so output is masked before it reaches a file, with memory bounded by the
longest value. Imports nothing of spawnkit: the output helper (core.maskpipe) starts fast.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["MASK", "Masker", "escaped_forms", "mask_file"]

MASK = b"***"
_CHUNK = 1 << 20
#: A line of a multi-line value is masked on its own from this length, and when it holds a
#: letter or a digit: a shorter piece (the `{` of a JSON key file) or a rule (`-----`)
#: identifies nothing, and would mask ordinary text wherever it is.
MIN_LINE = 4
_LINE_BREAKS = re.compile(r"[\r\n]+")
_NAMED = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
_UNICODE_ESCAPE = re.compile(r"\\u[0-9a-f]{4}")


def escaped_forms(value: str) -> set[str]:
    """`value`, and the ways XML and JSON writers escape it: a task that prints its own JUnit
    report or a JSON document (`p&ss` as `p&amp;ss` or `&#38;`, a key file's line ends as
    `\\n`) shows the secret in a form the value itself does not match.

    XML: the characters a writer escapes (all five, those of text or of attributes, or only
    `&` and `<`), each as a named, decimal or hex reference, with non-ASCII letters as they
    are or as references (Python's ElementTree: `&amp;` and `&#252;`). JSON: as Python
    writes it (ASCII or not), as Go does (`<`, `>`, `&` as `\\u003c`...), with upper-case
    hex (.NET), `/` as `\\/` (PHP)."""
    forms = {value}
    for special in ("&<", "&<>", "&<>\"", "&<>\"'"):
        for style in ("named", "dec", "hex", "HEX"):
            for wide in (None, "dec", "hex"):
                forms.add("".join(
                    _reference(c, style) if c in special
                    else _reference(c, wide) if wide is not None and ord(c) > 127 else c
                    for c in value))
    ascii_json = json.dumps(value)[1:-1]
    go_json = "".join(f"\\u{ord(c):04x}" if c in "<>&" else c for c in ascii_json)
    forms |= {ascii_json, json.dumps(value, ensure_ascii=False)[1:-1], go_json,
              _UNICODE_ESCAPE.sub(lambda m: m.group(0).upper().replace("\\U", "\\u"),
                                  ascii_json),
              ascii_json.replace("/", "\\/"), go_json.replace("/", "\\/")}
    return forms


def _reference(c: str, style: str) -> str:
    """`c` as an XML reference: named (`&amp;`), decimal (`&#38;`) or hex (`&#x26;`)."""
    if style == "named":
        return _NAMED[c]
    n = ord(c)
    return f"&#{n};" if style == "dec" else f"&#x{n:x};" if style == "hex" else f"&#x{n:X};"


def _needles(value: str) -> set[bytes]:
    """The value, and each line of it (trimmed) when it has several: a task that prints a key
    file line by line, or indented, shows no line of it (as GitHub Actions masks secrets);
    each in its escaped forms too."""
    pieces = {value}
    if _LINE_BREAKS.search(value):
        pieces |= {line.strip() for line in _LINE_BREAKS.split(value)}
    return {form.encode(errors="surrogateescape") for p in pieces
            if p == value or (len(p) >= MIN_LINE and any(c.isalnum() for c in p))
            for form in escaped_forms(p)}


class Masker:
    """Replaces every occurrence of the values by MASK in a stream of bytes.

    `feed()` returns what can be written now; it holds back only a tail that may still turn out
    to be (the start of) a value. `idle()` gives up the part of that tail that cannot be the
    start of a value (so a live view is not held back by a line end); `close()` the rest.
    Memory stays bounded by the longest value, whatever the stream's size.
    """

    def __init__(self, values: Iterable[str]) -> None:
        self.values = tuple(v for v in values if v)
        needles = sorted(set().union(*map(_needles, self.values)), key=len, reverse=True)
        self._needles = needles
        # Longest first: at one position the longest value wins, so a value that starts
        # with a shorter one is masked whole.
        self._pattern = re.compile(b"|".join(re.escape(n) for n in needles)) if needles else None
        self._keep = max((len(n) for n in needles), default=1) - 1
        self._pending = b""
        self.count = 0

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def _mask(self, data: bytes) -> bytes:
        assert self._pattern is not None
        masked, n = self._pattern.subn(MASK, data)
        self.count += n
        return masked

    def feed(self, chunk: bytes) -> bytes:
        if self._pattern is None:
            return chunk
        data = self._pending + chunk
        # Every value that starts before `cut` lies wholly inside `data`: decided.
        cut = max(len(data) - self._keep, 0)
        out = bytearray()
        pos = 0
        for match in self._pattern.finditer(data):
            if match.start() >= cut:
                break
            out += data[pos : match.start()] + MASK
            self.count += 1
            pos = match.end()
        cut = max(cut, pos)
        out += data[pos:cut]
        self._pending = data[cut:]
        return bytes(out)

    def idle(self) -> bytes:
        """What of the held-back tail cannot be part of a value: the bytes before the first
        position where a value starts, or may yet start."""
        data = self._pending
        for i in range(len(data)):
            if any(n.startswith(data[i:]) or data.startswith(n, i) for n in self._needles):
                self._pending = data[i:]
                return data[:i]
        self._pending = b""
        return data

    def text(self, text: str) -> str:
        """A whole text, masked (nothing held back): one Masker for many short texts."""
        data = text.encode(errors="surrogateescape")
        return (self.feed(data) + self.close()).decode(errors="surrogateescape")

    def close(self) -> bytes:
        if self._pattern is None:
            return b""
        data, self._pending = self._pending, b""
        return self._mask(data)


def mask_file(path: Path, values: Iterable[str]) -> int:
    """Replace every occurrence of the values in the file by MASK; return how many.

    Streams through a `Masker`, so the file may be of any size.
    """
    masker = Masker(values)
    if not masker.active or not path.is_file():
        return 0
    tmp = path.with_name(path.name + ".masking")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        while chunk := src.read(_CHUNK):
            dst.write(masker.feed(chunk))
        dst.write(masker.close())
    os.replace(tmp, path)
    return masker.count
