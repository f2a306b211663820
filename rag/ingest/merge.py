"""Merge raw records into one Paper per paper.

Two records are the same paper when they carry the same DOI, or when their abstracts match after
normalisation (case, punctuation, LaTeX markup) and are at least ``SAME_PAPER`` similar; two different
arXiv ids, or two different DOIs, are always two papers. Candidates are found through keys on the first
and last words and the DOI (``candidate_keys``), so merging stays near-linear on large collections.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections import Counter, defaultdict
from difflib import SequenceMatcher
from itertools import islice

from rag.models import Paper, Source
from rag.ingest.records import RawRecord
from rag.text import word_tokens

SAME_PAPER = 0.9
_KEY_WORDS = 12


def _similar(a: list[str], b: list[str]) -> bool:
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= SAME_PAPER and matcher.quick_ratio() >= SAME_PAPER and (
        matcher.ratio() >= SAME_PAPER
    )


def candidate_keys(record: RawRecord, words: list[str]) -> list[tuple]:
    """The buckets a record falls into (``words``: its abstract's word tokens); only records sharing a bucket are
    ever compared, so the records a change can regroup are those reachable from it through shared buckets."""
    keys = [("head", *words[:_KEY_WORDS]), ("tail", *words[-_KEY_WORDS:])]
    if record.doi:
        keys.append(("doi", record.doi))  # same DOI, same paper, however its abstract was edited
    return keys


def group_records(records: list[RawRecord]) -> list[list[RawRecord]]:
    """Records grouped by paper (union-find over candidate pairs confirmed by abstract similarity)."""
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # The arXiv id of each group (by root): a group never holds two, not even through a record without one.
    group_id: dict[int, str | None] = {i: r.arxiv_id for i, r in enumerate(records)}
    group_doi: dict[int, str | None] = {i: r.doi for i, r in enumerate(records)}  # likewise, one DOI at most
    tokens = [word_tokens(r.abstract) for r in records]
    keyed: dict[tuple, list[int]] = defaultdict(list)
    for i, (record, words) in enumerate(zip(records, tokens, strict=True)):
        for key in candidate_keys(record, words):
            keyed[key].append(i)
    for members in keyed.values():
        if len(members) < 2:
            continue  # most buckets: one record, nothing to compare
        # Earlier members by their group's arXiv id: a record with id X is only compared with groups holding X
        # or no id yet, so a bucket of 10^4 "This paper has been withdrawn" notices (distinct ids, same words)
        # costs 10^4 steps, not 10^8. Candidates are visited in bucket order, as a scan of all would.
        earlier: dict[str | None, list[int]] = defaultdict(list)  # each list ascending, as members are
        for position, j in enumerate(members):
            own = group_id[find(j)]
            # Lazily, in bucket order: the first match usually ends the scan (copies of one paper).
            candidates = heapq.merge(earlier[own], earlier[None]) if own else islice(members, position)
            for i in candidates:
                if find(i) == find(j):
                    continue
                a, b = group_id[find(i)], group_id[find(j)]
                if a and b and a != b:
                    continue  # two arXiv ids: two papers, however alike
                x, y = group_doi[find(i)], group_doi[find(j)]
                if x and y and x != y:
                    continue  # two DOIs: two papers (a conference paper and its journal extension stay apart)
                if (x and x == y) or tokens[i] == tokens[j] or _similar(tokens[i], tokens[j]):
                    root = find(i)
                    parent[find(j)] = root
                    group_id[root] = a or b
                    group_doi[root] = x or y
                    break
            earlier[group_id[find(j)]].append(j)
    groups: dict[int, list[RawRecord]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[find(i)].append(record)
    return list(groups.values())


def _most_common(values: list, key=len):
    """Most frequent value; ties go to the most complete (longest), then the first seen."""
    if not values:
        return None
    counts = Counter(json.dumps(v) for v in values)
    return max(values, key=lambda v: (counts[json.dumps(v)], key(v)))


def _source(record: RawRecord) -> Source:
    fields: dict[str, str | list[str]] = {"abstract": record.abstract}
    for name in ("title", "arxiv_id", "doi", "date", "venue", "comment", "key"):
        value = getattr(record, name)
        if value:
            fields[name] = value
    if record.authors:
        fields["authors"] = record.authors
    return Source(path=record.path, line=record.line, layout=record.layout, fields=fields)


def paper_id(arxiv_id: str | None, abstract: str, doi: str | None = None) -> str:
    """Stable id: the arXiv id when known, else the DOI, else a hash of the normalised abstract."""
    if arxiv_id:
        return "arxiv:" + arxiv_id
    if doi:
        return "doi:" + doi
    return "abs:" + hashlib.sha1(" ".join(word_tokens(abstract)).encode()).hexdigest()[:16]


def merge(group: list[RawRecord]) -> Paper:
    """One Paper from the records of one paper; the most complete value wins, all stay in sources."""
    group = sorted(group, key=lambda r: (r.path, r.line))
    abstract = max((r.abstract for r in group), key=len)
    arxiv_id = _most_common([r.arxiv_id for r in group if r.arxiv_id])
    doi = _most_common([r.doi for r in group if r.doi])
    dates = [r.date for r in group if r.date]
    return Paper(
        id=paper_id(arxiv_id, abstract, doi),
        title=_most_common([r.title for r in group if r.title]),
        # The longest list is the most complete; a shorter or differently spelled one stays in sources.
        authors=max((r.authors for r in group), key=len, default=[]),
        abstract=abstract,
        arxiv_id=arxiv_id,
        url=f"https://arxiv.org/abs/{arxiv_id}" if arxiv_id else None,
        date=_most_common(dates) if dates else None,
        comment=max((r.comment for r in group if r.comment), key=len, default=None),
        doi=doi,
        venue=_most_common([r.venue for r in group if r.venue]),
        sources=[_source(r) for r in group],
    )


def build_groups(records: list[RawRecord]) -> list[tuple[Paper, list[RawRecord]]]:
    """Each paper with the records it was merged from, in a stable order (by paper id)."""
    built = [(merge(group), group) for group in group_records(records)]
    # Two groups can only share an id if they share an arXiv id (or a DOI); keep ids unique all the same.
    seen: Counter[str] = Counter()
    for paper, _ in sorted(built, key=lambda pg: (pg[0].id, pg[0].sources[0].where)):
        seen[paper.id] += 1
        if seen[paper.id] > 1:
            paper.id = f"{paper.id}~{seen[paper.id]}"
    return sorted(built, key=lambda pg: pg[0].id)


def build_papers(records: list[RawRecord]) -> list[Paper]:
    """Papers from records, in a stable order (by id)."""
    return [paper for paper, _ in build_groups(records)]


def component_keys(record: RawRecord) -> list[str]:
    """Keys linking records whose merging can affect each other: the buckets they are compared within, and the
    arXiv id (groups sharing one are numbered apart). Re-merging every record reachable from a change through
    shared keys, in the original order, gives exactly what merging the whole collection would give."""
    keys = [json.dumps(key, ensure_ascii=False) for key in candidate_keys(record, word_tokens(record.abstract))]
    if record.arxiv_id:
        keys.append(json.dumps(["arxiv", record.arxiv_id]))
    return [hashlib.sha1(k.encode()).hexdigest()[:20] for k in keys]
