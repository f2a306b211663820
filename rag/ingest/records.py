"""Raw records (one paper as one file gives it) and the structured JSONL / CSV readers."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field

from rag.ingest.authors import normalize_authors

# New-style ids are YYMM.NNNN until 2014 and YYMM.NNNNN from 2015: knowing which lets us split
# "arXiv:2211.123393D-aware…" correctly into 2211.12339 + "3D-aware…".
_NEW_ID = r"(?:(?:0[7-9]|1[0-4])\d{2}\.\d{4}|(?:1[5-9]|[2-9]\d)\d{2}\.\d{5})"
_OLD_ID = r"(?:[a-z\-]+(?:\.[A-Z]{2})?/\d{7})"
ARXIV_ID = re.compile(rf"(?:{_NEW_ID}|{_OLD_ID})(?:v\d+)?")
# The same, standing alone in a value: "2211.123456" is junk, not 2211.12345 with a "6" after it.
_ARXIV_ID_ALONE = re.compile(rf"(?<![\d.]){ARXIV_ID.pattern}(?!\d)")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_DOI = re.compile(r"10\.\d{4,9}/\S+")
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
# arXiv registers a DataCite DOI for every paper (10.48550/arXiv.2311.18208): the arXiv id in another form.
_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$")


@dataclass
class RawRecord:
    """One paper as one place in one file gives it."""

    path: str
    line: int
    layout: str
    abstract: str
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    arxiv_id: str | None = None
    date: str | None = None
    comment: str | None = None
    doi: str | None = None  # normalised (see normalize_doi)
    venue: str | None = None  # journal or proceedings, as a reference manager gives it
    key: str | None = None  # the citation key (BibTeX key, RIS ID, CSL id) in the file it came from

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


class RecordError(ValueError):
    """A record that cannot be used; the message says why."""


def clean(text: str | None) -> str | None:
    """Collapse whitespace; empty becomes None."""
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text or None


def normalize_arxiv_id(value: str | None) -> str | None:
    """"arXiv:2211.12339v2" / "https://arxiv.org/abs/2211.12339" -> "2211.12339"; raises on junk."""
    value = clean(value)
    if not value:
        return None
    match = _ARXIV_ID_ALONE.search(value)
    if not match:
        raise RecordError(f"not an arXiv id: {value[:40]!r}")
    return re.sub(r"v\d+$", "", match.group(0))


def is_arxiv_id(value: str | None) -> bool:
    """Whether the value is exactly one arXiv id as arXiv issues them (version suffix allowed)."""
    return bool(value) and ARXIV_ID.fullmatch(value.strip()) is not None


def normalize_doi(value: str | None) -> str | None:
    """"https://doi.org/10.1000/XYZ" / "doi:10.1000/xyz" -> "10.1000/xyz" (DOIs ignore case); raises on junk."""
    value = clean(value)
    if not value:
        return None
    doi = _DOI_PREFIX.sub("", value).lower()
    if not _DOI.fullmatch(doi):
        raise RecordError(f"not a DOI (want 10.NNNN/…): {value[:60]!r}")
    return doi


def arxiv_id_of_doi(doi: str | None) -> str | None:
    """The arXiv id a normalised arXiv DOI (10.48550/arxiv.ID) stands for, else None."""
    match = _ARXIV_DOI.match(doi or "")
    return normalize_arxiv_id(match.group(1)) if match and is_arxiv_id(match.group(1)) else None


def normalize_date(value: str | None) -> str | None:
    """ISO date YYYY-MM-DD (a YYYY-MM or YYYY prefix is kept as given); raises on junk."""
    value = clean(value)
    if not value:
        return None
    match = _DATE.match(value)
    if match:
        try:
            return dt.date.fromisoformat(match.group(0)).isoformat()
        except ValueError:
            raise RecordError(f"not a calendar date: {value[:40]!r}") from None
    if re.fullmatch(r"\d{4}(-\d{2})?", value):
        if len(value) == 7 and not 1 <= int(value[5:]) <= 12:
            raise RecordError(f"not a calendar month: {value[:40]!r}")
        return value
    raise RecordError(f"not a date (want YYYY-MM-DD): {value[:40]!r}")


def validate(record: RawRecord, max_abstract_chars: int) -> RawRecord:
    """Check and normalise a record in place; raises RecordError naming the field."""
    record.abstract = clean(record.abstract) or ""
    if not record.abstract:
        raise RecordError("no abstract")
    if len(record.abstract) > max_abstract_chars:
        raise RecordError(f"abstract is {len(record.abstract):,} characters (limit {max_abstract_chars:,})")
    if len(record.abstract.split()) < 8:
        raise RecordError("abstract has fewer than 8 words")
    record.title = clean(record.title)
    record.comment = clean(record.comment)
    record.venue = clean(record.venue)
    record.key = clean(record.key)
    if record.title and len(record.title) > 500:
        raise RecordError(f"title is {len(record.title):,} characters")
    try:  # listings give the date as matched ("Created: 2023-02-30"); structured files were checked already
        record.date = normalize_date(record.date)
    except RecordError as exc:
        raise RecordError(f"field 'date': {exc}") from None
    return record


# Field names accepted in structured files, first match wins (the arXiv metadata dump uses
# id / title / authors / abstract / update_date / comments).
_ALIASES = {
    "title": ("title",),
    "abstract": ("abstract", "summary"),
    "authors": ("authors", "author", "authors_parsed"),
    "arxiv_id": ("arxiv_id", "arxiv", "id", "arxiv-id"),
    "date": ("date", "published", "created", "update_date"),
    "comment": ("comment", "comments", "venue", "journal-ref"),
}


def from_mapping(row: dict, path: str, line: int, layout: str) -> RawRecord:
    """A RawRecord from a JSON object or CSV row; raises RecordError naming the bad field."""
    lowered = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    values: dict[str, object] = {}
    for name, keys in _ALIASES.items():
        for key in keys:
            if lowered.get(key) not in (None, ""):
                values[name] = lowered[key]
                break
    # A generic "id" column is only an arXiv id when it looks like one (user files may number rows).
    if "arxiv_id" in values and "arxiv_id" not in lowered and "arxiv" not in lowered:
        if not ARXIV_ID.fullmatch(str(values["arxiv_id"]).strip()):
            del values["arxiv_id"]
    for name in ("title", "abstract", "comment", "arxiv_id", "date"):
        if name in values and not isinstance(values[name], str | int | float):
            raise RecordError(f"field {name!r} must be a string, got {type(values[name]).__name__}")
    authors = values.get("authors", [])
    if isinstance(authors, list) and all(isinstance(a, list) for a in authors):
        # arXiv dump "authors_parsed": [["Last", "First", ""], …]
        authors = [" ".join(x for x in reversed(a[:2]) if x) for a in authors]
    if not isinstance(authors, str | list):
        raise RecordError(f"field 'authors' must be a string or a list, got {type(authors).__name__}")
    try:
        arxiv_id = normalize_arxiv_id(str(values["arxiv_id"])) if "arxiv_id" in values else None
    except RecordError as exc:
        raise RecordError(f"field 'arxiv_id': {exc}") from None
    try:
        date = normalize_date(str(values["date"])) if "date" in values else None
    except RecordError as exc:
        raise RecordError(f"field 'date': {exc}") from None
    return RawRecord(
        path=path,
        line=line,
        layout=layout,
        abstract=str(values.get("abstract", "")),
        title=str(values["title"]) if "title" in values else None,
        authors=normalize_authors(authors),
        arxiv_id=arxiv_id,
        date=date,
        comment=str(values["comment"]) if "comment" in values else None,
    )


# A record is a flat object: nesting deep enough to exhaust the parser's stack is a malformed (or hostile) file.
DEPTH_NOTE = "a record is one flat JSON object"


def json_object(line: str) -> dict:
    """The JSON object on one line; RecordError saying why when the line is not one."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise RecordError(f"invalid JSON: nested deeper than Python's parser allows ({DEPTH_NOTE})") from None
    if not isinstance(row, dict):
        raise RecordError(f"expected a JSON object, got {type(row).__name__}")
    return row


