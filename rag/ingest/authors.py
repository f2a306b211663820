"""Recognise author lists in either order ("Last, First, …" or "First Last, …") and normalise to "First Last"."""

from __future__ import annotations

import re

# Lower-case particles that may start or sit inside a name ("Ludwig van Beethoven", "da Silva").
_PARTICLES = {"van", "von", "de", "der", "den", "da", "di", "du", "del", "della", "la", "le", "dos", "das", "bin", "al"}
_WORD = re.compile(r"^[^\W\d_][\w'’.\-]*$")


def _name_words(part: str) -> list[str] | None:
    """The words of one name, or None when the text does not look like a personal name."""
    words = part.split()
    if not words or len(words) > 5:
        return None
    for word in words:
        if not _WORD.match(word):
            return None
        if not word[0].isupper() and word.lower() not in _PARTICLES:
            return None
    return words


def _split(line: str) -> list[str]:
    parts = [p.strip() for p in re.split(r",|;|\band\b|&", line)]
    return [p for p in parts if p]  # a trailing comma leaves an empty part


def parse_last_first(line: str) -> list[str] | None:
    """"Xia, Mengfei, Shen, Yujun" -> ["Mengfei Xia", "Yujun Shen"]; None if the line is not such a list."""
    if "," not in line:
        return None
    parts = _split(line)
    if len(parts) < 2 or len(parts) % 2:
        return None
    words = [_name_words(p) for p in parts]
    if any(w is None for w in words):
        return None
    # Last/first alternation means most parts are single words; "First Last" lists have two or more.
    if sum(len(w) == 1 for w in words if w) < len(parts) / 2:
        return None
    return [f"{first} {last}" for last, first in zip(parts[0::2], parts[1::2], strict=True)]


def parse_first_last(line: str) -> list[str] | None:
    """"Jinjin Gu, Yujun Shen" -> ["Jinjin Gu", "Yujun Shen"]; None unless every part is a 2+ word name."""
    parts = _split(line)
    if len(parts) < 2:
        return None
    words = [_name_words(p) for p in parts]
    if any(w is None or len(w) < 2 for w in words):
        return None
    return [" ".join(w) for w in words if w]


def normalize_authors(value: str | list[str]) -> list[str]:
    """Authors from a record field: a list, or a string in either order; whitespace collapsed."""
    if isinstance(value, list):
        names = [" ".join(str(v).split()) for v in value]
        return [n for n in names if n]
    text = " ".join(value.split())
    if not text:
        return []
    return parse_last_first(text) or parse_first_last(text) or [p for p in _split(text)]
