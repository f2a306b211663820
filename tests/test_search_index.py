"""Incremental ingest into the real embedded Chroma: idempotent, replacing changed papers, resumable."""

from __future__ import annotations

import pytest

from rag import Assistant, Settings
from rag.index.chroma import StoreError, open_collection

ABSTRACT = (
    "We study {topic} with a new method that is simple and fast. Our experiments on three benchmarks show "
    "that the method improves the baseline by a large margin, reaching {score} on the standard test split. "
    "We release the code and models to support further research in this direction."
)
TOPICS = ["graph neural networks", "protein folding", "speech recognition", "robot grasping", "weather forecasting"]


def block_listing(scores: list[str], comment: str | None = None) -> str:
    """A listing in the blank-line-separated blocks layout, one paper per topic."""
    blocks = []
    for number, (topic, score) in enumerate(zip(TOPICS, scores, strict=False)):
        note = f"\n\n{comment}" if comment and number == 0 else ""
        blocks.append(f"{ABSTRACT.format(topic=topic, score=score)}{note}\n\narXiv:2301.0000{number}\n"
                      f"Created: 2023-01-0{number + 1}")
    return "\n\n".join(blocks) + "\n"


@pytest.fixture
def listing(tmp_path):
    path = tmp_path / "listing.txt"
    path.write_text(block_listing(["91.0%"] * 5), encoding="utf-8")
    return path


def chunk_ids(assistant: Assistant) -> list[str]:
    return assistant.index.collection.get(include=[])["ids"]


def test_reingest_is_idempotent_and_embeds_nothing(listing, monkeypatch):
    assistant = Assistant()
    first = assistant.ingest(listing, progress=False)
    assert (first.added, first.unchanged, first.papers) == (5, 0, 5)
    ids = chunk_ids(assistant)
    again = Assistant()  # a new process would see the same on-disk state
    calls = []
    # The embedder is a pydantic model shared by the process: patch its class for this test only.
    monkeypatch.setattr(type(again.index.embed_model), "get_text_embedding_batch",
                        lambda self, texts, **kw: calls.append(texts) or [])
    second = again.ingest(listing, progress=False)
    assert (second.added, second.updated, second.unchanged, second.removed) == (0, 0, 5, 0)
    assert calls == []
    assert sorted(chunk_ids(again)) == sorted(ids) and len(set(ids)) == len(ids)


def test_changed_paper_is_replaced_and_missing_one_removed(listing):
    assistant = Assistant()
    assistant.ingest(listing, progress=False)
    listing.write_text(block_listing(["91.0%", "95.5%", "91.0%", "91.0%"]), encoding="utf-8")
    report = assistant.ingest(listing, progress=False)
    assert (report.updated, report.unchanged, report.removed, report.papers) == (1, 3, 1, 4)
    hits = assistant.search("protein folding", k=1)
    assert "95.5%" in hits[0].paper.abstract and "95.5%" in hits[0].passage
    assert {m["paper_id"] for m in assistant.index.collection.get(include=["metadatas"])["metadatas"]} == {
        p.id for p in assistant.papers()}


