"""An answer's references out: the cited papers as BibTeX (bibtexparser's writer) and RIS (rispy), in a form
that reference managers and `rag ingest` (rag/ingest/references.py) read back: same titles, authors, years,
arXiv ids and DOIs. Abstracts are left out unless asked for, to keep a reference list short (`rag ingest`
rejects entries without one, so an export meant for ingesting elsewhere needs ``abstracts=True``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import bibtexparser
import rispy
from bibtexparser import middlewares
from bibtexparser.library import Library
from bibtexparser.middlewares.names import parse_single_name_into_parts
from bibtexparser.model import Entry, Field
from pylatexenc.latexencode import RULE_REGEX, UnicodeToLatexConversionRule, UnicodeToLatexEncoder

from rag.models import Paper

# A key BibTeX and biber read back as written (no spaces, braces, commas, quotes, "=", "#", "%", "~", "\").
_SAFE_KEY = re.compile(r"[^\s,{}()=#%\"'\\~]+")
# LaTeX turns "--", "''", "``", "?`" and "!`" into other characters (–, ”, “, ¿, ¡): an empty group between
# the two keeps them as typed; '"' and '^' are braced rather than spelled as macros that read back as other characters.
_LITERAL = [(re.compile(r"-(?=-)|'(?=')|`(?=`)|[?!](?=`)"), r"\g<0>{}"), (re.compile(r'["^]'), r"{\g<0>}")]
_ENCODER = UnicodeToLatexEncoder(conversion_rules=[UnicodeToLatexConversionRule(RULE_REGEX, _LITERAL), "defaults"])
_SKIPPED_WORDS = {"a", "an", "the", "on", "of", "in", "for", "to", "with", "from", "by", "and", "towards", "toward"}


def _ascii_word(text: str) -> str:
    """"Müller" -> "muller": the lower-case letters and digits of a name or word."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _last_name(name: str) -> str:
    try:
        parts = parse_single_name_into_parts(name, strict=False)
        return " ".join(parts.last) or name
    except Exception:  # noqa: BLE001 - a name BibTeX cannot split: its last word will do
        return name.split()[-1] if name.split() else name


def _made_key(paper: Paper) -> str:
    """<first author's last name><year><first title word>, as Google Scholar makes them: "muller2023smart"."""
    who = _ascii_word(_last_name(paper.authors[0])) if paper.authors else ""
    words = [_ascii_word(w) for w in (paper.title or "").split()]
    word = next((w for w in words if w and w not in _SKIPPED_WORDS), "")
    return f"{who or 'anon'}{paper.year or ''}{word}"


def _own_key(paper: Paper) -> str | None:
    """The key the paper had in a BibTeX file it was ingested from, when BibTeX can read it back."""
    for source in paper.sources:
        key = source.fields.get("key")
        if source.layout == "bibtex" and isinstance(key, str) and _SAFE_KEY.fullmatch(key):
            return key
    return None


def citation_keys(papers: Sequence[Paper]) -> list[str]:
    """One unique citation key per paper: its own BibTeX key, else a made one; repeats get "_2", "_3", …"""
    keys: list[str] = []
    for paper in papers:
        base = _own_key(paper) or _made_key(paper)
        key, number = base, 1
        while key in keys:
            number += 1
            key = f"{base}_{number}"
        keys.append(key)
    return keys


def _last_first(name: str) -> str:
    """"Jan van der Berg" -> "van der Berg, Jan": the form BibTeX and RIS read without guessing."""
    try:
        return parse_single_name_into_parts(name, strict=False).merge_last_name_first or name
    except Exception:  # noqa: BLE001 - kept as written
        return name


def bibtex(papers: Sequence[Paper], abstracts: bool = False) -> str:
    """BibTeX entries for the papers: @article with the venue as journal, else @misc; arXiv papers with eprint /
    archivePrefix / url. Titles, authors and venues are LaTeX-encoded and the title braced, so special characters
    and capitals survive BibTeX styles and re-import."""
    if not papers:
        return ""
    entries = []
    for paper, key in zip(papers, citation_keys(papers), strict=True):
        text = [("author", " and ".join(_last_first(a) for a in paper.authors)), ("title", paper.title),
                ("journal", paper.venue), ("abstract", paper.abstract if abstracts else None)]
        entries.append(Entry("article" if paper.venue else "misc", key,
                             [Field(name, value) for name, value in text if value]))
    # Only the prose is encoded: links and ids are written verbatim ("_" in a DOI is not "\_"). "$" is escaped too
    # (no math mode kept): a lone "$" in a title would otherwise swallow everything up to the next one.
    library = middlewares.LatexEncodingMiddleware(encoder=_ENCODER).transform(Library(entries))
    for paper, entry in zip(papers, library.entries, strict=True):
        if "title" in entry:
            entry.set_field(Field("title", "{" + entry["title"] + "}"))  # keep "GANs" from becoming "gans"
        month = paper.date[5:7] if paper.date and len(paper.date) >= 7 else None
        verbatim = [("year", paper.year and str(paper.year)), ("month", month and str(int(month))),
                    ("doi", paper.doi), ("eprint", paper.arxiv_id), ("archiveprefix", paper.arxiv_id and "arXiv"),
                    ("url", paper.url or paper.doi_url)]
        for name, value in verbatim:
            if value:
                entry.set_field(Field(name, value))
    return bibtexparser.write_string(library)


class _RisWriter(rispy.RisWriter):
    """rispy's writer without its "1." line before each reference, which is not RIS."""

    def set_header(self, count: int) -> str:
        return ""


def ris(papers: Sequence[Paper], abstracts: bool = False) -> str:
    """RIS references for the papers (TY JOUR; ID is the citation key; authors "Last, First")."""
    if not papers:
        return ""
    references = []
    for paper, key in zip(papers, citation_keys(papers), strict=True):
        reference: dict[str, object] = {"type_of_reference": "JOUR", "id": key}
        values = {"title": paper.title, "authors": [_last_first(a) for a in paper.authors],
                  "year": paper.year and str(paper.year),
                  "date": paper.date and "/".join(paper.date.split("-")) + "/",  # RIS dates: "2023/03/"
                  "secondary_title": paper.venue, "abstract": paper.abstract if abstracts else None,
                  "doi": paper.doi, "urls": [u for u in (paper.url or paper.doi_url,) if u]}
        reference.update({name: value for name, value in values.items() if value})
        references.append(reference)
    return rispy.dumps(references, implementation=_RisWriter)
