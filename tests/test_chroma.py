"""The Chroma store: a real `chroma run` server on loopback (RAG_CHROMA_URL) and the embedded default."""

from __future__ import annotations

import json
import math
import signal
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
from rag.index.embedders import embedder_id
from rag.index.search_index import FINGERPRINT_KEY, STORE_FINGERPRINT
from rag.index.chroma import EMBEDDER_KEY, StoreError, open_collection
from tests.conftest import free_port, missing, stop_process

ROOT = Path(__file__).resolve().parent.parent
SEEDS_DIR = ROOT / "seeds"
LISTING = SEEDS_DIR / "000_5005df3c1c9c486a.txt"  # 7 papers
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
    # Another machine with an empty data dir: its database (catalog, lexical index) is rebuilt from the server.
    b = Assistant(Settings(data_dir=tmp_path / "other", chroma_url=chroma_url, collection="seedtest"))
    remote = server_client(chroma_url).get_collection("seedtest")
    assert b.index.count() == remote.count() == b.index.lexical.count()
    assert b.db.get_meta(STORE_FINGERPRINT) == remote.metadata[FINGERPRINT_KEY]
    assert b.search("score matching for GANs", k=3)[0].paper.title == SMART
    assert not (tmp_path / "other" / "chroma").exists()
    # Ingesting the same listing there embeds nothing new.
    report = b.ingest(LISTING, progress=False)
    assert report.unchanged == 7 and report.added == report.updated == report.removed == 0


QUOKKA = "Quokka Routing: Sparse Experts for Tiny Language Models"
PELICAN = "Pelican Maps: Learned Indexes for Geospatial Joins"
HERON = """Heron Sampling: Faster Diffusion with Learned Step Sizes
Heron Sampling learns the step sizes of a diffusion sampler from a few hundred training images. With eight steps it matches the image quality that standard samplers reach with fifty, cutting sampling time by a factor of six on CIFAR-10 and ImageNet 64x64.
"""


@pytest.mark.slow
def test_two_clients_that_both_write_share_everything_through_the_server(chroma_url, tmp_path, monkeypatch):
    from rag.index.search_index import Index

    (tmp_path / "extra.txt").write_text(EXTRA)
    (tmp_path / "heron.txt").write_text(HERON)
    a = Assistant(Settings(data_dir=tmp_path / "a", chroma_url=chroma_url, collection="sharedtest"))
    b = Assistant(Settings(data_dir=tmp_path / "b", chroma_url=chroma_url, collection="sharedtest"))
    assert a.ingest(LISTING, progress=False).added == 7
    # b has its own data dir and never saw a's catalog: the server's records are the catalog.
    assert b.search("score matching for GANs", k=1)[0].paper.title == SMART
    # From here on each client takes in only the papers the other's writes name in the change log.
    monkeypatch.setattr(Index, "adopt", lambda self, catalog: pytest.fail("caught up by a full rebuild"))
    report = b.ingest(tmp_path / "extra.txt", progress=False)
    assert (report.added, report.removed, report.papers) == (2, 0, 9)  # b's ingest keeps a's 7 papers
    # a sees b's papers on its next question, without reopening anything.
    assert a.search("Quokka Routing sparse experts", k=1)[0].paper.title == QUOKKA
    answer = a.ask("By how much does Quokka Routing lower perplexity on WikiText-103?")
    assert not answer.abstained and answer.citations[0].paper.title == QUOKKA
    # a's next ingest of its own files removes nothing b added.
    report = a.ingest(LISTING, tmp_path / "heron.txt", progress=False)
    assert (report.added, report.unchanged, report.removed, report.papers) == (1, 9, 0, 10)
    on_server = {m["paper_id"] for m in server_client(chroma_url).get_collection("sharedtest")
                 .get(include=["metadatas"])["metadatas"]}
    assert on_server == {p.id for p in a.papers()} == {p.id for p in b.papers()} and len(on_server) == 10
    assert b.search("learned step sizes for diffusion sampling", k=1)[0].paper.title.startswith("Heron Sampling")
    pelican = next(p for p in b.papers() if p.title == PELICAN)
    assert pelican.sources[0].path == str(tmp_path / "extra.txt")  # provenance travels with the record


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
    assert meta[FINGERPRINT_KEY] == assistant.db.get_meta(STORE_FINGERPRINT)
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


