"""Merging raw records into papers, and the catalog on disk."""

from __future__ import annotations

import random

import pytest

from conftest import SEEDS
from rag.answering.termstats import TermStats
from rag.index.catalog import Catalog, CatalogChange
from rag.index.database import Database
from rag.ingest.merge import build_papers, group_records, paper_id
from rag.text import word_tokens
from rag.ingest.loaders import load
from rag.models import Paper
from rag.ingest.records import RawRecord
from rag.settings import Settings

GEOD = (
    "3D-aware image synthesis aims at learning a generative model that can render photo-realistic 2D images while "
    "capturing decent underlying 3D shapes. A popular solution is to adopt the generative adversarial network (GAN) "
    "and replace the generator with a 3D renderer, where volume rendering with neural radiance field (NeRF) is "
    "typically used. We propose \\textbf{GeoD} and reach $1024\\times1024$ resolution, improving FID by 12\\% over "
    "the baselines on FFHQ and on cats."
)
GEOD_PLAIN = GEOD.replace("\\textbf{GeoD}", "GeoD").replace("$1024\\times1024$", "1024x1024").replace("\\%", "%")
OTHER = (
    "We estimate how many birds sing in a field recording without separating their voices. A tiny recurrent "
    "network listens to overlapping songs and predicts a count, trained only on synthetic mixtures. On forty hours "
    "of real dawn choruses it halves the error of clustering baselines and runs on a microcontroller."
)


def rec(abstract: str, path: str = "a.txt", line: int = 1, **fields) -> RawRecord:
    return RawRecord(path=path, line=line, layout="test", abstract=abstract, **fields)


@pytest.fixture(scope="module")
def seed_records() -> list[RawRecord]:
    loaded = load([SEEDS], Settings().max_abstract_chars)
    assert loaded.failed == []
    return loaded.records


@pytest.fixture(scope="module")
def seed_papers(seed_records) -> list[Paper]:
    return build_papers(seed_records)


# --- the seeds -----------------------------------------------------------------------------------------

def test_seeds_merge_into_221_papers(seed_records, seed_papers):
    assert len(seed_records) == 232
    assert len(seed_papers) == 221
    assert sum(len(p.sources) for p in seed_papers) == 232
    assert len({p.id for p in seed_papers}) == 221
    assert [p.id for p in seed_papers] == sorted(p.id for p in seed_papers)


def test_paper_found_in_four_files(seed_papers):
    (paper,) = [p for p in seed_papers if p.title == "Neural Dependencies Emerging from Learning Massive Categories"]
    assert len(paper.sources) == 4
    files = {s.path.rsplit("/", 1)[-1][:3] for s in paper.sources}
    assert files == {"000", "001", "003", "004"}
    assert {s.layout for s in paper.sources} == {"title-lastfirst-abstract", "authors-abstract", "blocks", "glued-arxiv"}
    assert paper.id == "arxiv:2211.12339"
    assert paper.arxiv_id == "2211.12339"
    assert paper.date == "2022-11-21"
    assert paper.year == 2022
    assert paper.url == "https://arxiv.org/abs/2211.12339"
    assert "Yujun Shen" in paper.authors
    assert paper.authors[0] == "Ruili Feng"
    assert all(len(name.split()) >= 2 and "," not in name for name in paper.authors)
    assert paper.abstract.startswith("This work presents two astonishing findings")
    assert "\\textbf{neural dependency}" in paper.abstract
    assert paper.reference().startswith("Neural Dependencies Emerging from Learning Massive Categories. Ruili Feng")
    assert paper.reference().endswith("2022. https://arxiv.org/abs/2211.12339")


def test_seed_abstracts_sharing_an_opening_stay_apart(seed_papers):
    opening = "Despite the success of Generative Adversarial Networks (GANs) in image synthesis"
    papers = [p for p in seed_papers if p.abstract.startswith(opening)]
    assert len(papers) == 2
    multi_code = next(p for p in papers if p.title == "Image Processing Using Multi-Code GAN Prior")
    assert len(multi_code.sources) == 2  # 001 and 002 give the same paper
    other = next(p for p in papers if p is not multi_code)
    assert len(other.sources) == 1 and other.title is None


def test_ids_are_stable_across_builds_and_record_order(seed_records, seed_papers):
    def summary(papers):
        return {p.id: sorted(s.where for s in p.sources) for p in papers}

    expected = summary(seed_papers)
    assert summary(build_papers(list(seed_records))) == expected
    for seed in (1, 2, 3):
        shuffled = list(seed_records)
        random.Random(seed).shuffle(shuffled)
        papers = build_papers(shuffled)
        assert summary(papers) == expected
        assert [p.model_dump() for p in papers] == [p.model_dump() for p in seed_papers]


# --- merging ---------------------------------------------------------------------------------------------

