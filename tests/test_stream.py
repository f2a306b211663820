"""Streaming a large JSON Lines file (arXiv metadata snapshot layout): slices, bad lines, memory, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import pytest

from rag.ingest.loaders import load
from rag.ingest.stream import Slice, stream_jsonl
from rag.settings import Settings

LIMIT = Settings().max_abstract_chars


def snapshot_line(n: int, categories: str) -> str:
    """One line as the arXiv metadata snapshot (Kaggle) writes it."""
    return json.dumps({
        "id": f"2301.{n:05d}", "submitter": "Someone", "authors": "Ada Lovelace and Alan Turing",
        "title": f"Paper number {n} on topic {categories.split()[0]}",
        "comments": "12 pages", "journal-ref": None, "doi": None, "report-no": None,
        "categories": categories, "license": None,
        "abstract": f"  We study problem {n} in depth. Our method improves the baseline by {n % 50} points on "
                    "three benchmarks, and the code is released.\n",
        "versions": [{"version": "v1", "created": "Mon, 2 Jan 2023 10:00:00 GMT"}],
        "update_date": "2023-01-05",
        "authors_parsed": [["Lovelace", "Ada", ""], ["Turing", "Alan", ""]],
    }) + "\n"


@pytest.fixture
def snapshot(tmp_path):
    path = tmp_path / "arxiv-metadata-oai-snapshot.json"
    cats = ["cs.CL cs.LG", "math.PR", "cs.CV", "hep-th", "cs.CL"]
    path.write_text("".join(snapshot_line(n, cats[n % len(cats)]) for n in range(1, 2001)), encoding="utf-8")
    return path


def test_a_category_slice_keeps_only_matching_records_in_file_order(snapshot):
    loaded = load([snapshot], LIMIT, Slice(limit=7, categories=("cs.CL",)))
    assert loaded.failed == [] and loaded.files == [str(snapshot)]
    assert [r.arxiv_id for r in loaded.records] == [f"2301.{n:05d}" for n in (4, 5, 9, 10, 14, 15, 19)]
    first = loaded.records[0]
    assert first.authors == ["Ada Lovelace", "Alan Turing"] and first.date == "2023-01-05"
    assert first.abstract.startswith("We study problem 4") and first.where == f"{snapshot}:4"


def test_an_archive_matches_all_its_categories_and_several_may_be_given(snapshot):
    cs = load([snapshot], LIMIT, Slice(limit=4, categories=("cs",)))
    assert [r.arxiv_id[-2:] for r in cs.records] == ["02", "04", "05", "07"]  # cs.CV, cs.CL, cs.CL cs.LG, cs.CV
    both = load([snapshot], LIMIT, Slice(limit=3, categories=("math.PR", "hep-th")))
    assert [r.arxiv_id[-2:] for r in both.records] == ["01", "03", "06"]
    assert load([snapshot], LIMIT, Slice(categories=("q-bio",))).records == []


def test_reading_stops_at_the_limit_so_later_lines_are_never_parsed(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text(snapshot_line(1, "cs.CL") + snapshot_line(2, "cs.CL") + "{not json\n" * 50, encoding="utf-8")
    loaded = load([path], LIMIT, Slice(limit=2))
    assert len(loaded.records) == 2 and loaded.failed == []
    whole = load([path], LIMIT, Slice(limit=100))
    assert len(whole.records) == 2 and len(whole.failed) == 50 and whole.failed[0][0] == f"{path}:3"


def test_bad_lines_in_a_stream_are_rejected_by_line_and_the_rest_is_kept(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [snapshot_line(1, "cs.CL"), "[" * 50_000 + "\n", '"a string"\n', '{"title": "no abstract"}\n',
             snapshot_line(2, "cs.CL")]
    path.write_text("".join(lines), encoding="utf-16")  # with its byte-order mark, as Windows tools export
    records, failed = stream_jsonl(path, str(path), Slice(limit=10), LIMIT)
    assert [r.arxiv_id for r in records] == ["2301.00001", "2301.00002"]
    assert [where for where, _ in failed] == [f"{path}:2", f"{path}:3", f"{path}:4"]
    assert "nested deeper" in failed[0][1] and "expected a JSON object" in failed[1][1]


def test_streaming_holds_the_kept_records_not_the_file(tmp_path):
    path = tmp_path / "large.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for n in range(1, 30_001):
            out.write(snapshot_line(n, "math.PR" if n % 100 else "cs.CL"))
    size = path.stat().st_size
    tracemalloc.start()
    try:
        loaded = load([path], LIMIT, Slice(categories=("cs.CL",)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(loaded.records) == 300 and loaded.failed == []
    assert size > 15 * 2**20 and peak < size / 10  # a tenth of the file at most (the file is never read whole)


def test_a_category_filter_skips_files_without_categories_with_a_warning(tmp_path, snapshot):
    listing = tmp_path / "listing.txt"
    listing.write_text("A Title\nAn abstract about tide pools and snails, long enough to be one.\n")
    loaded = load([listing, snapshot], LIMIT, Slice(limit=1, categories=("cs.CL",)))
    assert loaded.files == [str(snapshot)] and len(loaded.records) == 1
    assert loaded.warnings == [(f"{listing}:1", "no arXiv categories to filter by (only JSON Lines records with a "
                                                "'categories' field have them): skipped")]


def test_a_limit_below_one_is_refused():
    with pytest.raises(ValueError, match="--limit must be at least 1"):
        Slice(limit=0)


@pytest.mark.slow
def test_cli_takes_a_slice_and_a_rerun_changes_nothing(tmp_path, snapshot):
    def rag(*args):
        return subprocess.run([sys.executable, "-m", "rag.cli", "--data-dir", str(tmp_path / "d"), *args],
                              capture_output=True, text=True, timeout=300)

    first = rag("ingest", str(snapshot), "--limit", "6", "--category", "cs.CL", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["records"], report["papers"], report["added"]) == (6, 6, 6)
    again = json.loads(rag("ingest", str(snapshot), "--limit", "6", "--category", "cs.CL", "--json").stdout)
    assert (again["unchanged"], again["added"], again["removed"]) == (6, 0, 0)
    listed = json.loads(rag("papers", "--json").stdout)
    assert sorted(p["arxiv_id"] for p in listed) == [f"2301.{n:05d}" for n in (4, 5, 9, 10, 14, 15)]
    bad = rag("ingest", str(snapshot), "--limit", "0")
    assert bad.returncode == 2 and "--limit must be at least 1" in bad.stderr
