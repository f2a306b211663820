"""Find, validate and collect the numbered citations ``[n]`` in an answer's text."""

from __future__ import annotations

import re

from rag.models import Citation, Hit
from rag.text import CITATION_GROUP, citation_numbers

# "[1]", "[1, 3]", "[2][3]", "[1-2]"; the bracket group is rewritten keeping only valid numbers.
# The spaces before a group go with it when nothing in it is kept ("E [9] and" -> "E and", not "E  and").
_GROUP = re.compile(r"([ \t]*)" + CITATION_GROUP.pattern)


def neutralize(text: str) -> str:
    """Source text with its own bracketed numbers ("prior work [2]") turned into "(2)", so that only the
    answerer's markers are read as citations."""
    return _GROUP.sub(lambda m: f"{m.group(1)}({m.group(2).strip()})", text)


def validate_citations(text: str, sources: int) -> tuple[str, list[int], list[int]]:
    """(text with dangling numbers removed, cited numbers in order of first use, dropped numbers).

    A number is dangling when it points at no source (outside 1..sources).
    """
    cited: list[int] = []
    dropped: list[int] = []

    def fix(match: re.Match[str]) -> str:
        keep = []
        for n in citation_numbers(match.group(2)):
            if 1 <= n <= sources:
                keep.append(n)
                if n not in cited:
                    cited.append(n)
            elif n not in dropped:
                dropped.append(n)
        if not keep:  # "E [9] and" -> "E and"; but "E [9][1]" -> "E [1]"
            return match.group(1) if match.string.startswith("[", match.end()) else ""
        return match.group(1) + "".join(f"[{n}]" for n in dict.fromkeys(keep))

    cleaned = _GROUP.sub(fix, text)
    cleaned = re.sub(r"(\[\d+\])(?:\1)+", r"\1", cleaned)  # "[3][3]" -> "[3]"
    cleaned = re.sub(r"[ \t]+([.,;:])", r"\1", cleaned)  # "claim [9]." -> "claim ." -> "claim."
    return cleaned, cited, dropped


def collect(cited: list[int], hits: list[Hit], passages: dict[int, str] | None = None) -> list[Citation]:
    """Citation records for the cited source numbers (1-based into hits)."""
    passages = passages or {}
    return [Citation(number=n, paper=hits[n - 1].paper, passage=passages.get(n, hits[n - 1].passage)) for n in cited]