def test_word_tokens_reduce_latex_markup():
    assert word_tokens(GEOD) == word_tokens(GEOD_PLAIN)
    assert word_tokens(r"\emph{Fast} and $\sim$3x \& more") == ["fast", "and", "3x", "more"]


@pytest.mark.parametrize("variant", [
    GEOD_PLAIN,  # LaTeX markup removed
    GEOD.replace("popular", "common"),  # a changed word
    GEOD.replace("3D-aware", "3D-Aware").replace(" ", "  \n ", 5),  # case and extra whitespace
    GEOD.replace("We propose", "We propose here"),  # an added word
])
def test_near_duplicates_merge(variant):
    papers = build_papers([rec(GEOD, "a.txt", 1, title="GeoD"), rec(variant, "b.txt", 7, arxiv_id="2209.15637"),
                           rec(OTHER, "b.txt", 9)])
    assert len(papers) == 2
    geod = next(p for p in papers if p.title == "GeoD")
    assert [s.where for s in geod.sources] == ["a.txt:1", "b.txt:7"]
    assert geod.id == "arxiv:2209.15637"


def test_different_abstracts_sharing_their_first_twelve_words_do_not_merge():
    opening = "Despite the success of Generative Adversarial Networks (GANs) in image synthesis, applying trained GAN"
    a = opening + (" models to real image processing remains challenging because inversion is slow and lossy, so we "
                   "learn an encoder that maps images to many latent codes and fuse their feature maps.")
    b = opening + (" priors to audio is harder: spectrograms lack the spatial structure convolutions rely on. We "
                   "introduce a one-dimensional generator and show it denoises speech recorded in noisy rooms.")
    assert word_tokens(a)[:12] == word_tokens(b)[:12]
    papers = build_papers([rec(a, "x.txt", 1), rec(b, "x.txt", 3)])
    assert len(papers) == 2
    assert {p.abstract for p in papers} == {a, b}


def test_a_long_shared_tail_alone_does_not_merge():
    tail = " Code and models will be made publicly available at our project page on GitHub soon."
    a = "We study sparse attention for very long legal documents such as contracts and court rulings." + tail
    b = "We forecast the retreat of mountain glaciers from two decades of satellite images of the Alps." + tail
    assert len(build_papers([rec(a), rec(b, line=2)])) == 2


def test_records_with_two_different_arxiv_ids_never_merge():
    papers = build_papers([rec(GEOD, "a.txt", 1, arxiv_id="2209.15637"), rec(GEOD, "b.txt", 1, arxiv_id="2209.99999")])
    assert sorted(p.id for p in papers) == ["arxiv:2209.15637", "arxiv:2209.99999"]


@pytest.mark.parametrize("order", [(0, 1, 2), (1, 0, 2), (0, 2, 1), (2, 1, 0)])
def test_a_record_without_id_does_not_bridge_two_arxiv_ids(order):
    records = [rec(GEOD, "a.txt", 1, arxiv_id="2209.15637"), rec(GEOD, "b.txt", 1),
               rec(GEOD, "c.txt", 1, arxiv_id="2209.99999")]
    papers = build_papers([records[i] for i in order])
    assert sorted(p.id for p in papers) == ["arxiv:2209.15637", "arxiv:2209.99999"]
    assert sum(len(p.sources) for p in papers) == 3
    assert all(len({s.fields.get("arxiv_id") for s in p.sources} - {None}) == 1 for p in papers)


def test_same_arxiv_id_with_different_abstracts_keeps_ids_unique():
    papers = build_papers([rec(GEOD, "a.txt", 1, arxiv_id="2209.15637"), rec(OTHER, "b.txt", 1, arxiv_id="2209.15637")])
    assert [p.id for p in papers] == ["arxiv:2209.15637", "arxiv:2209.15637~2"]
    assert papers[0].sources[0].where == "a.txt:1"


def test_group_records_transitively_merges_exact_copies():
    groups = group_records([rec(GEOD, "a.txt", 1), rec(OTHER, "a.txt", 3), rec(GEOD_PLAIN, "b.txt", 1),
                            rec(GEOD, "c.txt", 1)])
    assert sorted(sorted(r.path for r in g) for g in groups) == [["a.txt"], ["a.txt", "b.txt", "c.txt"]]


def test_paper_without_title_gets_a_label_not_a_title():
    (paper,) = build_papers([rec(OTHER, authors=["Adaeze Okafor", "Henrik Lindqvist", "Ren Tanaka"])])
    assert paper.title is None
    assert paper.label == "Adaeze Okafor, Henrik Lindqvist et al.: “We estimate how many birds sing in a field recording…”"
    (anonymous,) = build_papers([rec(OTHER)])
    assert anonymous.title is None
    assert anonymous.label == "“We estimate how many birds sing in a field recording…”"
    (two,) = build_papers([rec(OTHER, authors=["Adaeze Okafor", "Henrik Lindqvist"])])
    assert two.label.startswith("Adaeze Okafor, Henrik Lindqvist: “We estimate")
    assert anonymous.id == paper_id(None, OTHER) and anonymous.id.startswith("abs:")
    assert anonymous.url is None and anonymous.year is None


