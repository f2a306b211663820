"""The answerer interface: a generator of text deltas that returns the finished draft."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Protocol

from rag.models import Hit


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
