"""Plain-text listings of abstracts: detect the layout from line shapes, then parse records.

Each line gets a one-letter shape; each layout is a regular expression for one record over those
letters. The layout that explains the most lines (at least ``MIN_COVERAGE`` of them) wins, and
lines no record explains are reported, never guessed at. A file no layout explains is reported as such.

Shapes: ``E`` blank, ``L`` long prose (an abstract), ``X`` a lone ``arXiv:ID``, ``G`` an ``arXiv:ID``
glued to the next abstract, ``K`` ``Created: YYYY-MM-DD``, ``N`` a "Last, First, …" author list,
``A`` a "First Last, …" author list, ``S`` any other short line (title, comment, page chrome).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.ingest.authors import parse_first_last, parse_last_first
from rag.ingest.records import ARXIV_ID, RawRecord

MIN_COVERAGE = 0.9
_LONG = 200  # characters; the shortest seed abstract has ~480, the longest title ~150
_X = re.compile(rf"^\s*arXiv:\s*({ARXIV_ID.pattern})\s*$", re.IGNORECASE)
_G = re.compile(rf"^\s*arXiv:\s*({ARXIV_ID.pattern})(\S.*)$", re.IGNORECASE)
_K = re.compile(r"^\s*Created:\s*(\d{4}-\d{2}-\d{2})\s*$")
# Web-page chrome seen in scraped listings: whole lines, and a button label glued to the first title.
_CHROME_LINE = re.compile(r"^(Get trending papers|Subscribe$|Sign in|Log in|Share$)", re.IGNORECASE)
_CHROME_PREFIX = re.compile(r"^Subscribe(?=[A-Z0-9])")


class LayoutError(ValueError):
    """The text is in no known layout."""


def shape(line: str) -> str:
    text = line.strip()
    if not text:
        return "E"
    if _X.match(text):
        return "X"
    glued = _G.match(text)
    if glued and len(glued.group(2)) >= _LONG:
        return "G"
    if _K.match(text):
        return "K"
    if len(text) >= _LONG and re.search(r"[.!?](\s|$)", text):
        return "L"
    if parse_last_first(text):
        return "N"
    if parse_first_last(text):
        return "A"
    return "S"


def _strip_id(line: str) -> tuple[str, str]:
    """("2303.05125", rest) from an ``arXiv:ID…`` line."""
    match = _G.match(line.strip()) or _X.match(line.strip())
    assert match is not None
    arxiv_id = re.sub(r"v\d+$", "", match.group(1))
    rest = match.group(2) if match.re is _G else ""
    return arxiv_id, rest.strip()


@dataclass(frozen=True)
class Layout:
    name: str
    pattern: str  # one record, over the shape letters of the lines it spans
    blank_lines: bool  # whether E letters are part of the grammar (else dropped before matching)
    build: Callable[[list[str], list[int], str], list[RawRecord]]
    head: str = ""  # lines allowed before the first record (page chrome, a header)
    tail: str = ""  # lines allowed after the last record
    needs: str = ""  # a letter that at least half the records must contain (tells authors from titles)


def _rec(path: str, line: int, layout: str, **fields) -> RawRecord:
    return RawRecord(path=path, line=line, layout=layout, **fields)


def _build_title_authors_abstract(lines: list[str], numbers: list[int], path: str) -> list[RawRecord]:
    title, authors, abstract = lines
    return [_rec(path, numbers[0], "title-lastfirst-abstract", title=title,
                 authors=parse_last_first(authors) or [], abstract=abstract)]


def _build_authors_abstract(lines: list[str], numbers: list[int], path: str) -> list[RawRecord]:
    authors, abstract = lines
    names = parse_first_last(authors) or [" ".join(authors.split())]
    return [_rec(path, numbers[0], "authors-abstract", authors=names, abstract=abstract)]


def _build_title_abstract(lines: list[str], numbers: list[int], path: str) -> list[RawRecord]:
    title, abstract = lines
    return [_rec(path, numbers[0], "title-abstract", title=_CHROME_PREFIX.sub("", title.strip()), abstract=abstract)]


def _build_block(lines: list[str], numbers: list[int], path: str) -> list[RawRecord]:
    content = [(n, s) for s, n in zip(lines, numbers, strict=True) if s.strip()]
    abstract = content[0][1]
    comment = content[1][1] if len(content) == 4 else None
    arxiv_id, _ = _strip_id(content[-2][1])
    date = _K.match(content[-1][1].strip()).group(1)  # type: ignore[union-attr]
    return [_rec(path, content[0][0], "blocks", abstract=abstract, comment=comment, arxiv_id=arxiv_id, date=date)]


def _build_glued(lines: list[str], numbers: list[int], path: str) -> list[RawRecord]:
    # One record: [G or L] [S]? followed by the G/X line holding *this* abstract's id; ids are
    # attached afterwards by _attach_glued_ids, which sees the whole file.
    first = lines[0]
    abstract = _strip_id(first)[1] if shape(first) == "G" else first
    comment = lines[1] if len(lines) > 1 else None
    return [_rec(path, numbers[0], "glued-arxiv", abstract=abstract, comment=comment)]


LAYOUTS = (
    Layout("blocks", r"LE+(?:[SNA]E+)?XKE*", True, _build_block, head="E", tail="E"),
    Layout("glued-arxiv", r"[LG][SNA]?(?=[GX])", False, _build_glued, tail="X"),
    Layout("title-lastfirst-abstract", r"[SA]NL", False, _build_title_authors_abstract, head="N"),
    Layout("authors-abstract", r"[AS]L", False, _build_authors_abstract, needs="A"),
    # A title may look like an author list ("Segment Anything, Track Everything"): any short line can be one.
    Layout("title-abstract", r"[SNA]L", False, _build_title_abstract, head="S", tail="S"),
)


def _matches(layout: Layout, shapes: str) -> tuple[int, list[re.Match[str]]]:
    """How many lines the layout explains, and its record matches."""
    found = list(re.finditer(layout.pattern, shapes))
    covered = sum(m.end() - m.start() for m in found)
    if found:
        head = shapes[: found[0].start()]
        tail = shapes[found[-1].end():]
        covered += len(head) if head and set(head) <= set(layout.head) else 0
        covered += len(tail) if tail and set(tail) <= set(layout.tail) and len(tail) <= 2 else 0
    if layout.blank_lines:
        covered += shapes.count("E") - sum(m.group(0).count("E") for m in found)
    return covered, found


def detect(lines: list[str]) -> tuple[Layout, str, list[int]]:
    """The layout explaining most lines, with the shape string and line indices it was matched on."""
    all_shapes = "".join(shape(line) for line in lines)
    best: tuple[float, Layout, str, list[int]] | None = None
    for layout in LAYOUTS:
        index = list(range(len(lines))) if layout.blank_lines else [i for i, s in enumerate(all_shapes) if s != "E"]
        shapes = "".join(all_shapes[i] for i in index)
        if not shapes:
            continue
        covered, found = _matches(layout, shapes)
        if layout.needs and sum(layout.needs in m.group(0) for m in found) < len(found) / 2:
            continue
        coverage = covered / len(shapes)
        if found and (best is None or coverage > best[0]):
            best = (coverage, layout, shapes, index)
    if best is None or best[0] < MIN_COVERAGE:
        summary = "".join(all_shapes[:40])
        raise LayoutError(
            "not in any known listing layout "
            f"(line shapes {summary!r}{'…' if len(all_shapes) > 40 else ''}; see README 'Input formats')"
        )
    return best[1], best[2], best[3]


def _attach_glued_ids(records: list[RawRecord], lines: list[str], numbers_after: list[int | None]) -> None:
    for record, after in zip(records, numbers_after, strict=True):
        if after is not None:
            record.arxiv_id = _strip_id(lines[after])[0]


def parse_listing(text: str, path: str) -> tuple[list[RawRecord], list[tuple[str, str]], str]:
    """Records, (file:line, why) for lines no record explains, and the layout name. Raises LayoutError."""
    lines = text.splitlines()
    layout, shapes, index = detect(lines)
    records: list[RawRecord] = []
    failed: list[tuple[str, str]] = []
    covered: set[int] = set()
    ids_after: list[int | None] = []
    found = list(re.finditer(layout.pattern, shapes))
    for match in found:
        span = index[match.start(): match.end()]
        covered.update(range(match.start(), match.end()))
        records += layout.build([lines[i] for i in span], [i + 1 for i in span], path)
        if layout.name == "glued-arxiv":
            covered.add(match.end())
            ids_after.append(index[match.end()])
    if layout.name == "glued-arxiv":
        _attach_glued_ids(records, lines, ids_after)
    for position, letter in enumerate(shapes):
        if position in covered or letter == "E":
            continue
        line = lines[index[position]].strip()
        if _CHROME_LINE.match(line) or (position < found[0].start() and letter in layout.head):
            continue  # page chrome or a header before the first record: not a paper
        why = "title without an abstract" if letter in "SNA" and position > found[-1].start() else (
            f"line does not fit the {layout.name} layout"
        )
        failed.append((f"{path}:{index[position] + 1}", f"{why}: {line[:60]!r}"))
    return records, failed, layout.name
