"""When to answer "the collection does not say".

Two signals, calibrated on eval/questions.jsonl with bench/calibrate.py (figures in README):
- topical: the best chunk's cosine similarity to the question; off-topic questions score low;
- specific: names, acronyms and figures the question asks about ("CIFAR-10", "GPU", "BLIP-2") must appear
  in the paper the answer would come from; a near-topic question about something no abstract mentions
  fails here.
"""

from __future__ import annotations

import re

from rag.catalog import normalize_text

# Tokens that name something specific: an inner capital or a digit ("ImageNet", "GPU", "CIFAR-10", "v2").
_SPECIFIC = re.compile(r"\b[A-Za-z]*(?:[A-Z][A-Za-z]*[A-Z0-9]|[0-9])[\w\-.]*\b")
_GENERIC = {"url", "urls", "pdf", "id", "ids", "ai", "arxiv", "api"}


def specific_terms(question: str) -> set[str]:
    """Specific tokens of the question, as lower-case alphanumerics only."""
    terms = {"".join(normalize_text(m.group(0))) for m in _SPECIFIC.finditer(question)}
    return {t for t in terms if t and t not in _GENERIC}


def missing_terms(question: str, text: str) -> set[str]:
    """Specific question tokens absent from the text (compared ignoring case, spacing, hyphens, LaTeX)."""
    haystack = "".join(normalize_text(text))
    return {t for t in specific_terms(question) if t not in haystack}


def should_abstain(question: str, best_similarity: float, top_text: str, min_similarity: float) -> bool:
    """True when nothing retrieved is relevant enough to answer from.

    A question naming specific things is answerable exactly when the top paper names them all (the
    embedding model barely knows rare names like "StyleSwin", so its similarity is no judge there);
    other questions need the similarity threshold.
    """
    if missing_terms(question, top_text):
        return True
    return not specific_terms(question) and best_similarity < min_similarity
