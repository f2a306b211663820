"""The Chroma store: a real `chroma run` server on loopback (RAG_CHROMA_URL) and the embedded default."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from rag import Assistant, Settings
from rag.embedders import embedder_id
from rag.index import FINGERPRINT_KEY
from rag.store import EMBEDDER_KEY, StoreError, open_collection
from tests.conftest import free_port, missing, stop_process

ROOT = Path(__file__).resolve().parent.parent
LISTING = ROOT / "seeds" / "000_5005df3c1c9c486a.txt"  # 7 papers
SMART = "SMaRt: Improving GANs with Score Matching Regularity"
FAIRNESS = "Improving the Fairness of Deep Generative Models without Retraining"
EXTRA = """Quokka Routing: Sparse Experts for Tiny Language Models
We introduce Quokka Routing, a sparse mixture-of-experts router designed for language models with fewer than one \
hundred million parameters. The router assigns each token to one of sixteen small experts using a learned hash of its \
hidden state. On the WikiText-103 benchmark, Quokka Routing lowers perplexity from 24.1 to 21.7 at equal compute. We \
also show that the router is stable without auxiliary load-balancing losses.
Pelican Maps: Learned Indexes for Geospatial Joins
Pelican Maps replace the R-tree in spatial databases with a learned index that predicts the page holding each polygon. \
The index is trained in minutes and updated incrementally when new shapes arrive. Across four public map datasets, \
Pelican Maps speed up geospatial joins by a factor of 3.2 while using one fifth of the memory of an R-tree. The code \
and the benchmarks are released for reproducibility.
"""


# -- the server ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory) -> Iterator[str]:
    """URL of a real `chroma run` server on loopback, started once for this module."""
    binary = Path(sys.executable).parent / "chroma"
    if not binary.exists():
        missing(f"the chromadb CLI is missing at {binary}; install the project: pip install -e .")
    where = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = where / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "run", "--path", str(where / "db"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run not ready in 60s:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


def server_client(url: str) -> chromadb.ClientAPI:
    parts = urlparse(url)
    return chromadb.HttpClient(host=parts.hostname, port=parts.port,
                               settings=ChromaSettings(anonymized_telemetry=False))


@pytest.fixture(scope="module")
def ingested(chroma_url, tmp_path_factory) -> tuple[Settings, object, object]:
    """Settings of a data dir whose index lives on the server, with the first and a repeated ingest's reports."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("server-a") / "data", chroma_url=chroma_url,
                        collection="seedtest")
    assistant = Assistant(settings)
    first = assistant.ingest(LISTING, progress=False)
    again = assistant.ingest(LISTING, progress=False)
    return settings, first, again


@pytest.mark.slow
def test_ingest_puts_the_chunks_on_the_server_not_on_disk(ingested, chroma_url):
    settings, first, _ = ingested
    assert first.failed == [] and first.records == 7 and first.papers == 7
    assert first.added == 7 and first.updated == first.unchanged == first.removed == 0
    assert not (settings.data_dir / "chroma").exists()  # no embedded database was created
    remote = server_client(chroma_url).get_collection("seedtest")
    assert remote.count() >= 7  # at least one chunk per paper
    assert remote.metadata[EMBEDDER_KEY] == embedder_id(settings)
    assert remote.configuration_json["hnsw"]["space"] == "cosine"
    papers = {m["paper_id"] for m in remote.get(include=["metadatas"])["metadatas"]}
    assert len(papers) == 7


@pytest.mark.slow
def test_search_over_the_server_finds_the_right_paper_first(ingested):
    assistant = Assistant(ingested[0])
    assert assistant.search("score matching for GANs", k=3)[0].paper.title == SMART
    assert assistant.search("fair image generation from a pre-trained GAN without retraining", k=3)[0].paper.title \
        == FAIRNESS
    hits = assistant.search("text-to-video generation with text-free videos", k=7)
    assert hits[0].paper.title.startswith("A Recipe for Scaling up Text-to-Video")
    assert len({h.paper.id for h in hits}) == len(hits) == 7  # one hit per paper, all 7 reachable