def test_killed_ingest_is_completed_by_the_next_run(listing, monkeypatch):
    settings = Settings(embed_batch_size=2)
    assistant = Assistant(settings)
    model_class = type(assistant.index.embed_model)
    real = model_class.get_text_embedding_batch
    batches = []

    def dies_after_one_batch(self, texts, **kw):
        if batches:
            raise KeyboardInterrupt  # the process is killed mid-ingest
        batches.append(texts)
        return real(self, texts, **kw)

    monkeypatch.setattr(model_class, "get_text_embedding_batch", dies_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        assistant.ingest(listing, progress=False)
    assert 0 < assistant.index.count() < 5
    assert assistant.papers() == []  # the same process does not list what it could not store either
    monkeypatch.undo()
    stored = assistant.index.count()
    resumed = Assistant(settings)
    embedded: list[str] = []
    monkeypatch.setattr(model_class, "get_text_embedding_batch",
                        lambda self, texts, **kw: embedded.extend(texts) or real(self, texts, **kw))
    report = resumed.ingest(listing, progress=False)
    assert report.added == 5 and report.papers == 5
    assert len(embedded) == 5 - stored  # the chunks the killed run stored are kept, not embedded again
    assert resumed.index.count() == 5 and resumed.index.lexical.count() == 5
    # The lexical side has the papers of both runs: a purely lexical query finds each.
    for topic in TOPICS:
        assert resumed.search(topic, k=1)[0].paper.abstract.startswith(f"We study {topic}")


def test_an_index_built_before_the_database_is_adopted_from_chroma(listing):
    assistant = Assistant()
    assistant.ingest(listing, progress=False)
    papers = assistant.papers()
    assistant.index.close()
    assistant.db.close()
    data = assistant.settings.data_dir
    for leftover in data.glob("collection.sqlite3*"):
        leftover.unlink()  # as an index written by an older version, which had no database
    (data / "catalog.json").write_text("{}", encoding="utf-8")  # but this catalog file
    reopened = Assistant()
    assert reopened.papers() == papers and reopened.index.lexical.count() == 5
    assert reopened.search("robot grasping", k=1)[0].paper.abstract.startswith("We study robot grasping")
    assert not (data / "catalog.json").exists()  # superseded by the database
    again = Assistant()
    assert again.ingest(listing, progress=False).unchanged == 5


def test_an_unchanged_reingest_writes_nothing(listing):
    assistant = Assistant()
    assistant.ingest(listing, progress=False)
    version, fingerprint = assistant.db.version, assistant.index.stored_fingerprint()
    assert Assistant().ingest(listing, progress=False).unchanged == 5
    assert assistant.db.version == version and assistant.index.stored_fingerprint() == fingerprint


def test_index_built_by_another_embedder_is_refused(listing):
    settings = Settings()
    Assistant(settings).ingest(listing, progress=False)
    with pytest.raises(StoreError, match="local:all-MiniLM-L6-v2"):
        open_collection(settings, "openai:text-embedding-3-small@https://api.openai.com/v1")


def test_rejected_records_do_not_sink_the_ingest(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(block_listing(["80%"] * 3), encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    chess = ("Chess engines search game trees with alpha-beta pruning and learned evaluation functions. "
             "We describe a tablebase compression scheme that halves memory use without slowing probes.")
    bad.write_text('{"title": "Fine", "abstract": "' + chess + '"}\n{not json\n', encoding="utf-8")
    report = Assistant().ingest(good, bad, progress=False)
    assert report.papers == 4 and report.added == 4
    assert report.failed == [(f"{bad}:2", report.failed[0][1])] and "invalid JSON" in report.failed[0][1]


def dense_results(store, embedding: list[float], filters=None) -> list[tuple[str, float, str, dict]]:
    from llama_index.core.vector_stores.types import VectorStoreQuery

    result = store.query(VectorStoreQuery(query_embedding=embedding, similarity_top_k=4, filters=filters))
    return [(i, round(s, 6), n.get_content(), n.metadata)
            for i, s, n in zip(result.ids, result.similarities, result.nodes, strict=True)]


def without_text(results):
    """Embedded Chroma holds vectors and metadata; the text is in the database (a shared server has it too)."""
    return [(i, s, meta) for i, s, _, meta in results]


def test_dense_side_serves_the_same_chunks_as_llamaindex_chroma_store(listing):
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters
    from llama_index.vector_stores.chroma import ChromaVectorStore

    assistant = Assistant()
    assistant.ingest(listing, progress=False)
    index = assistant.index
    plain = ChromaVectorStore(chroma_collection=index.collection)
    embedding = index.embed_model.get_query_embedding("protein folding benchmarks")
    ours = dense_results(index.vector_store, embedding)

    assert len(ours) == 4 and without_text(ours) == without_text(dense_results(plain, embedding))
    assert ours[0][2].startswith("We study protein folding")
    assert all(text == index.lexical.nodes([i])[i].get_content() for i, _, text, _ in ours)
    assert index.collection.get(ids=[ours[0][0]], include=["documents"])["documents"] == [None]
    one_paper = MetadataFilters(filters=[MetadataFilter(key="paper_id", value=assistant.papers()[0].id)])
    filtered = dense_results(index.vector_store, embedding, one_paper)
    assert len(filtered) == 1 and without_text(filtered) == without_text(dense_results(plain, embedding, one_paper))


def test_dense_side_fetches_chunks_the_database_lacks_only_from_a_shared_server(listing, monkeypatch):
    assistant = Assistant()
    assistant.ingest(listing, progress=False)
    index = assistant.index
    embedding = index.embed_model.get_query_embedding("speech recognition")
    expected = dense_results(index.vector_store, embedding)
    monkeypatch.setattr(index.vector_store, "_nodes", lambda ids: {})
    # Embedded: a chunk the database does not list belongs to an ingest that never committed: not shown.
    assert dense_results(index.vector_store, embedding) == []
    # A client of a shared server: another client just added these chunks; they are fetched from Chroma.
    monkeypatch.setattr(index.vector_store, "_shared", True)
    assert without_text(dense_results(index.vector_store, embedding)) == without_text(expected)


def test_only_changed_papers_are_split(listing, monkeypatch):
    import rag.index.search_index as search_index

    assistant = Assistant()
    assistant.ingest(listing, progress=False)
    split: list[str] = []
    real = search_index.chunk_paper
    monkeypatch.setattr(search_index, "chunk_paper", lambda paper, *a: split.append(paper.id) or real(paper, *a))
    report = assistant.ingest(listing, progress=False)
    assert report.unchanged == 5 and split == []
    listing.write_text(block_listing(["91.0%", "95.5%", "91.0%", "91.0%", "91.0%"]), encoding="utf-8")
    report = assistant.ingest(listing, progress=False)
    assert (report.updated, report.unchanged) == (1, 4) and split == ["arxiv:2301.00001"]
    # Provenance only (the same paper now also listed in a second file): the record is rewritten, nothing split.
    split.clear()
    copy = listing.parent / "copy.txt"
    copy.write_text(block_listing(["91.0%"]), encoding="utf-8")
    report = assistant.ingest(copy, progress=False)
    assert (report.added, report.updated, report.unchanged) == (0, 0, 5) and split == []
    assert [s.path for s in assistant.paper("arxiv:2301.00000").sources] == [str(copy), str(listing)]