def parse_jsonl(text: str, path: str) -> tuple[list[RawRecord], list[tuple[str, str]]]:
    """Records from JSON Lines (or one JSON array); bad lines are reported, the rest kept."""
    records: list[RawRecord] = []
    failed: list[tuple[str, str]] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(stripped)
        except json.JSONDecodeError as exc:
            return [], [(f"{path}:{exc.lineno}", f"invalid JSON: {exc.msg}")]
        except RecursionError:
            return [], [(f"{path}:1", f"invalid JSON: nested deeper than Python's parser allows ({DEPTH_NOTE})")]
        items = [(1, row) for row in rows]
    else:
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append((number, json_object(line)))
            except RecordError as exc:
                failed.append((f"{path}:{number}", str(exc)))
    for number, row in items:
        if not isinstance(row, dict):
            failed.append((f"{path}:{number}", f"expected a JSON object, got {type(row).__name__}"))
            continue
        try:
            records.append(from_mapping(row, path, number, "jsonl"))
        except RecordError as exc:
            failed.append((f"{path}:{number}", str(exc)))
    return records, failed


def parse_csv(text: str, path: str) -> tuple[list[RawRecord], list[tuple[str, str]]]:
    """Records from a CSV file (a TSV file when the path ends in .tsv) with a header row naming the fields."""
    csv.field_size_limit(64 * 1024 * 1024)
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if not reader.fieldnames or not {f.strip().lower() for f in reader.fieldnames} & set(_ALIASES["abstract"]):
        return [], [(f"{path}:1", "CSV header has no 'abstract' column")]
    records: list[RawRecord] = []
    failed: list[tuple[str, str]] = []
    try:
        for row in reader:
            number = reader.line_num
            if None in row:
                failed.append((f"{path}:{number}", "more cells than header columns"))
                continue
            try:
                records.append(from_mapping(row, path, number, "csv"))
            except RecordError as exc:
                failed.append((f"{path}:{number}", str(exc)))
    except csv.Error as exc:
        failed.append((f"{path}:{reader.line_num}", f"CSV error: {exc}"))
    return records, failed
