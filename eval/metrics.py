"""Metric functions over plain inputs (ranked paper ids, gold sets, answer text), used by eval/runner.py.

Gold is a list of sets: one set per gold entry of a question, holding the catalog ids that entry matches
(a paper listed twice in the collection may match twice). A retrieved paper is relevant when it is in
any set; an entry is found once any of its ids is retrieved.
"""

from __future__ import annotations

import math
import statistics
import re
from collections.abc import Sequence

from rag import citation_numbers

_GROUP = re.compile(r"\[(\s*\d+(?:\s*[,;\-–]\s*\d+)*\s*)\]")


def first_rank(ranked: Sequence[str], gold: Sequence[set[str]]) -> int | None:
    """1-based rank of the first relevant paper, or None."""
    relevant = set().union(*gold) if gold else set()
    return next((i for i, pid in enumerate(ranked, 1) if pid in relevant), None)


def hit_at(ranked: Sequence[str], gold: Sequence[set[str]], k: int) -> float:
    """1.0 when a relevant paper is among the first k."""
    rank = first_rank(ranked, gold)
    return float(rank is not None and rank <= k)


def reciprocal_rank(ranked: Sequence[str], gold: Sequence[set[str]], k: int | None = None) -> float:
    """1 / rank of the first relevant paper (0 when none in the first k)."""
    rank = first_rank(ranked[:k] if k else ranked, gold)
    return 1.0 / rank if rank else 0.0


def recall_at(ranked: Sequence[str], gold: Sequence[set[str]], k: int) -> float:
    """Share of gold entries found among the first k."""
    if not gold:
        return 0.0
    top = set(ranked[:k])
    return sum(1 for entry in gold if entry & top) / len(gold)


def ndcg_at(ranked: Sequence[str], gold: Sequence[set[str]], k: int) -> float:
    """Binary-relevance nDCG@k; each gold entry earns gain once (its first retrieved copy)."""
    if not gold:
        return 0.0
    found: set[int] = set()
    dcg = 0.0
    for position, pid in enumerate(ranked[:k], 1):
        entries = {i for i, entry in enumerate(gold) if pid in entry} - found
        if entries:
            found.add(min(entries))
            dcg += 1.0 / math.log2(position + 1)
    ideal = sum(1.0 / math.log2(p + 1) for p in range(1, min(len(gold), k) + 1))
    return dcg / ideal


def citation_recall(cited: Sequence[str], gold: Sequence[set[str]]) -> float:
    """Share of gold entries whose paper the answer cites."""
    return recall_at(list(cited), gold, len(cited)) if cited else 0.0


def citation_precision(cited: Sequence[str], gold: Sequence[set[str]], supporting: set[str] = frozenset()) -> float | None:
    """Share of cited papers that are gold or back the sentences citing them (None when nothing is cited)."""
    if not cited:
        return None
    relevant = set().union(*gold) if gold else set()
    return sum(1 for pid in cited if pid in relevant or pid in supporting) / len(cited)


def dangling_citations(text: str, sources: int, dropped: Sequence[int] = ()) -> list[int]:
    """Citation numbers pointing at no source: those the assistant dropped plus any [n] outside 1..sources."""
    out = list(dropped)
    for group in _GROUP.finditer(text):
        out += [n for n in citation_numbers(group.group(1)) if not 1 <= n <= sources]
    return out


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def key_facts_found(facts: Sequence[str], text: str) -> list[bool]:
    """Per key fact: does it occur in the text (case-insensitive, whitespace normalised)?"""
    haystack = _normal(text)
    return [_normal(f) in haystack for f in facts]


def abstention_scores(abstained: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float | None]:
    """Precision / recall of abstaining as a detector of unanswerable questions, and both abstention rates."""
    pairs = list(zip(abstained, answerable, strict=True))
    true_pos = sum(1 for a, ok in pairs if a and not ok)
    said = sum(1 for a, _ in pairs if a)
    unanswerable = sum(1 for _, ok in pairs if not ok)
    answerable_n = len(pairs) - unanswerable
    return {
        "precision": true_pos / said if said else None,
        "recall": true_pos / unanswerable if unanswerable else None,
        "answerable_abstention_rate": (said - true_pos) / answerable_n if answerable_n else None,
        "unanswerable_abstention_rate": true_pos / unanswerable if unanswerable else None,
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def retrieval_metrics(rankings: Sequence[Sequence[str]], golds: Sequence[Sequence[set[str]]],
                      multi: Sequence[bool]) -> dict[str, float | int | None]:
    """Paper-level retrieval figures over answerable questions (rankings: retrieved paper ids, best first)."""
    pairs = list(zip(rankings, golds, strict=True))
    many = [(r, g) for (r, g), m in zip(pairs, multi, strict=True) if m]
    return {
        "questions": len(pairs),
        "hit@1": mean([hit_at(r, g, 1) for r, g in pairs]),
        "hit@3": mean([hit_at(r, g, 3) for r, g in pairs]),
        "hit@5": mean([hit_at(r, g, 5) for r, g in pairs]),
        "mrr": mean([reciprocal_rank(r, g, 5) for r, g in pairs]),
        "ndcg@5": mean([ndcg_at(r, g, 5) for r, g in pairs]),
        "multi_questions": len(many),
        "recall@5_multi": mean([recall_at(r, g, 5) for r, g in many]),
        "recall@10_multi": mean([recall_at(r, g, 10) for r, g in many]),
    }


def latency_summary(records: list[dict]) -> dict[str, float | None]:
    search = [r["search_ms"] for r in records]
    ask = [r["ask_ms"] for r in records]
    return {"search_p50": percentile(search, .5), "search_p95": percentile(search, .95),
            "ask_p50": percentile(ask, .5), "ask_p95": percentile(ask, .95),
            "search_mean": statistics.fmean(search) if search else None,
            "ask_mean": statistics.fmean(ask) if ask else None}