def test_merged_values_and_conflicts():
    papers = build_papers([
        rec(GEOD, "a.txt", 1, title="GeoD: Improving 3D-aware Image Synthesis", authors=["Zifan Shi", "Yujun Shen"],
            date="2022-09-30", comment="NeurIPS 2022"),
        rec(GEOD_PLAIN, "b.txt", 4, title="GeoD", authors=["Zifan Shi", "Yinghao Xu", "Yujun Shen"],
            arxiv_id="2209.15637", date="2022-09-30",
            comment="Accepted by NeurIPS 2022. Project page: https://vivianszf.github.io/geod"),
        rec(GEOD, "c.txt", 2, title="GeoD: Improving 3D-aware Image Synthesis", date="2022-10-01"),
    ])
    (paper,) = papers
    assert paper.title == "GeoD: Improving 3D-aware Image Synthesis"  # given twice
    assert paper.authors == ["Zifan Shi", "Yinghao Xu", "Yujun Shen"]  # the longest list
    assert paper.date == "2022-09-30"
    assert paper.comment == "Accepted by NeurIPS 2022. Project page: https://vivianszf.github.io/geod"
    assert paper.arxiv_id == "2209.15637" and paper.url == "https://arxiv.org/abs/2209.15637"
    conflicts = paper.conflicts()
    assert set(conflicts) == {"title", "authors", "abstract", "date", "comment"}
    assert conflicts["title"] == ["GeoD: Improving 3D-aware Image Synthesis", "GeoD"]
    assert conflicts["date"] == ["2022-09-30", "2022-10-01"]
    assert conflicts["authors"] == [["Zifan Shi", "Yujun Shen"], ["Zifan Shi", "Yinghao Xu", "Yujun Shen"]]
    assert conflicts["abstract"] == [GEOD, GEOD_PLAIN]
    assert "arxiv_id" not in conflicts  # one source gave it, none disagreed


def test_no_conflicts_for_agreeing_sources(seed_papers):
    assert all(p.conflicts() == {} for p in seed_papers if len(p.sources) > 1)


# --- the catalog on disk ---------------------------------------------------------------------------------

def replace(catalog: Catalog, files: list[str], records: list[RawRecord]) -> CatalogChange:
    """Plan and apply in one transaction, as an ingest does (without the index)."""
    change = catalog.plan(files, records)
    with catalog.db.transaction() as conn:
        catalog.apply(conn, change)
    return change


def test_catalog_round_trip_through_its_database(tmp_path, seed_records, seed_papers):
    path = tmp_path / "cat" / "collection.sqlite3"
    catalog = Catalog(Database(path))
    assert catalog.records() == [] and catalog.papers() == [] and catalog.count() == 0
    replace(catalog, sorted({r.path for r in seed_records}), list(seed_records))

    again = Catalog(Database(path))  # another process opening the same file
    assert [r.__dict__ for r in again.records()] == [r.__dict__ for r in seed_records]
    assert [p.model_dump() for p in again.papers()] == [p.model_dump() for p in seed_papers]
    assert again.count() == 221 and [p.id for p in again.papers(10, 3)] == [p.id for p in seed_papers[10:13]]
    paper = again.get("arxiv:2211.12339")
    assert paper is not None and paper.title == "Neural Dependencies Emerging from Learning Massive Categories"
    assert again.get("arxiv:0000.00000") is None
    # Term statistics kept per paper equal a full count.
    full = TermStats.from_texts(f"{p.title or ''} {p.abstract}" for p in seed_papers)
    stored = again.frequencies()
    assert dict(stored.items()) == full.df and len(stored) == len(full.df)


def test_an_unchanged_file_plans_nothing_and_writes_nothing(tmp_path, seed_records):
    db = Database(tmp_path / "c.sqlite3")
    catalog = Catalog(db)
    files = sorted({r.path for r in seed_records})
    replace(catalog, files, list(seed_records))
    version = db.version
    change = catalog.plan(files, list(seed_records))
    assert not change and change.papers == [] and change.removed == []
    assert db.version == version


