"""The web chat through its HTTP API (gradio_client against the app on loopback), and `rag ui`'s safety checks."""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import free_port
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError

from rag import Assistant, Settings
from rag.answering.base import Draft
from rag.cli import main
from ui import cli as ui_cli
from ui.app import build_app, launch, launch_options

SMART = "What FID did SMaRt reach on ImageNet 64x64?"


def serve(assistant, **options) -> tuple[object, Client]:
    demo = build_app(assistant, **options)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_options())
    return demo, Client(f"http://127.0.0.1:{port}/", verbose=False)


@pytest.fixture
def app(seeded) -> Iterator[tuple[object, Client]]:
    demo, client = serve(seeded)
    yield demo, client
    demo.close()


def plain(fragment: str) -> str:
    """The text a browser shows for an HTML fragment."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def text_of(message: dict) -> str:
    content = message["content"]
    return "".join(part.get("text", "") for part in content) if isinstance(content, list) else str(content)


def ask(client: Client, question: str, history=None, answerer="extractive", k=5, year_from="any", year_to="any",
        author="") -> list[dict]:
    history, cleared = client.predict(question, history or [], answerer, k, year_from, year_to, author,
                                      api_name="/ask")
    assert cleared == ""
    return history


def test_endpoints_have_stable_names(app):
    _, client = app
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/ask", "/new_conversation", "/papers", "/paper", "/ingest", "/status"} <= set(named)
    assert [p["parameter_name"] for p in named["/ask"]["parameters"]] == [
        "question", "history", "answerer", "k", "year_from", "year_to", "author"]


def test_ask_streams_an_answer_with_citation_cards(app):
    _, client = app
    history = ask(client, SMART)
    assert [m["role"] for m in history] == ["user", "assistant"]
    answer = text_of(history[1])
    assert "8.87 to 7.11" in answer and '<sup class="rag-ref">&#91;1&#93;</sup>' in answer
    assert answer.count('class="rag-card"') == 1 and "[1] SMaRt: Improving GANs" in plain(answer)
    assert "<mark>For instance, when training Aurora on the ImageNet 64x64 dataset" in answer
    # a follow-up in the same session keeps the conversation; each answer keeps its own sources
    history = ask(client, "How many nodes and triplets does the UKnow knowledge graph contain?", history)
    assert len(history) == 4 and text_of(history[1]) == answer
    assert 'href="https://arxiv.org/abs/2302.06891"' in text_of(history[3])
    # abstention is shown as such
    history = ask(client, "What is the capital city of Australia?", history)
    assert "Not in the collection" in text_of(history[-1]) and "rag-card" not in text_of(history[-1])
    status = client.predict(api_name="/status")
    assert status["papers"] == 221 and status["embedder"].startswith("local:") and "key" not in " ".join(status)


def test_filters_and_errors_stay_in_their_chat(app):
    _, client = app
    history = ask(client, "What does the generator do?", author="Nobody Atall")
    assert "Not in the collection" in text_of(history[-1])
    with pytest.raises(AppError, match="not in the list of choices"):  # no LLM configured: llm is not offered
        ask(client, SMART, answerer="llm")
    history = ask(client, SMART, year_from="not a year")
    assert "not a year" in text_of(history[-1])
    assert "7.11" in text_of(ask(client, SMART)[-1])
    assert client.predict([], api_name="/new_conversation")[0] == []


def test_papers_tab_lists_searches_and_shows_provenance(app):
    _, client = app
    everything = client.predict("", api_name="/papers")
    assert everything["headers"] == ["Paper", "Authors", "Year", "arXiv id", "id"] and len(everything["data"]) == 221
    found = client.predict("TagAlign multi-tag classification", api_name="/papers")
    row = found["data"][0]
    assert row[0].startswith("TagAlign") and "Qinying Liu" in row[1]
    detail = client.predict("arxiv:2211.12339", api_name="/paper")
    assert "Neural Dependencies Emerging from Learning Massive Categories" in detail
    assert detail.count("seeds/") >= 4 and "Conflicts" in detail  # four files gave parts of this record
    assert "no paper with id" in client.predict("nope", api_name="/paper")


def test_upload_becomes_searchable_and_reports_rejections(app, tmp_path):
    _, client = app
    listing = tmp_path / "my listing.txt"
    listing.write_text(
        "Wombat Diffusion: Burrowing Score Models for Marsupial Imagery\n"
        "We introduce wombat diffusion, a score-based generative model trained on a new corpus of marsupial "
        "photographs collected in the field. Wombat diffusion burrows through the noise schedule with cubic "
        "steps and reaches an FID of 3.21 on the MarsupialNet benchmark, improving on prior baselines.\n"
        "Platypus Transformers for Monotreme Recognition\n"
        "Platypus transformers combine electroreceptive attention with bill-shaped patch embeddings, giving a "
        "recognition accuracy of 97.4% on the Monotreme-10 dataset while using half the parameters of a ViT-B "
        "model of comparable depth and width in every one of our experiments.\n"
        "A Dangling Title Without Any Abstract\n",
        encoding="utf-8")
    report, table, status = client.predict([handle_file(str(listing))], api_name="/ingest")
    assert len(table["data"]) == 223 and "<td>223</td>" in status
    assert "2 added" in report and "223 papers" in report and "1 rejected" in report
    assert "my listing.txt:5: title without an abstract: 'A Dangling Title Without Any Abstract'" in plain(report)
    again = client.predict([handle_file(str(listing))], api_name="/ingest")[0]
    assert "0 added" in again and "223 unchanged" in again
    found = client.predict("wombat diffusion marsupial", api_name="/papers")
    assert found["data"][0][0] == "Wombat Diffusion: Burrowing Score Models for Marsupial Imagery"
    answer = text_of(ask(client, "What FID does wombat diffusion reach on MarsupialNet?")[-1])
    assert "3.21" in answer and "Wombat Diffusion" in answer
    # An edited file uploaded again under the same name replaces what its earlier version gave.
    listing.write_text(listing.read_text(encoding="utf-8").replace("3.21", "2.95"), encoding="utf-8")
    edited = client.predict([handle_file(str(listing))], api_name="/ingest")[0]
    assert "1 added" in edited and "1 removed" in edited and "223 papers" in edited  # new abstract, new id
    answer = text_of(ask(client, "What FID does wombat diffusion reach on MarsupialNet?")[-1])
    assert "2.95" in answer and "3.21" not in answer


class SlowLLM:
    """A stand-in LLM answerer that records how many answers it generates at once."""

    name = "llm"

    def __init__(self) -> None:
        self.active = self.peak = 0
        self.lock = threading.Lock()

    def generate(self, question, hits, history):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            if "explode" in question:
                raise RuntimeError("boom")
            time.sleep(0.8)
            yield "Slow but cited [1]."
        finally:
            with self.lock:
                self.active -= 1
        return Draft(text="Slow but cited [1].")


def test_llm_answers_are_bounded_and_do_not_block_others(seeded, monkeypatch):
    # An LLM is configured (never reached: the stand-in answers), so the llm answerer is offered.
    assistant = Assistant(Settings(data_dir=seeded.settings.data_dir, llm_base_url="http://127.0.0.1:9/v1"))
    slow = SlowLLM()
    extractive = assistant.answerer
    monkeypatch.setattr(assistant, "answerer", lambda name=None: slow if name == "llm" else extractive(name))
    demo, client = serve(assistant, llm_slots=1)
    try:
        url = client.src
        clients = [Client(url, verbose=False) for _ in range(4)]
        with ThreadPoolExecutor(4) as pool:
            started = time.monotonic()
            llm = [pool.submit(ask, c, "What did SMaRt improve?", None, "llm") for c in clients[:3]]
            time.sleep(0.3)
            quick = pool.submit(ask, clients[3], SMART)
            quick_answer = text_of(quick.result()[-1])
            quick_done = time.monotonic() - started
            slow_answers = [text_of(f.result()[-1]) for f in llm]
            all_done = time.monotonic() - started
        assert "7.11" in quick_answer and quick_done < all_done - 0.5  # not queued behind the LLM answers
        assert all("Slow but cited" in a and "rag-card" in a for a in slow_answers)
        assert slow.peak == 1 and all_done >= 3 * 0.8  # one LLM answer at a time
        failed = text_of(ask(clients[0], "What did SMaRt explode?", None, "llm")[-1])
        assert "rag-error" in failed and "Error: RuntimeError: boom" in plain(failed)
        assert "7.11" in text_of(ask(clients[1], SMART)[-1])
    finally:
        demo.close()


# -- `rag ui`: binding, credentials, first run --------------------------------------------------------------

def test_non_loopback_binding_needs_credentials(capsys, tmp_path, monkeypatch):
    assert main(["ui", "--host", "0.0.0.0"]) == 2
    assert "refusing to serve the web chat on 0.0.0.0" in capsys.readouterr().err
    assert main(["ui", "--share"]) == 2
    assert "public share link" in capsys.readouterr().err
    bad = tmp_path / "auth"
    bad.write_text("# users\nalice\n")
    assert main(["ui", "--host", "0.0.0.0", "--auth-file", str(bad)]) == 2
    assert "expected user:password" in capsys.readouterr().err
    good = tmp_path / "users"
    good.write_text("# users\nalice:s3cret:with:colons\nbob:pw\n")
    assert ui_cli.credentials(good, "carol:pw") == [("carol", "pw"), ("alice", "s3cret:with:colons"), ("bob", "pw")]
    ui_cli.check_exposure("0.0.0.0", False, [("alice", "x")])
    ui_cli.check_exposure("::1", False, [])
    ui_cli.check_exposure("localhost", False, [])


def test_launch_with_credentials_requires_login(seeded):
    port = free_port()
    demo = launch(seeded, port=port, auth=[("alice", "pw")], block=False)
    try:
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, verbose=False, auth=("alice", "wrong"))
        client = Client(url, verbose=False, auth=("alice", "pw"))
        assert client.predict(api_name="/status")["papers"] == 221
    finally:
        demo.close()


def test_rag_ui_ingests_seeds_when_empty_then_launches(tmp_path, monkeypatch, capsys):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "one.jsonl").write_text(
        '{"title": "Kiwi Nets", "abstract": "Kiwi nets are flightless networks that learn to forage for features '
        'in the undergrowth of high-dimensional data with remarkable efficiency."}\n', encoding="utf-8")
    launched = {}
    monkeypatch.setattr(ui_cli, "SEEDS", seeds)
    monkeypatch.setattr("ui.app.launch", lambda assistant, **kw: launched.update(kw, papers=len(assistant.papers())))
    monkeypatch.setenv("RAG_UI_AUTH", "alice:pw")
    assert main(["ui", "--host", "0.0.0.0", "--port", "7999"]) == 0
    assert launched == {"host": "0.0.0.0", "port": 7999, "share": False, "auth": [("alice", "pw")], "llm_slots": 2,
                        "papers": 1}
    assert "ingesting" in capsys.readouterr().out
