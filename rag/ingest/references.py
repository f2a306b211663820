"""Reference-manager exports in: BibTeX (.bib), RIS (.ris) and CSL-JSON (.json), as Zotero, Mendeley and JabRef
write them.

Each reader returns records, (file:line, why) for entries it rejects and (file:line, what) for values it drops
with a warning, like the other readers. An entry without an abstract is rejected by name, never guessed at; a
malformed DOI, arXiv id or date is dropped with a warning and the entry kept. DOIs, venues, citation keys and
years are kept as provenance; an arXiv DOI (10.48550/arXiv.ID) becomes the arXiv id.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import bibtexparser
import rispy
from bibtexparser import middlewares
from bibtexparser.middlewares.names import NameParts, parse_single_name_into_parts
from bibtexparser.model import DuplicateBlockKeyBlock, Entry, MiddlewareErrorBlock, ParsingFailedBlock

from rag.ingest.authors import normalize_authors
from rag.ingest.records import (ARXIV_ID, RawRecord, RecordError, arxiv_id_of_doi, clean, normalize_arxiv_id,
                                normalize_date, normalize_doi)

# Parse errors come back as failed blocks, reported per entry below; without a handler of its own, Python's
# last-resort handler would also print bibtexparser's log lines to stderr in the middle of `rag ingest`.
logging.getLogger("bibtexparser").addHandler(logging.NullHandler())

Found = tuple[list[RawRecord], list[tuple[str, str]], list[tuple[str, str]]]  # records, failed, warnings

# An arXiv id where a reference manager puts one: an arxiv.org link or an "arXiv:ID" note / journal.
_ARXIV_IN_TEXT = re.compile(rf"(?i:arxiv\.org/(?:abs|pdf)/|arxiv:\s*)({ARXIV_ID.pattern})(?!\d)")
_YEAR = re.compile(r"^\s*(\d{4})(?:[-/](\d{1,2}))?")  # "2023", "2023-03-15", RIS "2023/03/15/"
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_BIB_VENUES = ("journal", "journaltitle", "booktitle")
_RIS_VENUES = ("secondary_title", "alternate_title3", "journal_name", "alternate_title1")  # T2, JF, JO, J2
_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -(?: |$)")
# What LaTeX decoding can change: macros, groups, math, comments, ties and ligatures ("--", "``", "''", "?`").
_LATEX = re.compile(r"[\\{}$%~]|--|``|''|[?!]`")


@dataclass
class _Found:
    records: list[RawRecord] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def result(self, path: str, what: str) -> Found:
        if not self.records and not self.failed:
            self.failed.append((f"{path}:1", f"no {what} found"))
        return self.records, self.failed, self.warnings


def _name(key: str | None, title: str | None = None) -> str:
    """How a message names an entry: by its citation key, else by its title."""
    return f"entry {key!r}" if key else f"entry {title[:60]!r}" if title else "entry"


def _month(value: object) -> int | None:
    """1..12 from 3, "03", "mar", "March"; None when there is no month or it is not one."""
    text = str(value or "").strip().lower()
    if text.isdigit():
        return int(text) if 1 <= int(text) <= 12 else None
    return _MONTHS.index(text[:3]) + 1 if text[:3] in _MONTHS else None


def _date(year: object, month: object, where: str, name: str, found: _Found) -> str | None:
    """"YYYY" or "YYYY-MM" (a year or date field, and a month when one is given); a bad year is warned about."""
    text = str(year or "").strip()
    if not text:
        return None
    match = _YEAR.match(text)
    if not match:
        found.warnings.append((where, f"{name}: year dropped: not a year: {text[:40]!r}"))
        return None
    number = _month(match.group(2) or month)
    try:
        return normalize_date(f"{match.group(1)}-{number:02d}" if number else match.group(1))
    except RecordError as exc:
        found.warnings.append((where, f"{name}: date dropped: {exc}"))
        return None


def _add(found: _Found, path: str, line: int, layout: str, key: str | None, *, abstract: str | None,
         title: str | None = None, authors: Sequence[str] = (), doi: str | None = None, venue: str | None = None,
         year: object = None, month: object = None, eprint: str | None = None,
         arxiv_texts: Sequence[str | None] = ()) -> None:
    """Check one entry's values and keep it as a record, or report why not. ``eprint``: an id the entry says is
    an arXiv id (kept only if it is one); ``arxiv_texts``: links and notes that may name one."""
    where, title = f"{path}:{line}", clean(title)
    name = _name(key, title)
    if not clean(abstract):
        found.failed.append((where, f"{name} has no abstract (nothing to answer from)"))
        return
    date = _date(year, month, where, name, found)
    try:
        doi = normalize_doi(doi)
    except RecordError as exc:
        found.warnings.append((where, f"{name}: DOI dropped: {exc}"))
        doi = None
    arxiv_id = arxiv_id_of_doi(doi)
    if arxiv_id:
        doi = None  # arXiv's own DOI is its id in another form; a journal DOI stays the paper's DOI
    if eprint and not arxiv_id:
        try:
            arxiv_id = normalize_arxiv_id(eprint)
        except RecordError as exc:
            found.warnings.append((where, f"{name}: eprint dropped: {exc}"))
    for text in arxiv_texts:
        match = _ARXIV_IN_TEXT.search(text or "") if not arxiv_id else None
        if match:
            arxiv_id = normalize_arxiv_id(match.group(1))
    found.records.append(RawRecord(path=path, line=line, layout=layout, abstract=str(abstract), title=title,
                                   authors=normalize_authors(list(authors)), arxiv_id=arxiv_id, date=date, doi=doi,
                                   venue=clean(venue), key=clean(key)))


def _person(name: str) -> str:
    """"Last, First" (RIS, and what Zotero writes) or "First Last" -> "First Last"."""
    try:
        return parse_single_name_into_parts(name, strict=False).merge_first_name_first or name
    except Exception:  # noqa: BLE001 - an unparseable name is kept as written
        return name


# -- BibTeX -------------------------------------------------------------------------------------------------

class _LatexDecoding(middlewares.LatexDecodingMiddleware):
    """bibtexparser's LaTeX decoder, passing over values with nothing to decode: pylatexenc takes ~6 ms per
    abstract, most abstracts have no LaTeX at all, and it would turn a bare "&" into spaces."""

    def _transform_python_value_string(self, python_string: str) -> tuple[str, str]:
        if not _LATEX.search(python_string):
            return python_string, ""
        return super()._transform_python_value_string(python_string)


def _bib_failure(block: ParsingFailedBlock, path: str) -> tuple[str, str]:
    where = f"{path}:{(block.start_line or 0) + 1}"
    if isinstance(block, DuplicateBlockKeyBlock):
        kept = (block.previous_block.start_line or 0) + 1
        return where, f"{_name(block.key)}: duplicate citation key (the entry at line {kept} was kept)"
    inner = block.ignore_error_block
    key = inner.key if isinstance(inner, Entry) else None
    if isinstance(block, MiddlewareErrorBlock) and key:
        return where, f"{_name(key)}: {block.error}"[:500]
    first = " ".join((block.raw or "").split())[:40]
    why = " ".join(str(getattr(block.error, "abort_reason", None) or block.error or "unreadable").split())
    return where, f"BibTeX syntax error in {first!r}: {why}"[:500]


def read_bibtex(text: str, path: str) -> Found:
    """Records from a BibTeX file: names split at "and" in either order, LaTeX accents decoded, braces removed."""
    found = _Found()
    library = bibtexparser.parse_string(text, append_middleware=[middlewares.NormalizeFieldKeys()])
    # Links and ids are read as written: LaTeX decoding would take the "%" of a URL for a comment.
    verbatim = {entry.key: {name: entry[name] for name in ("doi", "url", "eprint") if name in entry}
                for entry in library.entries}
    # Decoded before names are split, as bibtexparser's docs do: the decoder reads strings, not name lists.
    for middleware in (_LatexDecoding(), middlewares.SeparateCoAuthors(), middlewares.SplitNameParts()):
        library = middleware.transform(library=library)
    found.failed += [_bib_failure(block, path) for block in library.failed_blocks]
    for entry in library.entries:
        values = {f.key: f.value for f in entry.fields}
        raw = verbatim.get(entry.key, {})
        text_of = {name: value for name, value in values.items() if isinstance(value, str)}
        prefix = str(values.get("archiveprefix") or values.get("eprinttype") or "").strip().lower()
        url = str(raw.get("url") or "")
        doi = raw.get("doi") or (url if "doi.org/" in url else None)
        _add(found, path, (entry.start_line or 0) + 1, "bibtex", entry.key, abstract=text_of.get("abstract"),
             title=text_of.get("title"), authors=[p.merge_first_name_first for p in values.get("author") or []
                                                  if isinstance(p, NameParts)],
             doi=doi, venue=next((text_of[v] for v in _BIB_VENUES if text_of.get(v)), None),
             year=text_of.get("year") or text_of.get("date"), month=text_of.get("month"),
             eprint=raw.get("eprint") if prefix == "arxiv" else None,
             arxiv_texts=[url, text_of.get("journal"), text_of.get("note"), text_of.get("howpublished")])
    return found.result(path, "BibTeX entries (@article{key, …})")


# -- RIS ----------------------------------------------------------------------------------------------------

def _ris_references(text: str, path: str, found: _Found) -> Iterator[tuple[int, list[str]]]:
    """(first line number, lines) of each reference, from its TY line to its ER line. A reference missing its
    ER line ends where the next one starts (with a warning), so one bad reference never swallows the next."""
    start, lines = 0, []
    for number, line in enumerate(text.splitlines(), 1):
        tag = _RIS_TAG.match(line)
        if tag and tag.group(1) == "TY":
            if lines:
                found.warnings.append((f"{path}:{start}", "reference has no 'ER  -' end line"))
                yield start, lines
            start, lines = number, [line]
        elif lines:
            lines.append(line)
            if tag and tag.group(1) == "ER":
                yield start, lines
                lines = []
    if lines:
        found.warnings.append((f"{path}:{start}", "reference has no 'ER  -' end line"))
        yield start, lines


def _first(ref: dict, *names: str) -> str | None:
    for name in names:
        value = ref.get(name)
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, str) and v.strip()), None)
        if isinstance(value, str) and value.strip():
            return value
    return None


def read_ris(text: str, path: str) -> Found:
    """Records from an RIS file (TY … ER references; Mendeley, Zotero, EndNote and JabRef tags)."""
    found = _Found()
    for line, lines in _ris_references(text, path, found):
        body = lines if _RIS_TAG.match(lines[-1]) and lines[-1].startswith("ER") else [*lines, "ER  - "]
        ref = rispy.loads("\n".join(body))[0]
        key = _first(ref, "id")
        names = [*(ref.get("authors") or []), *(ref.get("first_authors") or [])]
        notes = [*(ref.get("notes") or []), _first(ref, "note")]
        _add(found, path, line, "ris", key, abstract=_first(ref, "abstract", "notes_abstract"),
             title=_first(ref, "title", "primary_title"), authors=[_person(n) for n in dict.fromkeys(names)],
             doi=_first(ref, "doi"), venue=_first(ref, *_RIS_VENUES),
             # DA is the full date ("2023/03/15/"), PY / Y1 the year (sometimes a date too).
             year=_first(ref, "date", "year", "publication_year"),
             arxiv_texts=[*(ref.get("urls") or []), _first(ref, *_RIS_VENUES), *notes])
    return found.result(path, "RIS references (TY  - … ER  -)")


# -- CSL-JSON -----------------------------------------------------------------------------------------------

class _BadJson(RecordError):
    def __init__(self, line: int, why: str) -> None:
        super().__init__(why)
        self.line = line


def _json_items(text: str) -> Iterator[tuple[int, object]]:
    """(line, value) of each item of a top-level JSON array, or of each top-level object; _BadJson at the first
    malformed one. Decoded one item at a time, so each keeps the line it starts on."""
    decoder = json.JSONDecoder()
    space = re.compile(r"\s*")
    pos, line, counted = space.match(text).end(), 1, 0  # type: ignore[union-attr]

    def line_at(at: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, at)
        counted = at
        return line

    in_array = text.startswith("[", pos)
    if in_array:
        pos = space.match(text, pos + 1).end()  # type: ignore[union-attr]
    while pos < len(text):
        if in_array and text.startswith("]", pos):
            if space.match(text, pos + 1).end() < len(text):  # type: ignore[union-attr]
                raise _BadJson(line_at(pos), "text after the closing ']'")
            return
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise _BadJson(exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise _BadJson(line_at(pos), "invalid JSON: nested deeper than Python's parser allows") from None
        yield line_at(pos), value
        pos = space.match(text, end).end()  # type: ignore[union-attr]
        if in_array:
            if text.startswith(",", pos):
                pos = space.match(text, pos + 1).end()  # type: ignore[union-attr]
            elif not text.startswith("]", pos):
                raise _BadJson(line_at(pos), "invalid JSON: expected ',' or ']' after an item")
    if in_array:
        raise _BadJson(line_at(pos), "invalid JSON: the array is not closed with ']'")


def _is_csl_item(item: object) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        return False
    authors = item.get("author")
    return any(name in item for name in ("issued", "container-title", "DOI", "citation-key")) or (
        isinstance(authors, list) and any(isinstance(a, dict) for a in authors))


def is_csl_json(text: str) -> bool:
    """Whether JSON text is CSL-JSON (items with a CSL "type" and CSL fields), judged by its first item."""
    try:
        _, first = next(_json_items(text), (1, None))
    except Exception:  # noqa: BLE001 - not even JSON: the JSON reader says why
        return False
    return _is_csl_item(first)


def _csl_text(item: dict, name: str) -> str | None:
    value = item.get(name)
    if name == "container-title" and isinstance(value, list) and value and isinstance(value[0], str):
        value = value[0]  # some exporters give it as a list
    if value is None or isinstance(value, str | int | float) and not isinstance(value, bool):
        return None if value is None else str(value)
    raise RecordError(f"field {name!r} must be text, got {type(value).__name__}")


def _csl_authors(item: dict) -> list[str]:
    authors = item.get("author") or []
    if not isinstance(authors, list):
        raise RecordError(f"field 'author' must be a list of names, got {type(authors).__name__}")
    names = []
    for author in authors:
        if isinstance(author, str):
            names.append(author)
        elif isinstance(author, dict):
            parts = [author.get(p) for p in ("given", "dropping-particle", "non-dropping-particle", "family",
                                              "suffix")]
            names.append(str(author.get("literal") or " ".join(str(p) for p in parts if p)))
        else:
            raise RecordError(f"field 'author' holds a {type(author).__name__}, not a name")
    return names


def _csl_issued(item: dict) -> tuple[object, object]:
    """(year, month) from CSL "issued": {"date-parts": [[2023, 3, 15]]}, {"raw": "2023-03"} or a string."""
    issued = item.get("issued")
    if isinstance(issued, dict):
        parts = issued.get("date-parts")
        if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
            return parts[0][0], parts[0][1] if len(parts[0]) > 1 else None
        return issued.get("raw") or issued.get("literal"), None
    return (issued, None) if isinstance(issued, str | int) else (None, None)


def read_csl_json(text: str, path: str) -> Found:
    """Records from CSL-JSON (Zotero's "CSL JSON" export, citeproc input): an array of items, or one item."""
    found = _Found()
    try:
        for line, item in _json_items(text):
            where = f"{path}:{line}"
            if not isinstance(item, dict):
                found.failed.append((where, f"expected a CSL item object, got {type(item).__name__}"))
                continue
            key = item.get("citation-key") or item.get("id")
            key = str(key) if isinstance(key, str | int) else None
            try:
                year, month = _csl_issued(item)
                _add(found, path, line, "csl-json", key, abstract=_csl_text(item, "abstract"),
                     title=_csl_text(item, "title"), authors=_csl_authors(item), doi=_csl_text(item, "DOI"),
                     venue=_csl_text(item, "container-title"), year=year, month=month,
                     arxiv_texts=[_csl_text(item, name) for name in ("URL", "number", "note", "container-title")])
            except RecordError as exc:
                found.failed.append((where, f"{_name(key)}: {exc}"))
    except _BadJson as exc:  # the items before it are kept
        found.failed.append((f"{path}:{exc.line}", str(exc)))
    return found.result(path, "CSL-JSON items")
