"""The answerer interface (a generator of text deltas that returns the finished draft) and the few fixed
lines answers may carry besides claims."""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Protocol

from rag.models import Hit

ABSTAIN_TEXT = "The collection does not say: none of the indexed abstracts answers this question."
# First line of an answer given with low confidence: the evidence is weak, the user should know.
LOW_CONFIDENCE_LEAD = "The collection may not answer this directly; the closest it comes:"
_COUNTS = ("Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten")
# Lines that frame an answer and claim nothing: grounding does not ask them for a citation.
FRAMING = re.compile(rf"^(?:{re.escape(LOW_CONFIDENCE_LEAD)}|(?:{'|'.join(_COUNTS)}|\d+) papers report on this\.)$")


def papers_lead(count: int) -> str:
    """"Two papers report on this." for an answer that cites several papers."""
    return f"{_COUNTS[count - 2] if 2 <= count <= 10 else count} papers report on this."


@dataclass
class Turn:
    """One earlier exchange of a chat."""

    question: str
    answer: str
    cited_ids: list[str] = field(default_factory=list)


@dataclass
class Draft:
    """What an answerer produced: raw text (citations not yet validated) and supporting passages."""

    text: str
    passages: dict[int, str] = field(default_factory=dict)
    abstained: bool = False
    error: str | None = None


class Answerer(Protocol):
    name: str

    def generate(self, question: str, hits: list[Hit], history: list[Turn]) -> Generator[str, None, Draft]:
        """Yield text deltas; return the Draft. ``hits`` are numbered 1..n in order."""
        ...
