"""Is each answer sentence backed by the sources it cites? An offline, ALCE-style attribution check.

For every sentence of an answer (with the ``[n]`` marks it carries), against the evidence of those
citations = the cited passages plus the cited papers' records (title, authors, arXiv id, date, year,
comment, URL, abstract):

1. verbatim: the sentence, minus its citation marks and a leading "Paper label:", occurs in the evidence
   -> ``supported`` (the extractive answerer copies sentences, so this cheap test settles most of them);
2. hard facts: every number ("1.52", "51.1%", "$1,890") must occur in the evidence, else ``unsupported``;
   every named term (inner capitals or digits: "ImageNet", "CIFAR-10"; capitalised words after the first:
   "Imagen", "Zhang") must occur too, as whole words ("Imagen" is not found in "ImageNet"), else the verdict
   is at most ``partial``;
3. content: the share of the sentence's content words (stemmed; stop words and record framing such as
   "posted", "listing", "et al." out) found in the evidence;
   only when that share alone does not make the sentence ``supported`` and an embed model is given, also the
   best cosine similarity between the sentence and a sentence of the evidence. ``supported`` at coverage
   >= 0.8 or similarity >= 0.7; ``partial`` at coverage >= 0.5 or similarity >= 0.5; else ``unsupported``.
   A sentence that cites nothing is ``unsupported``.

Limits: overlap of words, figures and embeddings is not entailment. A sentence that recombines true
figures and names into a false claim ("A beats B" where the source says B beats A), a negation, or a
figure attached to the wrong metric passes; a faithful paraphrase that shares few words and embeds far
from every source sentence fails. Numbers are compared as digit strings ("1,890" = "1890"; "two" is not
"2"). An LLM judge (eval, RAG_JUDGE_*) decides entailment where one is configured.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.answering.base import FRAMING
from rag.models import Citation, Paper, SentenceSupport
from rag.text import CITATION_GROUP, SPECIFIC, citation_numbers, name_keys, split_sentences, squashed, terms

SUPPORTED_COVERAGE = 0.8
PARTIAL_COVERAGE = 0.5
SUPPORTED_SIMILARITY = 0.7
PARTIAL_SIMILARITY = 0.5

_CITE = re.compile(r"[ \t]*" + CITATION_GROUP.pattern)
_LEADING_CITES = re.compile(r"^(?:\s*" + CITATION_GROUP.pattern + ")+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Named terms: SPECIFIC (an inner capital or a digit: "ImageNet", "GPU", "CIFAR-10"), or a capitalised word.
_CAPITALISED = re.compile(r"(?<![.!?:]\s)(?<!^)\b[A-Z][a-z]{2,}\b")
_SMALL = frozenset("the this that these those in on for from with and but our we it its their they".split())
# Words that describe the record rather than claim anything ("X was posted on …", "the listing notes: …").
_FRAMING = frozenset(terms("collection listing lists notes gives posted untitled dates going judging arxiv id "
                           "identifier page link et al"))


def split_claims(text: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences, each with the citation numbers it carries (marks removed from the text).

    Marks written after the full stop ("… 7.11. [1] Next …") belong to the sentence before them. Framing lines
    (``FRAMING``: "Two papers report on this.") are no claims and are left out.
    """
    out: list[tuple[str, list[int]]] = []
    for line in text.splitlines():
        if FRAMING.match(line.strip()):
            continue  # "Two papers report on this.": framing, no claim
        for sentence in split_sentences(line):
            lead = _LEADING_CITES.match(sentence)
            if lead and out:
                moved = [n for g in _CITE.finditer(lead.group(0)) for n in citation_numbers(g.group(1))]
                out[-1] = (out[-1][0], list(dict.fromkeys(out[-1][1] + moved)))
                sentence = sentence[lead.end():]
            numbers = [n for g in _CITE.finditer(sentence) for n in citation_numbers(g.group(1))]
            bare = " ".join(_CITE.sub("", sentence).split())
            if bare.strip(" .;,:"):
                out.append((bare, list(dict.fromkeys(numbers))))
            elif out and numbers:
                out[-1] = (out[-1][0], list(dict.fromkeys(out[-1][1] + numbers)))
    return out


def numbers(text: str) -> set[str]:
    """Digit strings of the text, thousands separators dropped ("$1,890" -> "1890")."""
    return {m.group(0).replace(",", "") for m in _NUMBER.finditer(text)}