# -- several processes on one embedded data dir -----------------------------------------------------------

def _rag_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_running_assistant_sees_another_process_ingest_and_never_undoes_it(seeded, tmp_path):
    chat = seeded  # stands for `rag ui`: one long-lived Assistant that has answered before
    data = chat.settings.data_dir
    before = len(chat.papers())
    assert chat.search("Quokka Routing sparse experts", k=1)[0].paper.title != QUOKKA
    (tmp_path / "extra.txt").write_text(EXTRA)
    result = _rag_cli(data, "ingest", str(tmp_path / "extra.txt"))  # another process: the CLI
    assert result.returncode == 0, result.stderr
    # The chat's next question sees the new papers (embedded Chroma reopened; catalog and BM25 are in the database).
    assert chat.search("Quokka Routing sparse experts", k=1)[0].paper.title == QUOKKA
    answer = chat.ask("Which learned index speeds up geospatial joins, and by how much?")
    assert not answer.abstained and answer.citations[0].paper.title == PELICAN and "3.2" in answer.text
    assert chat.status()["papers"] == before + 2
    # An upload in the chat merges onto what the CLI added instead of writing its stale catalog back.
    (tmp_path / "heron.txt").write_text(HERON)
    report = chat.ingest(tmp_path / "heron.txt", progress=False)
    assert (report.added, report.removed, report.papers) == (1, 0, before + 3)
    titles = {p.title for p in Assistant(Settings(data_dir=data)).papers()}  # a fresh process's view
    assert {QUOKKA, PELICAN} <= titles and any(t and t.startswith("Heron Sampling") for t in titles)
    listed = _rag_cli(data, "search", "learned step sizes for diffusion sampling", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["paper"]["title"].startswith("Heron Sampling")


_KILLABLE = """
import sys
from rag import Assistant, Settings
assistant = Assistant(Settings(data_dir=sys.argv[1], embed_batch_size=8))
assistant.ingest(sys.argv[2], progress=False, on_progress=lambda done, total: print(done, total, flush=True))
print("finished", flush=True)
"""


@pytest.mark.slow
def test_an_ingest_killed_with_sigkill_resumes_without_duplicates_or_loss(tmp_path):
    data = tmp_path / "d"
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(data), str(SEEDS_DIR)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            done, total = line.split()
            assert done != "finished", "the ingest ended before it could be killed"
            if int(done) >= 40:  # some batches stored, most not
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        stop_process(proc)
    assert proc.returncode == -signal.SIGKILL and int(done) < int(total)
    # Nothing half-visible: the catalog and the lexical index are committed only after the vectors are stored.
    assert Assistant(Settings(data_dir=data)).papers() == []
    again = Assistant(Settings(data_dir=data))
    totals: list[int] = []
    report = again.ingest(SEEDS_DIR, progress=False, on_progress=lambda done, total: totals.append(total))
    assert report.failed == [] and report.papers > 200
    assert report.added + report.unchanged == report.papers and report.updated == report.removed == 0
    assert totals[-1] <= int(total) - int(done)  # resumed: the chunks stored before the kill are not embedded again
    chunks = again.index.collection.get(include=["metadatas"])["metadatas"]
    per_paper: dict[str, set[int]] = {}
    for meta in chunks:
        per_paper.setdefault(meta["paper_id"], set()).add(meta["chunk"])
    assert set(per_paper) == {p.id for p in again.papers()}  # every paper indexed, nothing stray
    assert all(len(numbers) == next(iter(m["chunks"] for m in chunks if m["paper_id"] == pid))
               for pid, numbers in per_paper.items())  # no paper with missing or extra chunks
    assert again.search("score matching regularity for GANs", k=1)[0].paper.title == SMART
