"""Layout detection and parsing of plain-text listings: the real seeds, and new files in each layout."""

from __future__ import annotations

import pytest

from conftest import SEEDS
from rag.ingest.listings import LayoutError, parse_listing, shape

SEED_LAYOUTS = {
    "000": ("title-lastfirst-abstract", 7),
    "001": ("authors-abstract", 20),
    "002": ("title-abstract", 185),
    "003": ("blocks", 10),
    "004": ("glued-arxiv", 10),
}


def _seed(prefix: str):
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return parse_listing(path.read_text(encoding="utf-8"), str(path))


# Made-up papers (not in the seeds), each abstract long enough to read as prose.
PAPERS = [
    {
        "title": "Counting Birds by Their Songs with Tiny Recurrent Networks",
        "lastfirst": "Okafor, Adaeze, Lindqvist, Henrik",
        "firstlast": "Adaeze Okafor, Henrik Lindqvist",
        "authors": ["Adaeze Okafor", "Henrik Lindqvist"],
        "id": "2401.01234",
        "date": "2024-01-03",
        "comment": "Accepted to Interspeech 2024",
        "abstract": (
            "We estimate how many birds sing in a field recording without separating their voices. A tiny "
            "recurrent network listens to overlapping songs and predicts a count, trained only on synthetic "
            "mixtures. On forty hours of real dawn choruses it halves the error of clustering baselines, and it "
            "runs on a microcontroller in real time."
        ),
    },
    {
        "title": "Sparse Attention for Long Legal Documents",
        "lastfirst": "Moreau, Camille, Ibáñez, Lucía, Tanaka, Ren",
        "firstlast": "Camille Moreau, Lucía Ibáñez, Ren Tanaka",
        "authors": ["Camille Moreau", "Lucía Ibáñez", "Ren Tanaka"],
        "id": "2312.09876",
        "date": "2023-12-15",
        "comment": None,
        "abstract": (
            "Contracts and court rulings often run to hundreds of pages, far beyond the context of standard "
            "transformers. We introduce a sparse attention pattern that follows the section structure of legal "
            "text, so that clauses attend to the definitions they use. The model matches dense attention on "
            "clause retrieval while using a tenth of the memory."
        ),
    },
    {
        "title": "Predicting Glacier Retreat from Satellite Time Series",
        "lastfirst": "Sigurdsson, Bjarni, Nakamura, Emi",
        "firstlast": "Bjarni Sigurdsson, Emi Nakamura",
        "authors": ["Bjarni Sigurdsson", "Emi Nakamura"],
        "id": "2305.11111",
        "date": "2023-05-18",
        "comment": "Project page: https://example.org/glaciers",
        "abstract": (
            "We forecast the retreat of mountain glaciers from two decades of satellite images. A convolutional "
            "recurrent model learns seasonal melt patterns and predicts the ice front five years ahead. On held-out "
            "glaciers in the Alps and the Andes it improves on physical models by thirty percent (mean error)."
        ),
    },
    {
        "title": "Robust Tabular Learning under Label Noise",
        "lastfirst": "Hughes, Morgan, Adeyemi, Tunde",
        "firstlast": "Morgan Hughes, Tunde Adeyemi",
        "authors": ["Morgan Hughes", "Tunde Adeyemi"],
        "id": "1409.4321",
        "date": "2014-09-10",
        "comment": None,
        "abstract": (
            "Spreadsheets collected by hand contain wrong labels, and gradient boosted trees fit them eagerly. "
            "We reweight training rows by the agreement of an ensemble trained on disjoint folds, which needs no "
            "clean validation set. Across twenty public tables with injected noise, accuracy drops far less than "
            "with standard boosting or with co-teaching."
        ),
    },
]


