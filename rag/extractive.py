"""Extractive answerer: offline and instant. Every sentence of the answer is copied from a cited source.

Content questions get the retrieved abstracts' sentences that cover the question's terms best
(IDF-weighted, stemmed), plus the sentence of the same abstract that best covers what those miss (a
two-part question gets both parts); questions about authors, arXiv ids, dates, venues or project/code
links are answered from the paper's merged record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Generator, Iterable

import Stemmer

from rag.answerer import Draft, Turn
from rag.citations import neutralize
from rag.models import Hit, Paper
from rag.sentences import split_sentences

_STEM = Stemmer.Stemmer("english")
STOPWORDS = frozenset(
    "a an and are as at be by can could did do does for from has have how i in into is it its of on or "
    "that the their them then there these they this those to was were what when where which who whom whose "
    "why will with would paper papers work collection method approach propose proposed model models use used "
    "using show shows me tell about any some our we you your".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:[.\-][a-z0-9]+)*")

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


def terms(text: str) -> list[str]:
    """Stemmed content words (the same analysis on question and sentences)."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    return _STEM.stemWords(words)


def asks_for(question: str) -> str | None:
    """Which record field the question asks for, if any."""
    for field_name, pattern in _ASKS.items():
        if pattern.search(question):
            return field_name
    return None


def short_label(paper: Paper) -> str:
    if paper.title:
        return f"“{paper.title}”"
    who = paper.authors[0] + (" et al." if len(paper.authors) > 1 else "") if paper.authors else "An untitled paper"
    return f"{who} ({paper.year})" if paper.year else who


class ExtractiveAnswerer:
    """Compose an answer from source sentences, each followed by its citation number."""

    name = "extractive"

    def __init__(self, document_frequency: dict[str, int], documents: int) -> None:
        self.df = document_frequency
        self.n = max(documents, 1)

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> ExtractiveAnswerer:
        df: dict[str, int] = {}
        count = 0
        for text in texts:
            count += 1
            for term in set(terms(text)):
                df[term] = df.get(term, 0) + 1
        return cls(df, count)

    def idf(self, term: str) -> float:
        return math.log(1 + (self.n - self.df.get(term, 0) + 0.5) / (self.df.get(term, 0) + 0.5))

    def coverage(self, question: str, text: str) -> float:
        """Share of the question's IDF weight whose terms appear in ``text`` (0..1)."""
        wanted = set(terms(question))
        if not wanted:
            return 0.0
        have = set(terms(text))
        total = sum(self.idf(t) for t in wanted)
        return sum(self.idf(t) for t in wanted & have) / total

    def _record_answer(self, field_name: str, hit: Hit) -> tuple[str, str]:
        paper, label = hit.paper, short_label(hit.paper)
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
                return f"{label} was posted on {paper.date} (arXiv:{paper.arxiv_id}) [1].", f"Created: {paper.date}"
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

    def _sentences(self, question: str, hits: list[Hit]) -> list[tuple[float, int, int, str]]:
        """(score, hit number, position, sentence) for every sentence of the retrieved abstracts."""
        wanted = set(terms(question))
        weights = {t: self.idf(t) for t in wanted}
        total = sum(weights.values()) or 1.0
        wants_number = bool(re.search(r"\b(how (much|many|fast|large)|what (fid|score|accuracy|rate)|by how)\b|"
                                      r"\b(fid|accuracy|speed|percent|%|improve|reduce|times)\b", question, re.I))
        scored = []
        for number, hit in enumerate(hits, 1):
            title_terms = set(terms(hit.paper.title or ""))
            title_share = sum(w for t, w in weights.items() if t in title_terms) / total
            for position, sentence in enumerate(split_sentences(hit.paper.abstract)):
                have = set(terms(sentence))
                score = sum(w for t, w in weights.items() if t in have) / total
                score += 0.3 * title_share + 0.15 / number
                if wants_number and re.search(r"\d", sentence):
                    score += 0.1
                scored.append((score, number, position, sentence))
        return sorted(scored, key=lambda s: -s[0])

    def _complement(self, question: str, sentences: list[tuple[int, str]], picked: list[tuple[int, str]],
                    min_gain: float = 0.1) -> tuple[int, str] | None:
        """The sentence (of the same abstract) covering most of the question's weight the picked ones miss,
        if it covers at least ``min_gain`` of it: a two-part question ("how much …, and how many …") gets
        both parts answered."""
        weights = {t: self.idf(t) for t in set(terms(question))}
        total = sum(weights.values()) or 1.0
        covered = {t for _, s in picked for t in terms(s)}
        best_gain, best = 0.0, None
        for position, sentence in sentences:
            if (position, sentence) in picked:
                continue
            have = set(terms(sentence))
            gain = sum(w for t, w in weights.items() if t not in covered and t in have) / total
            if gain > best_gain:
                best_gain, best = gain, (position, sentence)
        return best if best_gain >= min_gain else None

    def generate(self, question: str, hits: list[Hit], history: list[Turn]) -> Generator[str, None, Draft]:
        field_name = asks_for(question)
        if field_name:
            text, passage = self._record_answer(field_name, hits[0])
            yield text
            return Draft(text=text, passages={1: passage})
        ranked = self._sentences(question, hits)
        best = ranked[0][0]
        many = bool(_LIST.search(question))
        chosen: dict[int, list[tuple[int, str]]] = {}
        for score, number, position, sentence in ranked:
            if score < best * (0.5 if many else 0.7):
                break
            picked = chosen.setdefault(number, []) if (many or not chosen or number in chosen) else None
            if picked is None or len(picked) >= 2 or len(chosen) > (4 if many else 1):
                continue
            picked.append((position, sentence))
        chosen = {n: s for n, s in chosen.items() if s}
        if not many and len(chosen) == 1:
            number, picked = next(iter(chosen.items()))
            extra = self._complement(question, [(p, s) for _, n, p, s in ranked if n == number], picked)
            if extra:
                picked.append(extra)
        parts, passages = [], {}
        for number, picked in chosen.items():
            picked.sort()
            body = " ".join(f"{neutralize(sentence)} [{number}]" for _, sentence in picked)
            parts.append(f"{short_label(hits[number - 1].paper)}: {body}")
            passages[number] = " ".join(sentence for _, sentence in picked)
        for number, part in enumerate(parts):
            yield ("\n" if number else "") + part
        return Draft(text="\n".join(parts), passages=passages)
