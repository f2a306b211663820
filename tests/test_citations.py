"""Numbered citations in answers: validation against the number of sources, and collection."""

from __future__ import annotations

import pytest

from rag.answering.citations import collect, validate_citations
from rag.models import Hit, Paper


@pytest.mark.parametrize(("text", "cleaned", "cited", "dropped"), [
    ("GANs improve FID [1]. Diffusion is slower [3].", "GANs improve FID [1]. Diffusion is slower [3].", [1, 3], []),
    ("Both agree [1, 2].", "Both agree [1][2].", [1, 2], []),
    ("All three [1-3].", "All three [1][2][3].", [1, 2, 3], []),
    ("All three [1–3].", "All three [1][2][3].", [1, 2, 3], []),
    ("Twice [2][2].", "Twice [2].", [2], []),
    ("Mixed [2, 2; 1].", "Mixed [2][1].", [2, 1], []),
    ("Dangling [9].", "Dangling.", [], [9]),
    ("Zero [0] and five [5] are out, [1] is in.", "Zero and five are out, [1] is in.", [1], [0, 5]),
    ("Partly valid [2, 7].", "Partly valid [2].", [2], [7]),
    ("Range past the end [2-5].", "Range past the end [2][3].", [2, 3], [4, 5]),
    ("Bad first [9][1] then.", "Bad first [1] then.", [1], [9]),
    ("Bad second [1] [9] then.", "Bad second [1] then.", [1], [9]),
    ("Order of first use [3] then [1] then [3].", "Order of first use [3] then [1] then [3].", [3, 1], []),
    ("No citations here.", "No citations here.", [], []),
    ("Not a citation [a] or [1a].", "Not a citation [a] or [1a].", [], []),
])
def test_validate_citations(text, cleaned, cited, dropped):
    assert validate_citations(text, 3) == (cleaned, cited, dropped)


def test_every_number_is_dangling_without_sources():
    assert validate_citations("Claim [1]. Other [2, 3].", 0) == ("Claim. Other.", [], [1, 2, 3])


def test_dropped_numbers_are_reported_once():
    _, cited, dropped = validate_citations("A [7]. B [7, 8]. C [8].", 3)
    assert cited == [] and dropped == [7, 8]


def test_newlines_are_kept():
    cleaned, cited, _ = validate_citations("- first point [1]\n- second point [4]\n- third [2]", 2)
    assert cleaned == "- first point [1]\n- second point\n- third [2]"
    assert cited == [1, 2]


def _hit(n: int) -> Hit:
    paper = Paper(id=f"abs:{n}", title=f"Paper {n}", abstract=f"Abstract number {n} with enough words in it.")
    return Hit(paper=paper, passage=f"passage {n}", score=1.0 / n)


def test_collect_maps_numbers_to_hits_and_passages():
    hits = [_hit(1), _hit(2), _hit(3)]
    citations = collect([3, 1], hits, {1: "the exact sentence"})
    assert [(c.number, c.paper.id, c.passage) for c in citations] == [
        (3, "abs:3", "passage 3"), (1, "abs:1", "the exact sentence"),
    ]
    assert collect([], hits) == []


def test_neutralize_turns_source_brackets_into_parentheses():
    from rag.answering.citations import neutralize

    assert neutralize("as in prior work [2] and [3, 4].") == "as in prior work (2) and (3, 4)."
    assert validate_citations(neutralize("prior work [2]") + " [1]", 3)[1] == [1]