def _layout_text(layout: str, papers=PAPERS) -> str:
    lines: list[str] = []
    if layout == "title-lastfirst-abstract":
        lines.append("Okafor, Adaeze")  # the listing's owner, as in the seed
        for p in papers:
            lines += [p["title"], p["lastfirst"], p["abstract"]]
    elif layout == "authors-abstract":
        for p in papers:
            lines += [p["firstlast"], p["abstract"]]
    elif layout == "title-abstract":
        for p in papers:
            lines += [p["title"], p["abstract"]]
    elif layout == "blocks":
        for p in papers:
            lines += [p["abstract"], ""]
            if p["comment"]:
                lines += [p["comment"], ""]
            lines += [f"arXiv:{p['id']}", f"Created: {p['date']}", ""]
    elif layout == "glued-arxiv":
        for i, p in enumerate(papers):
            lines.append(p["abstract"] if i == 0 else f"arXiv:{papers[i - 1]['id']}{p['abstract']}")
            if p["comment"]:
                lines.append(p["comment"])
        lines.append(f"arXiv:{papers[-1]['id']}")
    return "\n".join(lines) + "\n"


# --- the seeds -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", sorted(SEED_LAYOUTS))
def test_seed_layouts_and_counts(prefix):
    records, failed, layout = _seed(prefix)
    expected_layout, expected_count = SEED_LAYOUTS[prefix]
    assert layout == expected_layout
    assert len(records) == expected_count
    assert failed == []
    assert all(r.layout == expected_layout and len(r.abstract) > 200 for r in records)
    assert len({r.line for r in records}) == expected_count


def test_seed_000_titles_and_last_first_authors():
    records, _, _ = _seed("000")
    first = records[0]
    assert first.title == "SMaRt: Improving GANs with Score Matching Regularity"
    assert first.authors == ["Mengfei Xia", "Yujun Shen", "Ceyuan Yang", "Ran Yi", "Wenping Wang", "Yong-jin Liu"]
    assert first.line == 2  # line 1 ("Shen, Yujun") is the listing's header, not a paper
    assert all(r.title and r.authors and "Yujun Shen" in r.authors for r in records)


def test_seed_001_first_last_authors_without_titles():
    records, _, _ = _seed("001")
    assert records[0].authors == ["Jinjin Gu", "Yujun Shen", "Bolei Zhou"]
    assert records[0].abstract.startswith("Despite the success of Generative Adversarial Networks (GANs)")
    assert all(r.title is None and len(r.authors) >= 2 for r in records)


def test_seed_002_strips_subscribe_and_skips_page_chrome():
    records, _, _ = _seed("002")
    assert records[0].title == "StyleSwin: Transformer-based GAN for High-resolution Image Generation"
    assert records[0].line == 3
    assert records[0].abstract.startswith("Despite the tantalizing success in a broad of vision tasks")
    assert not any("trending papers" in (r.title or "") + r.abstract for r in records)
    assert not any((r.title or "").startswith("Subscribe") for r in records)
    assert all(r.title and r.arxiv_id is None for r in records)


def test_seed_003_blocks_have_id_date_and_comment():
    records, _, _ = _seed("003")
    assert all(r.arxiv_id and r.date for r in records)
    by_id = {r.arxiv_id: r for r in records}
    assert by_id["2211.16032"].date == "2022-11-29" and by_id["2211.16032"].comment is None
    assert by_id["2211.16032"].abstract.startswith("Diffusion models, which learn to reverse")
    geod = by_id["2209.15637"]
    assert geod.date == "2022-09-30"
    assert geod.comment == "Accepted by NeurIPS 2022. Project page: https://vivianszf.github.io/geod"
    assert by_id["2203.03884"].comment == "Accepted to CVPR 2022"
    assert by_id["2203.03884"].date == "2022-03-08"
    assert sum(r.comment is not None for r in records) == 6


def test_seed_004_glued_ids_go_to_the_previous_abstract():
    records, _, _ = _seed("004")
    # "arXiv:2211.123393D-aware…": 2211.12339 closes the abstract before it, "3D-aware…" starts the next.
    dependencies = next(r for r in records if r.abstract.startswith("This work presents two astonishing findings"))
    assert dependencies.arxiv_id == "2211.12339"
    geod = next(r for r in records if r.abstract.startswith("3D-aware image synthesis"))
    assert geod.arxiv_id == "2209.15637"
    assert geod.comment == "Accepted by NeurIPS 2022. Project page: https://vivianszf.github.io/geod"
    assert records[0].abstract.startswith("Human brains respond") and records[0].arxiv_id == "2303.05125"
    assert all(r.arxiv_id for r in records)
    assert len({r.arxiv_id for r in records}) == 10
    assert not any(r.abstract.startswith("arXiv") for r in records)


