"""The lexical index in the collection's database: BM25 equal to LlamaIndex's BM25Retriever, updated in place."""

from __future__ import annotations

import pytest
from llama_index.retrievers.bm25 import BM25Retriever

from conftest import SEEDS
from rag.index.chunking import chunk_paper
from rag.index.database import Database
from rag.index.lexical import LexicalIndex, Where
from rag.ingest.loaders import load
from rag.ingest.merge import build_papers
from rag.settings import Settings

QUERIES = ["How does GeoD improve 3D-aware image synthesis?", "speech recognition datasets",
           "accuracy on ImageNet of vision transformers", "Which papers by Gao study diffusion?",
           "score matching regularity for GANs", "diffusion diffusion models models"]


@pytest.fixture(scope="module")
def nodes():
    papers = build_papers(load([SEEDS], Settings().max_abstract_chars).records)
    return [n for p in papers for n in chunk_paper(p, 512, 64, "test")]


def build(path, nodes) -> LexicalIndex:
    lexical = LexicalIndex(Database(path))
    with lexical.db.transaction() as conn:
        lexical.add(conn, nodes)
    return lexical


def ranking(lexical: LexicalIndex, query: str, k: int = 30, where: Where | None = None):
    return [(chunk_id, round(score, 4)) for chunk_id, score in lexical.search(query, k, where)]


def reference(nodes, query: str, k: int = 30):
    retriever = BM25Retriever(nodes=nodes, similarity_top_k=k)
    return [(n.node.node_id, round(n.score or 0, 4)) for n in retriever.retrieve(query) if (n.score or 0) > 0]


def test_scores_equal_llamaindex_bm25_over_the_same_chunks(tmp_path, nodes):
    lexical = build(tmp_path / "c.sqlite3", nodes)
    assert lexical.count() == len(nodes)
    for query in QUERIES:
        ours, theirs = ranking(lexical, query), reference(nodes, query)
        exact = dict(reference(nodes, query, len(nodes)))
        assert ours and all(exact[chunk_id] == score for chunk_id, score in ours), query  # the same BM25 scores
        # Candidates come from the rarer terms, so the far tail may differ; the head does not (ties in any order).
        assert sorted(ours[:10]) == sorted(theirs[:10]), query


def test_removing_chunks_leaves_what_a_fresh_index_of_the_rest_gives(tmp_path, nodes):
    lexical = build(tmp_path / "a.sqlite3", nodes)
    gone = sorted({n.metadata["paper_id"] for n in nodes})[::3]
    with lexical.db.transaction() as conn:
        lexical.remove_papers(conn, gone)
    rest = [n for n in nodes if n.metadata["paper_id"] not in gone]
    fresh = build(tmp_path / "b.sqlite3", rest)
    for query in QUERIES:
        assert ranking(lexical, query) == ranking(fresh, query)
    assert lexical.state(gone) == {}
    kept = rest[0].metadata["paper_id"]
    assert lexical.state([kept])[kept].complete


def test_filters_and_hostile_queries(tmp_path, nodes):
    lexical = build(tmp_path / "c.sqlite3", nodes)
    some = {n.metadata["paper_id"] for n in nodes[:5]}
    found = lexical.nodes([i for i, _ in lexical.search("image generation models", 30, Where(paper_ids=list(some)))])
    assert found and {n.metadata["paper_id"] for n in found.values()} <= some
    years = lexical.nodes([i for i, _ in lexical.search("image generation models", 30, Where(year_from=2023))])
    assert years and all(n.metadata["year"] >= 2023 for n in years.values())
    # FTS5 query syntax in a question is text: no error, and the words still count.
    for query in ['GAN" OR NEAR(x', "AND OR NOT", "title:* ^diffusion", '"""', "col:(a b)"]:
        lexical.search(query, 10)
    assert lexical.search('diffusion" NOT "models', 5) == lexical.search("diffusion models", 5)
    assert lexical.search("the of and", 5) == []  # stop words only


def test_on_large_collections_common_terms_score_but_find_no_candidates(tmp_path, nodes, monkeypatch):
    import rag.index.lexical as lexical_module

    lexical = build(tmp_path / "c.sqlite3", nodes)
    query = "Which GAN methods improve image synthesis with score matching?"
    exact = reference(nodes, query, len(nodes))
    monkeypatch.setattr(lexical_module, "_FEW", 0)  # as if the collection were large: "image", "gan" are common
    found = ranking(lexical, query)
    assert found[0] == exact[0]  # the chunk with the rare terms ("score matching") still leads
    assert all(dict(exact)[chunk_id] == score for chunk_id, score in found)  # scored with every term
    asked: list[list[str]] = []
    real = lexical._candidates
    monkeypatch.setattr(lexical, "_candidates", lambda terms, *a: asked.append(terms) or real(terms, *a))
    lexical.search(query, 30)
    assert "match" in asked[0] and "imag" not in asked[0]  # FTS5 ranked only the chunks with rarer terms
    assert ranking(lexical, "image")  # a query of common terms only still searches by its rarest one


def test_a_database_of_another_schema_version_is_emptied_for_a_rebuild(tmp_path, nodes):
    import sqlite3

    path = tmp_path / "c.sqlite3"
    build(path, nodes[:5])
    with sqlite3.connect(path) as conn:  # as an older version left it: another schema, another papers table
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
        conn.execute("DROP TABLE papers")
        conn.execute("CREATE TABLE papers (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
    reopened = LexicalIndex(Database(path))
    assert reopened.count() == 0 and reopened.db.get_meta("store_fingerprint") is None  # rebuilt from Chroma next
    assert reopened.db.conn.execute("SELECT label, year FROM papers").fetchall() == []
