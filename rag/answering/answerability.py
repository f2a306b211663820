"""Does the collection answer the question? One calibrated decision over evidence signals.

Retrieval always returns something; whether it answers is decided here, before any answerer (or LLM) runs.
The signals (``FEATURES``) describe how well the best retrieved papers cover the question: dense similarity,
IDF-weighted coverage of the question's terms by the best sentence and the best paper, the rarest term no top
paper has, names, numbers and figures the question asks for that the top paper lacks. A logistic regression over them
(fitted with scikit-learn by ``bench/answerability.py`` on our question set plus SciFact-train under the
withheld-evidence protocol) turns them into a confidence in 0..1; the fit ships as a small JSON artefact next
to this module, so nothing is downloaded or trained at run time. Two cut points give three outcomes:
answered, answered with a low-confidence notice, abstained.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from rag.answering.termstats import TermStats
from rag.models import Hit
from rag.text import SPECIFIC, name_keys, split_sentences, squashed, terms

Outcome = Literal["answered", "low_confidence", "abstained"]
ARTEFACT = Path(__file__).with_name("answerability_v1.json")
TOP_PAPERS = 3  # papers whose text counts as evidence for a question

FEATURES = (
    "similarity",  # best dense cosine of any chunk to the question
    "top_similarity",  # dense cosine of the first paper's best chunk (0 when only BM25 found it)
    "sentence_coverage",  # IDF share of the question's terms in the best single sentence of the top papers
    "paper_coverage",  # IDF share in the best-covering top paper (title + abstract)
    "top_coverage",  # IDF share in the first paper
    "bigram_coverage",  # share of the question's adjacent term pairs found adjacent in the best paper
    "rarest_missing",  # IDF of the rarest question term no top paper has, over the IDF ceiling (0: none missing)
    "name_missing",  # share of the named terms ("CIFAR-10", "Imagen", "PrP") the first paper never mentions
    "number_missing",  # share of the bare numbers ("1.52", "32%") the first paper never states
    "has_specific",  # the question names something specific
    "figure_missing",  # a figure question ("how many …", "what FID …") whose first paper gives no such figure
    "question_terms",  # log(1 + content terms of the question)
)

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
    found = {m.group(0) for m in SPECIFIC.finditer(question)}
    found |= {m.group(0) for m in _NAME.finditer(question) if m.group(0).lower() not in _NOT_NAMES}
    return {t for t in map(squashed, found) if t and t not in _GENERIC}


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
    """Specific question tokens absent from the text as whole words (ignoring case, spacing, hyphens, LaTeX; a
    plural "s" aside), acronyms counting as present where the text spells them out."""
    keys = name_keys(text)
    return {t for t in specific_terms(question)
            if t not in keys and t.rstrip("s") not in keys and not spelled_out(t, text)}


def asked_measure(question: str) -> str | None:
    """The stemmed head word of the figure a question asks for ("frame" for "how many frames per second"), if any."""
    match = _HOW_MANY.search(question)
    if match:
        words = terms(_PREPOSITION.split(match.group("phrase") or "")[0])
        return words[-1] if words else None
    match = _WHAT_MEASURE.search(question)
    if match:
        words = terms(match.group("head"))
        return words[-1] if words else None
    return None


def gives_figure(measure: str, text: str) -> bool:
    """Whether a sentence of the text states a number next to the measure (stemmed word, or acronym spelled out)."""
    return any((measure in terms(s) or spelled_out(measure, s)) and _NUMBER.search(s) for s in split_sentences(text))


def _bigrams(words: list[str]) -> set[tuple[str, str]]:
    return set(zip(words, words[1:]))


def evidence_features(question: str, hits: list[Hit], best_similarity: float, stats: TermStats) -> dict[str, float]:
    """The signals the decision reads (see FEATURES), from the question and its retrieved papers."""
    weights = stats.weights(question)
    top = hits[:TOP_PAPERS]
    texts = [f"{h.paper.title or ''}. {h.paper.abstract}" for h in top]
    paper_terms = [terms(t) for t in texts]
    paper_cover = [stats.coverage(weights, words) for words in paper_terms]
    sentence_cover = [stats.coverage(weights, terms(s)) for t in texts for s in split_sentences(t)]
    best = max(range(len(top)), key=lambda i: paper_cover[i]) if top else None
    seen = set().union(*paper_terms) if paper_terms else set()
    missing = [w for t, w in weights.items() if t not in seen]
    question_terms = terms(question)
    pairs = _bigrams(question_terms)
    specific = specific_terms(question)
    names = {t for t in specific if not t.isdigit()}
    top_text = hits[0].paper.record_text() if hits else ""
    absent = missing_terms(question, top_text)
    measure = asked_measure(question)
    return {
        "similarity": max(best_similarity, 0.0),
        "top_similarity": max(hits[0].similarity or 0.0, 0.0) if hits else 0.0,
        "sentence_coverage": max(sentence_cover, default=0.0),
        "paper_coverage": max(paper_cover, default=0.0),
        "top_coverage": paper_cover[0] if paper_cover else 0.0,
        "bigram_coverage": (len(pairs & _bigrams(paper_terms[best])) / len(pairs)) if pairs and best is not None
        else 1.0,
        "rarest_missing": max(missing, default=0.0) / stats.max_idf,
        "name_missing": len(absent & names) / len(names) if names else 0.0,
        "number_missing": len(absent - names) / len(specific - names) if specific - names else 0.0,
        "has_specific": float(bool(specific)),
        "figure_missing": float(bool(measure) and not gives_figure(measure, top_text)),
        "question_terms": math.log1p(len(set(question_terms))),
    }


@dataclass(frozen=True)
class AnswerabilityModel:
    """A fitted logistic regression over standardised FEATURES, and the two cut points on its output."""

    version: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    abstain_below: float  # confidence under which the assistant abstains
    notice_below: float  # confidence under which an answer carries the low-confidence notice
    trained_on: dict = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, path: Path = ARTEFACT) -> AnswerabilityModel:
        """The model stored at ``path`` (default: the artefact shipped with the package)."""
        return _load(path)

    def confidence(self, features: dict[str, float]) -> float:
        """Probability (0..1) that the retrieved papers answer the question."""
        z = self.intercept + sum(c * (features[name] - m) / s for name, m, s, c in
                                 zip(self.features, self.mean, self.scale, self.coef, strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def outcome(self, confidence: float, abstain_below: float | None = None,
                notice_below: float | None = None) -> Outcome:
        """answered / low_confidence / abstained for a confidence (cut points overridable, e.g. by settings)."""
        low = self.abstain_below if abstain_below is None else abstain_below
        notice = self.notice_below if notice_below is None else notice_below
        if confidence < low:
            return "abstained"
        return "low_confidence" if confidence < notice else "answered"


@cache
def _load(path: Path) -> AnswerabilityModel:
    data = json.loads(path.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{path}: the artefact's features {data['features']} differ from this code's {FEATURES}; "
                         "refit it with bench/answerability.py")
    return AnswerabilityModel(
        version=data["version"], features=tuple(data["features"]), mean=tuple(data["mean"]),
        scale=tuple(data["scale"]), coef=tuple(data["coef"]), intercept=float(data["intercept"]),
        abstain_below=float(data["abstain_below"]), notice_below=float(data["notice_below"]),
        trained_on=data.get("trained_on", {}),
    )


@dataclass
class Assessment:
    """What the decision saw and concluded for one question."""

    question: str
    hits: list[Hit]
    features: dict[str, float]
    confidence: float
    outcome: Outcome


def assess(question: str, hits: list[Hit], best_similarity: float, stats: TermStats, model: AnswerabilityModel,
           abstain_below: float | None = None, notice_below: float | None = None) -> Assessment:
    """The decision for one question; no hits at all is an abstention with confidence 0."""
    if not hits:
        return Assessment(question, hits, {}, 0.0, "abstained")
    features = evidence_features(question, hits, best_similarity, stats)
    confidence = model.confidence(features)
    return Assessment(question, hits, features, confidence, model.outcome(confidence, abstain_below, notice_below))