def test_same_paper_gets_the_same_id_in_blocks_and_glued_seeds():
    blocks = {r.abstract[:80]: r.arxiv_id for r in _seed("003")[0]}
    glued = {r.abstract[:80]: r.arxiv_id for r in _seed("004")[0]}
    shared = blocks.keys() & glued.keys()
    assert len(shared) >= 3
    assert all(blocks[k] == glued[k] for k in shared)


# --- new files in each layout ----------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["title-lastfirst-abstract", "authors-abstract", "title-abstract", "blocks",
                                    "glued-arxiv"])
def test_new_file_in_each_layout_parses(layout, tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text(_layout_text(layout), encoding="utf-8")
    records, failed, found = parse_listing(path.read_text(encoding="utf-8"), str(path))
    assert found == layout
    assert failed == []
    assert [r.abstract for r in records] == [p["abstract"] for p in PAPERS]
    assert all(r.path == str(path) and r.layout == layout for r in records)
    if layout in {"title-lastfirst-abstract", "title-abstract"}:
        assert [r.title for r in records] == [p["title"] for p in PAPERS]
    if layout in {"title-lastfirst-abstract", "authors-abstract"}:
        assert [r.authors for r in records] == [p["authors"] for p in PAPERS]
    if layout in {"blocks", "glued-arxiv"}:
        assert [r.arxiv_id for r in records] == [p["id"] for p in PAPERS]
        assert [r.comment for r in records] == [p["comment"] for p in PAPERS]
    if layout == "blocks":
        assert [r.date for r in records] == [p["date"] for p in PAPERS]


def test_line_numbers_point_at_each_record(tmp_path):
    records, _, _ = parse_listing(_layout_text("title-abstract"), "t.txt")
    assert [r.line for r in records] == [1, 3, 5, 7]
    records, _, _ = parse_listing(_layout_text("blocks"), "b.txt")
    lines = _layout_text("blocks").splitlines()
    assert [lines[r.line - 1] for r in records] == [p["abstract"] for p in PAPERS]


def test_glued_listing_with_an_abstract_starting_with_a_digit():
    papers = [dict(p) for p in PAPERS[:3]]
    papers[1]["abstract"] = "3D " + papers[1]["abstract"]
    papers[2]["abstract"] = "2024 " + papers[2]["abstract"]
    records, failed, layout = parse_listing(_layout_text("glued-arxiv", papers), "g.txt")
    assert layout == "glued-arxiv" and failed == []
    assert [(r.arxiv_id, r.abstract) for r in records] == [(p["id"], p["abstract"]) for p in papers]


def test_title_abstract_with_blank_lines_and_crlf():
    text = "\r\n\r\n".join(f"{p['title']}\r\n{p['abstract']}" for p in PAPERS)
    records, failed, layout = parse_listing(text, "crlf.txt")
    assert layout == "title-abstract" and failed == []
    assert [r.title for r in records] == [p["title"] for p in PAPERS]


def test_last_title_without_abstract_is_reported_and_the_rest_kept():
    text = _layout_text("title-abstract") + "A Title Whose Abstract Went Missing\n"
    records, failed, layout = parse_listing(text, "t.txt")
    assert layout == "title-abstract"
    assert [r.title for r in records] == [p["title"] for p in PAPERS]
    assert len(failed) == 1
    where, why = failed[0]
    assert where == "t.txt:9"
    assert why.startswith("title without an abstract")
    assert "A Title Whose Abstract Went Missing" in why


def test_stray_line_in_the_middle_is_reported_not_glued_to_a_record():
    # (A file needs 90% of its lines explained: one stray line among 17 is fine, among 9 it is not.)
    lines = _layout_text("title-abstract", PAPERS * 2).splitlines()
    lines.insert(2, "An orphan title with no abstract")
    records, failed, layout = parse_listing("\n".join(lines), "t.txt")
    assert layout == "title-abstract"
    assert [r.title for r in records] == [p["title"] for p in PAPERS * 2]
    assert [r.line for r in records][:3] == [1, 4, 6]
    assert [w for w, _ in failed] == ["t.txt:3"]
    assert "does not fit the title-abstract layout" in failed[0][1]


POEM = """The Road Not Taken

Two roads diverged in a yellow wood,
And sorry I could not travel both
And be one traveler, long I stood
And looked down one as far as I could
To where it bent in the undergrowth;
"""

README = """# rag-abstracts

Cited question answering over abstracts.

## Install

```bash
pip install -e .
rag ingest seeds/
```

## Usage

- `rag ask "What is GeoD?"`
- `rag serve --port 7860`

MIT License
"""


@pytest.mark.parametrize("text", [POEM, README, "just one line", "\n\n\n", "x\n" * 50])
def test_text_in_no_known_layout_raises(text):
    with pytest.raises(LayoutError, match="not in any known listing layout"):
        parse_listing(text, "other.txt")


def test_prose_without_structure_raises():
    # Long paragraphs alone (no titles, ids or authors) are not a listing.
    text = "\n\n".join(p["abstract"] for p in PAPERS)
    with pytest.raises(LayoutError):
        parse_listing(text, "essay.txt")


LATEX = (
    r"We propose \textbf{GeoFuse}, which renders faces at $1024\times1024$ resolution and reduces the "
    r"FID by 35\% compared with prior work. Our loss $\mathcal{L}_{geo} = \sum_i \|x_i - \hat{x}_i\|_2^2$ "
    r"is cheap to compute, and \emph{no} extra labels are needed; code is at \url{https://example.org/geofuse}."
)


@pytest.mark.parametrize("layout", ["title-abstract", "blocks", "glued-arxiv", "authors-abstract"])
def test_latex_in_abstracts_survives_parsing(layout):
    papers = [dict(p) for p in PAPERS[:3]]
    papers[1]["abstract"] = LATEX
    records, failed, found = parse_listing(_layout_text(layout, papers), "latex.txt")
    assert found == layout and failed == []
    assert records[1].abstract == LATEX
    assert r"\textbf{GeoFuse}" in records[1].abstract and r"$1024\times1024$" in records[1].abstract
    assert r"35\%" in records[1].abstract


def test_seed_latex_survives_parsing():
    records, _, _ = _seed("003")
    text = " ".join(r.abstract for r in records)
    assert r"\textbf{neural dependency}" in text
    assert r"$1024\times1024$" in text


@pytest.mark.parametrize(("line", "letter"), [
    ("", "E"),
    ("   ", "E"),
    ("arXiv:2211.12339", "X"),
    ("arXiv:2211.12339v2", "X"),
    ("arXiv:2211.12339" + PAPERS[0]["abstract"], "G"),
    ("arXiv:2211.123393D-aware" + PAPERS[0]["abstract"], "G"),
    ("Created: 2022-11-21", "K"),
    (PAPERS[0]["abstract"], "L"),
    ("Xia, Mengfei, Shen, Yujun", "N"),
    ("Jinjin Gu, Yujun Shen, Bolei Zhou", "A"),
    ("Counting Birds by Their Songs", "S"),
    ("x" * 300, "S"),  # long but not prose: no sentence end
])
def test_line_shapes(line, letter):
    assert shape(line) == letter


def test_titles_that_look_like_author_lists_stay_titles():
    papers = [dict(p) for p in PAPERS * 2]
    papers[1]["title"] = "Segment Anything, Track Everything"  # reads as "First Last, First Last"
    papers[5]["title"] = "Seeing, Hearing, Feeling, Knowing"  # reads as "Last, First, Last, First"
    records, failed, layout = parse_listing(_layout_text("title-abstract", papers), "t.txt")
    assert layout == "title-abstract" and failed == []
    assert [r.title for r in records] == [p["title"] for p in papers]
    assert all(r.authors == [] for r in records)
