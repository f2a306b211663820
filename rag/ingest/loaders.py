"""Read files and folders of abstracts into validated raw records, reporting whatever is unusable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from charset_normalizer import from_bytes

from rag.ingest.listings import LayoutError, parse_listing
from rag.ingest.records import RawRecord, RecordError, parse_csv, parse_jsonl, validate
from rag.ingest.references import is_csl_json, read_bibtex, read_csl_json, read_ris
from rag.ingest.stream import STREAM_ABOVE, Slice, bom_encoding, stream_jsonl

_CP1252_MARGIN = 0.05  # mess ratio (0..1) by which cp1252 may trail the best guess and still be preferred
SUFFIXES = {".txt", ".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".md", ".bib", ".ris", ""}


@dataclass
class Loaded:
    records: list[RawRecord] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def decode(data: bytes, path: str) -> tuple[str, str | None]:
    """Text of a file and a warning when it was not UTF-8; raises RecordError for binary data.

    UTF-16 and UTF-32 files with a byte-order mark (what Windows tools export) are decoded by it.
    """
    encoding = bom_encoding(data)
    if encoding:
        try:
            return data.decode(encoding), None
        except UnicodeDecodeError as exc:
            raise RecordError(f"starts with a {encoding.upper()} byte-order mark but is not valid "
                              f"{encoding.upper()} (bad data at offset {exc.start})") from None
    if b"\x00" in data[:65536]:
        raise RecordError("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        position = exc.start
    matches = from_bytes(data)
    guess = matches.best()
    # On short files charset_normalizer often ranks cp1250 / cp1257 first for Western text ("Lefèvre" read as
    # "Lefčvre"); cp1252, the usual legacy encoding, wins when it is about as plausible as the best guess.
    for match in matches:
        if guess is not None and match.encoding == "cp1252" and match.chaos <= guess.chaos + _CP1252_MARGIN:
            guess = match
            break
    if guess is None or guess.encoding is None:
        raise RecordError(f"not UTF-8 (bad byte at offset {position}) and no other encoding fits")
    text = str(guess)
    controls = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\n\r\t")
    if controls > len(text[:65536]) * 0.01:
        raise RecordError("binary file (control characters), not text")
    return text, f"not UTF-8 (bad byte at offset {position}); decoded as {guess.encoding}"


Problems = list[tuple[str, str]]


def parse_text(text: str, path: str) -> tuple[list[RawRecord], Problems, Problems, str]:
    """Records, (file:line, why) rejections, (file:line, what) warnings and the format of one file's text.
    Reference-manager exports are told by their extension (a .json file by its CSL-JSON shape)."""
    suffix = Path(path).suffix.lower()
    head = text.lstrip()[:1]
    if suffix == ".bib":
        return *read_bibtex(text, path), "bibtex"
    if suffix == ".ris":
        return *read_ris(text, path), "ris"
    if suffix == ".json" and is_csl_json(text):
        return *read_csl_json(text, path), "csl-json"
    if suffix in {".jsonl", ".ndjson", ".json"} or head in {"{", "["}:
        records, failed = parse_jsonl(text, path)
        return records, failed, [], "jsonl"
    if suffix in {".csv", ".tsv"}:
        records, failed = parse_csv(text, path)
        return records, failed, [], "csv"
    records, failed, layout = parse_listing(text, path)
    return records, failed, [], layout


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                      and not any(part.startswith(".") for part in p.relative_to(path).parts))
    return [path]


def _streamable(file: Path, wanted: Slice) -> bool:
    """JSON Lines (not a JSON array) that is large, or that a slice is taken from."""
    if file.suffix.lower() not in {".jsonl", ".ndjson", ".json"}:
        return False
    with file.open("rb") as f:
        head = f.read(64)
    text = head.decode(bom_encoding(head) or "utf-8-sig", errors="ignore").lstrip()
    return text[:1] == "{" and (bool(wanted) or file.stat().st_size > STREAM_ABOVE)


def load(paths: list[Path], max_abstract_chars: int, wanted: Slice | None = None,
         progress: bool | None = None) -> Loaded:
    """All records under the given files/folders (or the slice ``wanted`` of them). Missing paths raise
    FileNotFoundError before anything is read. JSON Lines files that are large or sliced are streamed."""
    wanted = wanted or Slice()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"no such file or folder: {', '.join(missing)}")
    out = Loaded()
    for path in paths:
        for file in _files(path):
            if wanted.limit is not None and len(out.records) >= wanted.limit:
                break
            name = os.path.normpath(file)  # "./a.jsonl" and "a.jsonl" are one source
            out.files.append(name)
            try:
                if _streamable(file, wanted):
                    records, failed = stream_jsonl(file, name, wanted, max_abstract_chars, len(out.records),
                                                   progress)
                    out.records += records
                    out.failed += failed
                    continue
                if wanted.categories:
                    out.warnings.append((f"{name}:1", "no arXiv categories to filter by (only JSON Lines records "
                                                      "with a 'categories' field have them): skipped"))
                    out.files.pop()  # not read: what an earlier ingest took from it stays
                    continue
                data = file.read_bytes()
                if not data.strip():
                    raise RecordError("empty file")
                text, warning = decode(data, name)
                if warning:
                    out.warnings.append((f"{name}:1", warning))
                records, failed, warnings, _layout = parse_text(text, name)
            except (RecordError, LayoutError, OSError) as exc:
                out.failed.append((f"{name}:1", str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - one unreadable file never sinks the others
                out.failed.append((f"{name}:1", f"could not be read ({type(exc).__name__}: {exc})"[:500]))
                continue
            out.failed += failed
            out.warnings += warnings
            if wanted.limit is not None:
                records = records[:wanted.limit - len(out.records)]
            for record in records:
                try:
                    out.records.append(validate(record, max_abstract_chars))
                except RecordError as exc:
                    out.failed.append((record.where, str(exc)))
                except Exception as exc:  # noqa: BLE001 - one bad record never sinks the file
                    out.failed.append((record.where, f"unusable record ({type(exc).__name__}: {exc})"[:500]))
    return out