@pytest.mark.slow
def test_reingest_reports_everything_unchanged(ingested, chroma_url):
    _, first, again = ingested
    assert again.unchanged == 7 and again.added == again.updated == again.removed == 0
    assert again.papers == first.papers


@pytest.mark.slow
def test_second_data_dir_sees_the_server_chunks(ingested, chroma_url, tmp_path):
    settings, _, _ = ingested
    other = tmp_path / "other"
    other.mkdir()
    # Another machine with the same catalog but no BM25 files: it rebuilds BM25 from the server.
    shutil.copy(settings.data_dir / "catalog.json", other / "catalog.json")
    b = Assistant(Settings(data_dir=other, chroma_url=chroma_url, collection="seedtest"))
    remote = server_client(chroma_url).get_collection("seedtest")
    assert b.index.count() == remote.count()
    assert b.index.lexical is not None and len(b.index.lexical.corpus) == remote.count()
    marker = other / "bm25" / "seedtest" / "fingerprint"
    assert marker.read_text() == remote.metadata[FINGERPRINT_KEY]
    assert b.search("score matching for GANs", k=3)[0].paper.title == SMART
    assert not (other / "chroma").exists()
    # A third data dir with nothing at all: ingesting the same listing embeds nothing new.
    c = Assistant(Settings(data_dir=tmp_path / "third", chroma_url=chroma_url, collection="seedtest"))
    report = c.ingest(LISTING, progress=False)
    assert report.unchanged == 7 and report.added == report.updated == report.removed == 0


