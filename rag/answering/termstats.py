"""Document frequencies of stemmed terms over the collection: IDF weights for relevance and coverage.

Shared by the answerability decision and the extractive answerer, so both weigh a question's words alike.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

from rag.text import terms


class TermStats:
    """IDF of stemmed terms (BM25's form: rare terms weigh most, a term in every abstract weighs ~0)."""

    def __init__(self, document_frequency: Mapping[str, int], documents: int) -> None:
        self.df = document_frequency
        self.documents = documents
        self.n = max(documents, 1)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> TermStats:
        df: Counter[str] = Counter()
        count = 0
        for text in texts:
            count += 1
            df.update(set(terms(text)))
        return cls(dict(df), count)

    def idf(self, term: str) -> float:
        df = self.df.get(term, 0)
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    @property
    def max_idf(self) -> float:
        """The IDF of a term no document has (the ceiling, for normalising)."""
        return self.idf("")

    def weights(self, text: str) -> dict[str, float]:
        """IDF weight of each distinct content term of the text (a question)."""
        return {t: self.idf(t) for t in dict.fromkeys(terms(text))}

    @staticmethod
    def coverage(weights: dict[str, float], have: Iterable[str]) -> float:
        """Share (0..1) of the weights whose terms are in ``have``."""
        total = sum(weights.values())
        if not total:
            return 0.0
        have = set(have)
        return sum(w for t, w in weights.items() if t in have) / total
