"""Extractive answerer: offline and instant. Every sentence of the answer is copied from a cited source.

Content questions and claims: every sentence of the retrieved abstracts is scored by the IDF-weighted share
of the question's terms it covers. The answer leads with the best sentence; each retrieved paper whose best
sentence carries comparable evidence is cited with its own statement (one line per paper, the strongest
first, a "Two papers report on this." lead when several do; named by title when the question asks which
paper or method); the first paper also gets the sentence that best
covers what the lead misses (a two-part question gets both parts). Long sentences are cut to the clauses,
between semicolons, that carry the question's terms. In a conversation, sentences an earlier answer already
gave are passed over when others carry evidence, so a follow-up never repeats the previous answer.
Questions about authors, arXiv ids, dates, venues or project/code links are answered from the merged record.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass

from rag.answering.base import Draft, Turn, papers_lead
from rag.answering.citations import neutralize
from rag.answering.termstats import TermStats
from rag.models import Hit, Paper
from rag.text import split_sentences, terms

# Questions about the record rather than the abstract's content.
_ASKS = {
    "authors": re.compile(r"\bwho\b.*\b(wrote|write|writes|authored|authors?|behind)\b|\bauthors?\b|\bwritten by\b", re.I),
    # "When was X posted?", not "what FID does X reach when trained on …" nor "When learning …, which …".
    "date": re.compile(r"\b(when|(what|which) (year|date|month))\s+(was|were|did|is|has|had)\b|"
                       r"\b(date|year)\b.*\b(posted|created|submitted|released)\b", re.I),
    "arxiv_id": re.compile(r"\barxiv\b.*\b(id|identifier|number)\b|\b(id|identifier)\b.*\barxiv\b", re.I),
    "venue": re.compile(r"\b(venue|conference|accepted|published|appear|submitted|journal)\b", re.I),
    "links": re.compile(r"\b(project (page|website)|home ?page|web ?page|url|github|where is the code|"
                        r"code\b.*\b(released|available|hosted|link))\b", re.I),
}
_URL = re.compile(r"https?://\S+")
_LIST = re.compile(r"\b(which|what|list|name)\b.*\bpapers\b|\bpapers\b.*\b(that|which|about|on|use|using)\b", re.I)
# Questions whose answer *is* a paper ("Which work proposes …?", "Is there a method that …?", "List papers on …"):
# each cited line then names its paper, since the name is what was asked for.
_IDENTIFY = re.compile(r"\b(which|what)\s+(?:\w+\s+){0,2}?(papers?|works?|stud(y|ies)|articles?|surveys?|reviews?|"
                       r"approach(es)?|methods?|models?|frameworks?|systems?|techniques?|publications?)\b|"
                       r"\bis there (a|an|any)\b|\bare there (any )?(papers|works|studies|methods)\b|"
                       r"\b(name|list|find) (the |a |any )?(papers?|works?|stud(y|ies)|methods?)\b", re.I)
# The sentence in which a paper names its contribution ("we present UniAD, a …", "… which we call SbS-KD"):
# an introducing verb and a coined name (two capitals or a capital and a digit, as in "ViTGAN", "Res-Tuning").
_NAMING = re.compile(r"\b(propos|present|introduc|develop|call|dub|nam|term|coin)\w*\b.*?"
                     r"\b(?=[A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*[A-Z0-9])[A-Z][A-Za-z0-9-]+\b|"
                     r"\b(?=[A-Za-z0-9-]*[A-Z][A-Za-z0-9-]*[A-Z0-9])[A-Z][A-Za-z0-9-]+\b,?\s+(a|an|the)\s+"
                     r"(new|novel|simple|unified|general)\b")
_WANTS_NUMBER = re.compile(r"\b(how (much|many|fast|large)|what (fid|score|accuracy|rate)|by how)\b|"
                           r"\b(fid|accuracy|speed|percent|%|improve|reduce|times)\b", re.I)

# A secondary paper is cited when its best sentence covers this share of what the lead sentence covers,
# and at least MIN_EVIDENCE of the question's weight: "answer-bearing", not merely on topic.
SECONDARY_SHARE = 0.7
MIN_EVIDENCE = 0.3
MAX_PAPERS, MAX_PAPERS_LIST = 3, 5
LONG_SENTENCE = 40  # words; longer sentences are cut to their answering clauses where that is safe


def asks_for(question: str) -> str | None:
    """Which record field the question asks for, if any."""
    for field_name, pattern in _ASKS.items():
        if pattern.search(question):
            return field_name
    return None


@dataclass
class _Sentence:
    score: float  # coverage plus small preferences (title match, rank, a figure where one is asked)
    coverage: float  # IDF share of the question's terms the sentence covers
    number: int  # 1-based hit number
    position: int
    text: str


def trim(sentence: str, weights: dict[str, float]) -> str:
    """A long sentence cut to the clauses (between semicolons) that carry the question's terms.

    Only semicolons are cut at: each side of one is a clause that stands on its own, so the kept text is still
    a verbatim, self-contained part of the source. Short sentences, and sentences whose answering terms are
    spread over every clause, come back whole.
    """
    if len(sentence.split()) <= LONG_SENTENCE or ";" not in sentence:
        return sentence
    clauses = [c.strip() for c in sentence.split(";")]
    kept = [c for c in clauses if set(terms(c)) & set(weights)]
    if not kept or len(kept) == len(clauses):
        return sentence
    text = "; ".join(kept)  # kept as written (no re-capitalising): a verbatim part of the source
    if len(text.split()) < 8:
        return sentence
    return text if text.endswith((".", "!", "?")) else text + "."


def _name(paper: Paper) -> str | None:
    """How an answer to "which paper …?" names a paper: its title, its authors, or its arXiv id."""
    if paper.title or paper.authors:
        return paper.short_label
    return f"arXiv:{paper.arxiv_id}" if paper.arxiv_id else None


class ExtractiveAnswerer:
    """Compose an answer from source sentences, each followed by its citation number."""

    name = "extractive"

    def __init__(self, stats: TermStats) -> None:
        self.stats = stats

    def _record_answer(self, field_name: str, hit: Hit) -> tuple[str, str]:
        paper, label = hit.paper, hit.paper.short_label
        arxiv = f" (arXiv:{paper.arxiv_id})" if paper.arxiv_id else ""
        if field_name == "authors":
            value = ", ".join(paper.authors) if paper.authors else None
            return (f"{label} is by {value} [1]." if value else
                    f"The collection does not list the authors of {label} [1]."), value or paper.label
        if field_name == "arxiv_id":
            value = paper.arxiv_id
            return (f"{label} is arXiv:{value} ({paper.url}) [1]." if value else
                    f"The collection gives no arXiv id for {label} [1]."), f"arXiv:{value}" if value else paper.label
        if field_name == "date":
            if paper.date:
                return f"{label} was posted on {paper.date}{arxiv} [1].", f"Created: {paper.date}"
            if paper.year:
                return (f"{label} dates from {paper.year}, going by its arXiv id {paper.arxiv_id} [1].",
                        f"arXiv:{paper.arxiv_id}")
            return f"The collection gives no date for {label} [1].", paper.label
        notes = split_sentences(paper.comment or "")
        if field_name == "links":
            notes = [n for n in notes if _URL.search(n)]
            if not notes:
                where = f"; its arXiv page is {paper.url}" if paper.url else ""
                return f"The collection lists no project page or code link for {label}{where} [1].", paper.label
        if not notes:
            return f"The collection gives no venue for {label} [1].", paper.label
        # Every sentence of the note carries the citation (a multi-sentence note is several claims).
        cited = " ".join(f"{n.rstrip('.')} [1]." for n in notes)
        return f"For {label} the listing notes: {cited}", " ".join(notes)

    def _score(self, question: str, weights: dict[str, float], hits: list[Hit], said: str) -> list[_Sentence]:
        """Every sentence of the retrieved abstracts, best first; sentences an earlier answer gave sink last."""
        wants_number = bool(_WANTS_NUMBER.search(question))
        many = bool(_LIST.search(question))
        out = []
        for number, hit in enumerate(hits, 1):
            title_terms = terms(hit.paper.title or "")
            title_share = self.stats.coverage(weights, title_terms)
            # "Which papers by A and B …?": for a list, what the record says (title, authors) is evidence too.
            record_terms = set(title_terms + terms(" ".join(hit.paper.authors))) if many else set()
            for position, sentence in enumerate(split_sentences(hit.paper.abstract)):
                have = set(terms(sentence))
                coverage = self.stats.coverage(weights, have)
                score = coverage + 0.3 * title_share + 0.15 / number
                if record_terms:
                    coverage = self.stats.coverage(weights, have | record_terms)
                if wants_number and re.search(r"\d", sentence):
                    score += 0.1
                if said and neutralize(sentence) in said:
                    score -= 10.0  # already shown in this conversation
                out.append(_Sentence(score, coverage, number, position, sentence))
        return sorted(out, key=lambda s: -s.score)

    def _complement(self, weights: dict[str, float], candidates: list[_Sentence], picked: list[_Sentence],
                    min_gain: float = 0.1) -> _Sentence | None:
        """The sentence covering most of the question's weight the picked ones miss, if it adds ``min_gain``."""
        total = sum(weights.values()) or 1.0
        covered = {t for s in picked for t in terms(s.text)}
        best_gain, best = 0.0, None
        for sentence in candidates:
            if sentence in picked or sentence.score < 0:
                continue
            gain = sum(w for t, w in weights.items() if t not in covered and t in set(terms(sentence.text))) / total
            if gain > best_gain:
                best_gain, best = gain, sentence
        return best if best_gain >= min_gain else None

    def _choose(self, question: str, weights: dict[str, float], ranked: list[_Sentence]) -> dict[int, list[_Sentence]]:
        """Sentences to cite, by hit number, strongest paper first."""
        many = bool(_LIST.search(question))
        lead = ranked[0]
        chosen: dict[int, list[_Sentence]] = {lead.number: [lead]}
        for sentence in ranked[1:]:
            if len(chosen) >= (MAX_PAPERS_LIST if many else MAX_PAPERS):
                break
            if sentence.number in chosen or sentence.score < 0:
                continue
            share = 0.5 if many else SECONDARY_SHARE
            if sentence.coverage >= max(MIN_EVIDENCE, share * lead.coverage):
                chosen[sentence.number] = [sentence]
        first = chosen[lead.number]
        second = next((s for s in ranked[1:] if s.number == lead.number and s.score >= 0.7 * lead.score), None)
        if second:  # a close second sentence of the answering paper often holds the rest of the answer
            first.append(second)
        extra = self._complement(weights, [s for s in ranked if s.number == lead.number], first)
        if extra:
            first.append(extra)
        if _IDENTIFY.search(question) or many:  # "which work …?": each paper's naming sentence says which
            for number, picked in chosen.items():
                if not any(_NAMING.search(s.text) for s in picked):
                    naming = next((s for s in ranked if s.number == number and s.score >= 0
                                   and _NAMING.search(s.text)), None)
                    if naming:
                        picked.append(naming)
        return chosen

    def generate(self, question: str, hits: list[Hit], history: list[Turn]) -> Generator[str, None, Draft]:
        field_name = asks_for(question)
        if field_name:
            text, passage = self._record_answer(field_name, hits[0])
            yield text
            return Draft(text=text, passages={1: passage})
        weights = self.stats.weights(question)
        said = " ".join(turn.answer for turn in history)
        chosen = self._choose(question, weights, self._score(question, weights, hits, said))
        name_papers = bool(_IDENTIFY.search(question) or _LIST.search(question))
        lines, passages = [], {}
        for number, picked in chosen.items():
            sentences = [trim(s.text, weights) for s in picked]  # the lead sentence first: it answers
            body = " ".join(f"{neutralize(s)} [{number}]" for s in sentences)
            name = _name(hits[number - 1].paper) if name_papers else None
            if name:  # the paper's name comes from its record, which the citation also covers
                body = f"{neutralize(name)}: {body}"
            lines.append(body)
            passages[number] = " ".join(sentences)
        if len(lines) > 1:
            lines.insert(0, papers_lead(len(lines)))
        for i, line in enumerate(lines):
            yield ("\n" if i else "") + line
        return Draft(text="\n".join(lines), passages=passages)