def named_terms(sentence: str) -> set[str]:
    """Names the sentence relies on, as lower-case alphanumerics (compared like abstention does)."""
    found = {m.group(0) for m in SPECIFIC.finditer(sentence)}
    found |= {m.group(0) for m in _CAPITALISED.finditer(sentence) if m.group(0).lower() not in _SMALL}
    out = {squashed(t) for t in found}
    return {t for t in out if t and not t.isdigit()}  # bare numbers are checked as numbers


@dataclass
class _Evidence:
    text: str
    names: set[str]  # normalised tokens and runs of 2-3 of them joined ("cifar", "10", "cifar10"), for names
    spaced: str  # whitespace-normalised, for verbatim copies
    numbers: set[str]
    terms: set[str]
    sentences: list[str]


def _evidence(passages: Sequence[str], papers: Sequence[Paper]) -> _Evidence:
    text = "\n".join([*passages, *(p.record_text() for p in papers)])
    sentences = [s for p in passages for s in split_sentences(p)]
    sentences += [s for p in papers for s in ([p.title] if p.title else []) + split_sentences(p.abstract)]
    names = name_keys(text)
    return _Evidence(text, names, " ".join(text.split()), numbers(text), set(terms(text)),
                     list(dict.fromkeys(sentences)))


def _strip_label(sentence: str, papers: Sequence[Paper]) -> str:
    """Drop the "“Title”: " lead the extractive answerer puts before a paper's sentences."""
    for paper in papers:
        for label in (paper.short_label, paper.label):
            if sentence.startswith(label + ": "):
                return sentence[len(label) + 2:]
    return sentence


def _best_similarity(sentence: str, candidates: list[str], embed_model) -> float:
    if not candidates:
        return 0.0
    import numpy as np

    vectors = np.asarray(embed_model.get_text_embedding_batch([sentence, *candidates]), dtype=float)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    return float((vectors[1:] @ vectors[0]).max())


def check_sentence(sentence: str, citations: list[int], passages: Sequence[str], papers: Sequence[Paper] = (),
                   embed_model=None) -> SentenceSupport:
    """Verdict for one sentence against its cited passages and papers (see the module docstring)."""
    if not citations or not (passages or papers):
        return SentenceSupport(sentence=sentence, citations=citations, verdict="unsupported", method="uncited")
    evidence = _evidence(passages, papers)
    claim = _strip_label(sentence, papers)
    copied = " ".join(claim.split()).rstrip(".")
    if len(copied) >= 20 and copied in evidence.spaced:
        return SentenceSupport(sentence=sentence, citations=citations, verdict="supported", score=1.0,
                               method="verbatim")
    missing_numbers = sorted(numbers(sentence) - evidence.numbers)
    missing_names = sorted(t for t in named_terms(sentence) if t not in evidence.names and t.rstrip("s") not in
                           evidence.names)
    wanted = {t for t in terms(claim) if len(t) > 1} - _FRAMING  # "Aurora's" leaves an "s"
    coverage = len(wanted & evidence.terms) / len(wanted) if wanted else 1.0
    similarity, method = 0.0, "lexical"
    if not missing_numbers and coverage < SUPPORTED_COVERAGE and embed_model is not None:
        try:
            similarity, method = _best_similarity(claim, evidence.sentences, embed_model), "embedding"
        except Exception:  # noqa: BLE001 - an unreachable embeddings server must not cost the user the answer
            similarity = 0.0
    if coverage >= SUPPORTED_COVERAGE or similarity >= SUPPORTED_SIMILARITY:
        level = 2
    elif coverage >= PARTIAL_COVERAGE or similarity >= PARTIAL_SIMILARITY:
        level = 1
    else:
        level = 0
    if missing_names:
        level = min(level, 1)
    if missing_numbers:
        level = 0
    verdict = ("unsupported", "partial", "supported")[level]
    return SentenceSupport(sentence=sentence, citations=citations, verdict=verdict,  # type: ignore[arg-type]
                           missing=missing_numbers + missing_names, score=round(max(coverage, similarity), 3),
                           method=method)  # type: ignore[arg-type]


def check_answer(text: str, citations: list[Citation], embed_model=None) -> list[SentenceSupport]:
    """One SentenceSupport per sentence of an answer; ``citations`` are the Answer's (numbered) citations."""
    by_number = {c.number: c for c in citations}
    out = []
    for sentence, cited in split_claims(text):
        known = [by_number[n] for n in cited if n in by_number]
        out.append(check_sentence(sentence, cited, [c.passage for c in known], [c.paper for c in known],
                                  embed_model))
    return out
