"""Streaming read of JSON Lines files too large to hold (the arXiv metadata snapshot: millions of lines, GBs).

Lines are decoded and parsed one at a time, so memory holds the kept records only, never the file; a slice
(``--limit N``, ``--category cs.CL``) is taken while reading and reading stops once the limit is reached. A
progress bar over the bytes read shows the rate and the time left.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from rag.ingest.records import RawRecord, RecordError, from_mapping, json_object, validate

STREAM_ABOVE = 64 * 2**20  # bytes: JSON Lines files larger than this are streamed even without a slice


@dataclass(frozen=True)
class Slice:
    """Which records of a stream to keep: at most ``limit``, and only those in one of ``categories``.

    A category is an arXiv category ("cs.CL": exactly that one) or archive ("cs": any cs.* category),
    matched against the record's space-separated ``categories`` field, as the arXiv snapshot gives it.
    """

    limit: int | None = None
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be at least 1, got {self.limit}")

    def __bool__(self) -> bool:
        return self.limit is not None or bool(self.categories)

    def wants(self, row: dict) -> bool:
        if not self.categories:
            return True
        have = str(row.get("categories") or "").split()
        return any(c == want or c.startswith(want + ".") for c in have for want in self.categories)


# Byte-order marks, longest first: UTF-32-LE's mark begins with UTF-16-LE's.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def bom_encoding(head: bytes) -> str | None:
    """The UTF-16 / UTF-32 codec a byte-order mark at the start of ``head`` names (the codec reads the mark for
    byte order and drops it), or None."""
    return next((name for bom, name in _BOMS if head.startswith(bom)), None)


def _text_lines(file: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, decoded by its byte-order mark (UTF-8 when it has none)."""
    with file.open("rb") as raw:
        encoding = bom_encoding(raw.read(4)) or "utf-8-sig"
        raw.seek(0)
        # errors="replace": one bad byte costs one garbled character, reported by validation if it matters,
        # never the rest of a multi-GB file.
        with io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="") as text:
            yield from enumerate(text, 1)


def stream_jsonl(file: Path, name: str, wanted: Slice, max_abstract_chars: int, kept_so_far: int = 0,
                 progress: bool | None = None) -> tuple[list[RawRecord], list[tuple[str, str]]]:
    """Records of one JSON Lines file, read line by line; bad lines are reported by ``name:line``."""
    records: list[RawRecord] = []
    failed: list[tuple[str, str]] = []
    limit = None if wanted.limit is None else wanted.limit - kept_so_far
    size = file.stat().st_size
    bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"Reading {Path(name).name}", leave=False,
               disable=None if progress is None else not progress)
    done = 0
    try:
        for number, line in _text_lines(file):
            done += len(line)  # characters: close enough to bytes for a progress bar
            if number % 2000 == 0:
                bar.update(min(done, size) - bar.n)
            if limit is not None and len(records) >= limit:
                break
            if not line.strip():
                continue
            where = f"{name}:{number}"
            try:
                row = json_object(line)
                if not wanted.wants(row):
                    continue
                records.append(validate(from_mapping(row, name, number, "jsonl"), max_abstract_chars))
            except RecordError as exc:
                failed.append((where, str(exc)))
            except Exception as exc:  # noqa: BLE001 - one bad record never sinks the stream
                failed.append((where, f"unusable record ({type(exc).__name__}: {exc})"[:500]))
    finally:
        bar.close()
    return records, failed