@pytest.mark.slow
def test_change_made_through_one_data_dir_reaches_another(chroma_url, tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text(EXTRA)
    a = Assistant(Settings(data_dir=tmp_path / "a", chroma_url=chroma_url, collection="sharedtest"))
    assert a.ingest(LISTING, progress=False).added == 7
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    b_settings = Settings(data_dir=tmp_path / "b", chroma_url=chroma_url, collection="sharedtest")
    assert Assistant(b_settings).search("Quokka Routing sparse experts", k=1)[0].paper.title != \
        "Quokka Routing: Sparse Experts for Tiny Language Models"
    report = a.ingest(LISTING, extra, progress=False)
    assert report.added == 2 and report.unchanged == 7
    # b's BM25 files now disagree with the server's fingerprint: opening rebuilds them from the server.
    shutil.copy(tmp_path / "a" / "catalog.json", tmp_path / "b" / "catalog.json")
    b = Assistant(b_settings)
    assert len(b.index.lexical.corpus) == server_client(chroma_url).get_collection("sharedtest").count()
    assert b.search("Quokka Routing sparse experts", k=1)[0].paper.title == \
        "Quokka Routing: Sparse Experts for Tiny Language Models"
    assert b.search("learned index for geospatial joins", k=1)[0].paper.title == \
        "Pelican Maps: Learned Indexes for Geospatial Joins"


@pytest.mark.slow
def test_other_embedder_is_refused_on_the_server(ingested):
    settings, _, _ = ingested
    with pytest.raises(StoreError) as info:
        open_collection(settings, "other:embedder")
    message = str(info.value)
    assert "other:embedder" in message and embedder_id(settings) in message and "seedtest" in message
    same = open_collection(settings, embedder_id(settings))  # the right embedder still opens it
    assert same.count() >= 7


def test_unreachable_server_is_a_store_error_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    assistant = Assistant(Settings(data_dir=tmp_path / "d", chroma_url=url))
    with pytest.raises(StoreError, match="unreachable") as info:
        assistant.search("score matching")
    assert url in str(info.value)
    with pytest.raises(StoreError, match="unreachable"):
        open_collection(Settings(data_dir=tmp_path / "d", chroma_url=url), "local:x")
    assert not (tmp_path / "d" / "chroma").exists()  # no silent fallback to the embedded store


@pytest.mark.parametrize("url", ["ftp://x", "127.0.0.1:8000", "http://", "http://127.0.0.1:99999",
                                 "http://host:port"])
def test_bad_url_is_a_clear_store_error(tmp_path, url):
    with pytest.raises(StoreError) as info:
        open_collection(Settings(data_dir=tmp_path, chroma_url=url), "local:x")
    assert "must look like http://host:port" in str(info.value) and repr(url) in str(info.value)
    assert not (tmp_path / "chroma").exists()


# -- embedded -----------------------------------------------------------------------------------------

def test_embedded_collection_uses_cosine_space(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", collection="embedtest")
    collection = open_collection(settings, "local:test")
    assert (tmp_path / "d" / "chroma").is_dir()
    assert collection.configuration_json["hnsw"]["space"] == "cosine"
    assert collection.metadata[EMBEDDER_KEY] == "local:test"
    collection.add(ids=["x", "y"], embeddings=[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
                   metadatas=[{"paper_id": "x"}, {"paper_id": "y"}], documents=["x", "y"])
    # Cosine distance ignores length: [5, 0, 0] is at distance 0 from [1, 0, 0] (L2 would say 16).
    found = collection.query(query_embeddings=[[5.0, 0.0, 0.0]], n_results=2)
    assert found["ids"][0] == ["x", "y"]
    assert found["distances"][0][0] == pytest.approx(0.0, abs=1e-5)
    assert found["distances"][0][1] == pytest.approx(1.0, abs=1e-5)
    diagonal = collection.query(query_embeddings=[[1.0, 1.0, 0.0]], n_results=1)
    assert diagonal["distances"][0][0] == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-5)


def test_embedded_collection_persists_and_refuses_another_embedder(tmp_path):
    settings = Settings(data_dir=tmp_path / "d", collection="embedtest")
    empty = open_collection(settings, "local:one")
    assert empty.count() == 0
    # An empty collection is not bound to an embedder yet.
    assert open_collection(settings, "local:two").count() == 0
    filled = open_collection(settings, "local:one")
    filled.add(ids=["x"], embeddings=[[1.0, 0.0]], metadatas=[{"paper_id": "x"}], documents=["x"])
    reopened = open_collection(settings, "local:one")
    assert reopened.count() == 1 and reopened.configuration_json["hnsw"]["space"] == "cosine"
    with pytest.raises(StoreError, match="local:two"):
        open_collection(settings, "local:two")


@pytest.mark.slow
def test_embedded_assistant_records_its_embedder_and_fingerprint(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    assistant = Assistant(settings)
    assistant.ingest(LISTING, progress=False)
    meta = assistant.index.collection.metadata
    assert meta[EMBEDDER_KEY] == embedder_id(settings)
    assert meta[FINGERPRINT_KEY] == (tmp_path / "d" / "bm25" / "abstracts" / "fingerprint").read_text()
    assert assistant.index.collection.configuration_json["hnsw"]["space"] == "cosine"
    assert len(Assistant(settings).papers()) == 7  # the catalog persisted beside the index


def test_a_new_client_of_the_server_rebuilds_the_catalog_from_it(chroma_url, tmp_path):
    first = Assistant(Settings(data_dir=tmp_path / "a", chroma_url=chroma_url, collection="shared"))
    first.ingest(LISTING, progress=False)
    other = Assistant(Settings(data_dir=tmp_path / "b", chroma_url=chroma_url, collection="shared"))
    papers = other.papers()  # no local catalog: it comes from the server
    assert {p.id for p in papers} == {p.id for p in first.papers()}
    smart = next(p for p in papers if (p.title or "").startswith("SMaRt"))
    assert smart.sources and smart.sources[0].path.endswith("000_5005df3c1c9c486a.txt")
    assert other.search("score matching regularity", k=1)[0].paper.id == smart.id
    # Ingesting the same file from the other client re-embeds nothing: the raw records came along.
    report = other.ingest(LISTING, progress=False)
    assert (report.unchanged, report.added, report.updated) == (7, 0, 0)