def test_replace_files_replaces_a_files_old_records(tmp_path):
    catalog = Catalog(Database(tmp_path / "c.sqlite3"))
    replace(catalog, ["a.txt", "b.txt"], [rec(GEOD, "a.txt", 1, title="Old title"), rec(OTHER, "b.txt", 1)])
    assert catalog.count() == 2
    # a.txt changed: its GeoD record is gone, a new one (other line, other title) replaces it.
    change = replace(catalog, ["a.txt"], [rec(GEOD, "a.txt", 5, title="New title")])
    assert [p.title for p in change.papers] == ["New title"] and change.removed == []
    assert len(catalog.records()) == 2
    titles = sorted(p.title or "" for p in catalog.papers())
    assert titles == ["", "New title"]
    geod = next(p for p in catalog.papers() if p.title == "New title")
    assert [s.where for s in geod.sources] == ["a.txt:5"]
    # A file emptied: its papers disappear; the others stay.
    change = replace(catalog, ["a.txt"], [])
    assert change.removed == [geod.id] and change.papers == []
    assert [p.abstract for p in catalog.papers()] == [OTHER]
    assert catalog.get(geod.id) is None


def test_incremental_merging_equals_merging_everything(tmp_path):
    """Random files of copies, near-copies, shared and clashing arXiv ids, added, edited and emptied in turn:
    after every step the catalog holds exactly what merging all its records at once gives."""
    rng = random.Random(7)
    bases = [OTHER, GEOD, GEOD_PLAIN] + [" ".join(rng.sample(OTHER.split(), 30)) for _ in range(6)]
    catalog = Catalog(Database(tmp_path / "c.sqlite3"))
    files: dict[str, list[RawRecord]] = {}
    for step in range(40):
        name = f"f{rng.randrange(6)}.txt"
        records = []
        for line in range(1, rng.randrange(0, 6) + 1):
            text = rng.choice(bases)
            if rng.random() < 0.3:
                text = text.replace(" the ", " a ", 1)  # a near-copy
            ident = rng.choice([None, None, "2301.00001", "2301.00002"])
            records.append(rec(text, name, line, arxiv_id=ident, title=rng.choice([None, "T1", "T2"])))
        files[name] = records
        replace(catalog, [name], records)
        stored = catalog.records()
        assert sorted(r.where for r in stored) == sorted(r.where for rs in files.values() for r in rs)
        expected = build_papers(stored)  # the stored order: the order a full merge would see
        assert [p.model_dump() for p in catalog.papers()] == [p.model_dump() for p in expected], step
    full = TermStats.from_texts(f"{p.title or ''} {p.abstract}" for p in catalog.papers())
    assert dict(catalog.frequencies().items()) == full.df


def test_a_change_chained_to_much_of_the_collection_regroups_only_its_neighbourhood(tmp_path, monkeypatch):
    """Past the regrouping bound the result may differ from a full merge, but it stays a valid catalog."""
    import rag.index.catalog as catalog_module

    monkeypatch.setattr(catalog_module, "_REGROUP", 2)
    rng = random.Random(11)
    bases = [OTHER, GEOD, GEOD_PLAIN] + [" ".join(rng.sample(OTHER.split(), 30)) for _ in range(4)]
    catalog = Catalog(Database(tmp_path / "c.sqlite3"))
    files: dict[str, list[RawRecord]] = {}
    for _step in range(30):
        name = f"f{rng.randrange(5)}.txt"
        files[name] = [rec(rng.choice(bases), name, line, arxiv_id=rng.choice([None, "2301.00001", "2301.00002"]))
                       for line in range(1, rng.randrange(0, 5) + 1)]
        replace(catalog, [name], files[name])
        papers = catalog.papers()
        sources = sorted(s.where for p in papers for s in p.sources)
        assert sources == sorted(r.where for rs in files.values() for r in rs)  # every record in exactly one paper
        assert len({p.id for p in papers}) == len(papers) == catalog.count()
        assert all(len({s.fields.get("arxiv_id") for s in p.sources} - {None}) <= 1 for p in papers)
        full = TermStats.from_texts(f"{p.title or ''} {p.abstract}" for p in papers)
        assert dict(catalog.frequencies().items()) == full.df


def test_a_crowd_of_identical_withdrawal_notices_stays_one_paper_per_arxiv_id():
    notice = "This paper has been withdrawn by the author due to a crucial error in equation 3 of the main proof."
    records = [RawRecord(path="w.jsonl", line=n, layout="jsonl", abstract=notice, arxiv_id=f"2301.{n:05d}")
               for n in range(1, 3001)]
    # The same notice without an id, listed twice elsewhere: copies of one paper, joined to the first id'd one.
    records += [RawRecord(path="x.txt", line=n, layout="blocks", abstract=notice) for n in (1, 2)]
    groups = group_records(records)
    assert len(groups) == 3000
    assert all(len({r.arxiv_id for r in g if r.arxiv_id}) == 1 for g in groups)  # never two ids in one paper
    joined = next(g for g in groups if len(g) > 1)
    assert sorted(r.where for r in joined) == ["w.jsonl:1", "x.txt:1", "x.txt:2"]
