"""When to answer "the collection does not say".

Three signals, calibrated on eval/questions.jsonl with bench/calibrate.py and `rag eval` (figures in README):
- topical: the best chunk's cosine similarity to the question; off-topic questions score low;
- specific: names, acronyms and figures the question asks about ("CIFAR-10", "GPU", "BLIP-2", and
  capitalised words after the first: "Imagen", "Composer") must appear in the paper the answer would come
  from; a near-topic question about something no abstract mentions fails here;
- figure: a question asking for a figure ("how many parameters …", "what FID …") needs a sentence of that
  paper that gives a number next to the asked-for measure; "How many parameters does Aurora have?" is
  unanswerable when Aurora's abstract gives no parameter count, however well it matches otherwise.
"""

from __future__ import annotations

import re

from rag.catalog import normalize_text
from rag.extractive import terms
from rag.sentences import split_sentences

# Tokens that name something specific: an inner capital or a digit ("ImageNet", "GPU", "CIFAR-10", "v2").
_SPECIFIC = re.compile(r"\b[A-Za-z]*(?:[A-Z][A-Za-z]*[A-Z0-9]|[0-9])[\w\-.]*\b")
# Capitalised words that are not the question's first word nor follow a sentence end: names.
_NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][a-z]+\b")
_GENERIC = {"url", "urls", "pdf", "id", "ids", "ai", "arxiv", "api"}
_NOT_NAMES = {"which", "what", "who", "whom", "whose", "how", "when", "where", "why", "is", "are", "does", "do", "did",
              "in", "on", "the", "a", "an", "for", "and", "or", "of", "paper", "papers", "was", "were"}

# The measure a figure question asks for: "how many <frames> per second", "what zero-shot <FID> on …".
_AUX = r"(?:do|does|did|is|are|was|were|has|have|had|can|could|would|will|should)"
_HOW_MANY = re.compile(rf"\bhow (?:many|much)\s+(?:(?P<phrase>[^?,;]*?)\s+)?{_AUX}\b", re.I)
_WHAT_MEASURE = re.compile(
    r"\bwhat\s+(?:[\w\-]+\s+){0,3}?(?P<head>fid|fvd|score|accuracy|rate|factor|speed-?up|parameters|size|cost|"
    r"percentage|error|latency|throughput|resolution|improvement)\b", re.I)
_PREPOSITION = re.compile(r"\s+(?:per|on|of|in|for|to|at|with|than|from|by|across)\s+", re.I)
_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|dozens?|"
                     r"hundreds?|thousands?|millions?|billions?|half|double|twice)\b", re.I)


def specific_terms(question: str) -> set[str]:
    """Specific tokens of the question (names, acronyms, figures), as lower-case alphanumerics only."""
    found = {m.group(0) for m in _SPECIFIC.finditer(question)}
    found |= {m.group(0) for m in _NAME.finditer(question) if m.group(0).lower() not in _NOT_NAMES}
    out = {"".join(normalize_text(t)) for t in found}
    return {t for t in out if t and t not in _GENERIC}


def spelled_out(acronym: str, text: str) -> bool:
    """Whether the text spells the acronym out in capitalised words: "fid" in "… the Fréchet Inception
    Distance of …" (lower-case runs like "fast image diffusion" are too common to count)."""
    n = len(acronym)
    if not acronym.isalpha() or not 3 <= n <= 6:
        return False
    words = re.findall(r"\w+", text)
    return any(all(w[0].isupper() for w in words[i:i + n]) and "".join(w[0] for w in words[i:i + n]).lower() == acronym
               for i in range(len(words) - n + 1))


def missing_terms(question: str, text: str) -> set[str]:
    """Specific question tokens absent from the text (compared ignoring case, spacing, hyphens, LaTeX),
    acronyms counting as present where the text spells them out."""
    haystack = "".join(normalize_text(text))
    return {t for t in specific_terms(question) if t not in haystack and not spelled_out(t, text)}


def asked_measure(question: str) -> str | None:
    """The stemmed head word of the figure a question asks for ("frame" for "how many frames per second"), if any."""
    match = _HOW_MANY.search(question)
    if match:
        before_preposition = _PREPOSITION.split(match.group("phrase") or "")[0]
        words = terms(before_preposition)
        return words[-1] if words else None
    match = _WHAT_MEASURE.search(question)
    if match:
        words = terms(match.group("head"))
        return words[-1] if words else None
    return None


def gives_figure(measure: str, text: str) -> bool:
    """Whether a sentence of the text states a number next to the measure (stemmed word, or acronym spelled out)."""
    return any((measure in terms(s) or spelled_out(measure, s)) and _NUMBER.search(s) for s in split_sentences(text))


def should_abstain(question: str, best_similarity: float, top_text: str, min_similarity: float) -> bool:
    """True when nothing retrieved is relevant enough to answer from.

    A question naming specific things is answerable exactly when the top paper names them all (the
    embedding model barely knows rare names like "StyleSwin", so its similarity is no judge there);
    other questions need the similarity threshold. A figure question also needs the figure.
    """
    if missing_terms(question, top_text):
        return True
    measure = asked_measure(question)
    if measure and not gives_figure(measure, top_text):
        return True
    return not specific_terms(question) and best_similarity < min_similarity
