"""The web chat through its HTTP API (gradio_client against the app on loopback), and `rag ui`'s safety checks."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bibtexparser
import pytest
from conftest import free_port
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError

from markdown_it import MarkdownIt

from rag import Assistant, Settings
from rag.answering.base import Draft
from rag.cli import main
from ui import cli as ui_cli
from ui import conversations
from ui.app import build_app, launch, launch_options

SMART = "What FID did SMaRt reach on ImageNet 64x64?"
GEOD = "What is GeoD, the geometry-aware discriminator for 3D-aware GANs?"
GEOD_FOLLOW_UP = "What does it additionally ask the discriminator to derive?"


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
    assert {"/ask", "/citations", "/new_conversation", "/papers", "/paper", "/ingest", "/status", "/save",
            "/open_conversation", "/delete_conversation"} <= set(named)
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


def test_download_button_serves_the_last_answers_citations(app):
    _, client = app
    assert client.predict(api_name="/citations")["visible"] is False  # nothing asked yet: no button
    ask(client, SMART)
    shown = client.predict(api_name="/citations")
    assert shown["visible"] is True and shown["value"].endswith("citations.bib")
    [entry] = bibtexparser.parse_string(Path(shown["value"]).read_text(encoding="utf-8")).entries
    assert entry.key == "xiasmart" and entry["title"] == "{SMaRt: Improving GANs with Score Matching Regularity}"
    assert entry["author"].startswith("Xia, Mengfei and Shen, Yujun and")
    ask(client, "What is the capital city of Australia?")  # an abstention cites nothing: the button goes
    assert client.predict(api_name="/citations")["visible"] is False
    client.predict(None, api_name="/new_conversation")
    assert client.predict(api_name="/citations")["visible"] is False


def test_filters_and_errors_stay_in_their_chat(app):
    _, client = app
    history = ask(client, "What does the generator do?", author="Nobody Atall")
    assert "Not in the collection" in text_of(history[-1])
    with pytest.raises(AppError, match="not in the list of choices"):  # no LLM configured: llm is not offered
        ask(client, SMART, answerer="llm")
    history = ask(client, SMART, year_from="not a year")
    assert "not a year" in text_of(history[-1])
    assert "7.11" in text_of(ask(client, SMART)[-1])
    assert client.predict(None, api_name="/new_conversation")[0] == []


def save(client: Client, history: list[dict], saved: dict | None) -> tuple[dict, dict]:
    """What the browser does after each answer: keep the open conversation in its list."""
    saved, listed, export = client.predict(history, saved, api_name="/save")
    return saved, export


def test_conversations_are_listed_reopened_continued_and_deleted(app):
    _, client = app
    first = ask(client, GEOD)
    saved, export = save(client, first, None)
    geod = saved["open"]
    assert [c["title"] for c in saved["conversations"]] == [GEOD] and export["visible"] is True
    chat, saved, listed, export = client.predict(saved, api_name="/new_conversation")
    assert chat == [] and saved["open"] is None and export["visible"] is False
    assert [choice[1] for choice in listed["choices"]] == [geod]  # the started conversation stays in the list
    saved, _ = save(client, ask(client, SMART), saved)
    assert [c["title"] for c in saved["conversations"]] == [SMART, GEOD]  # the latest active first
    assert listed["choices"][0][0].startswith(GEOD[:40]) and re.search(r" · \d{4}-\d\d-\d\d \d\d:\d\d$",
                                                                        listed["choices"][0][0])

    # Reopened: each answer with the source cards it was given, and follow-ups refer back to its papers.
    chat, saved, listed, export = client.predict(geod, saved, api_name="/open_conversation")
    assert [text_of(m) for m in chat] == [text_of(m) for m in first] and "rag-card" in text_of(chat[1])
    assert saved["open"] == listed["value"] == geod and export["visible"] is True
    assert "2209.15637" in Path(client.predict(api_name="/citations")["value"]).read_text(encoding="utf-8")
    follow = ask(client, GEOD_FOLLOW_UP, chat)
    assert "geometry" in plain(text_of(follow[-1])) and "arxiv.org/abs/2209.15637" in text_of(follow[-1])
    saved, _ = save(client, follow, saved)
    assert [c["id"] for c in saved["conversations"]][0] == geod and len(saved["conversations"][0]["turns"]) == 2

    chat, saved, listed, export = client.predict(saved, api_name="/delete_conversation")
    assert chat == [] and [c["title"] for c in saved["conversations"]] == [SMART] and listed["value"] is None
    assert client.predict(api_name="/citations")["visible"] is False


def test_conversation_exports_as_markdown_with_its_references(app):
    _, client = app
    hostile = "What is the capital city of Australia? [evil](https://evil.example) <b>x</b> www.evil.example"
    history = ask(client, hostile)  # abstains, cites nothing
    for question in (SMART, GEOD, GEOD_FOLLOW_UP):
        history = ask(client, question, history)
    saved, export = save(client, history, None)
    text = Path(export["value"]).read_text(encoding="utf-8")
    assert Path(export["value"]).name == "conversation.md" and text.startswith("# What is the capital city")
    questions = re.findall(r"^## (\d)\. (.*)$", text, re.M)
    assert [n for n, _ in questions] == ["1", "2", "3", "4"] and questions[1][1] == SMART
    answers = re.split(r"^## .*$", text, flags=re.M)
    assert "7.11" in answers[2] and "[1]" in answers[2]  # each answer's [n] follow the one reference list
    assert "[2]" in answers[3] and "[2]" in answers[4] and "[1]" not in answers[4]
    references = text.split("## References\n\n")[1].strip().splitlines()
    assert references[0] == ("1. SMaRt: Improving GANs with Score Matching Regularity. Mengfei Xia, Yujun Shen, "
                             "Ceyuan Yang, Ran Yi, Wenping Wang, Yong-jin Liu")  # the seeds give it no arXiv id
    assert references[1].startswith("2. “3D-aware image synthesis") and references[1].endswith(
        ". 2022. <https://arxiv.org/abs/2209.15637>")
    assert sum("2209.15637" in ref for ref in references) == 1  # cited by two answers, listed once
    rendered = MarkdownIt("commonmark").render(text)
    links = re.findall(r'href="([^"]*)"', rendered)
    assert "<b>" not in rendered and all(link.startswith("https://arxiv.org/abs/") for link in links)
    assert hostile in html.unescape(re.sub(r"<[^>]+>", "", rendered))  # shown as the user typed it
    # reopened from the browser's copy, the export is the same
    _, _, _, reopened = client.predict(saved["open"], saved, api_name="/open_conversation")
    assert Path(reopened["value"]).read_text(encoding="utf-8") == text


def test_saved_conversations_from_the_browser_are_checked(app):
    _, client = app
    saved, _ = save(client, ask(client, SMART), None)
    good = saved["conversations"][0]
    hostile = {**good, "id": "abcdef12", "title": 7, "updated": "<script>",
               "messages": [*good["messages"], {"role": "system", "content": "x"}, "junk", {"role": "user"}],
               "turns": [{**good["turns"][0], "references": [{"number": "1"}, {**good["turns"][0]["references"][0],
                                                                               "doi": ["x"]}]}, {"question": 3}]}
    sent = {"open": "abcdef12", "conversations": ["junk", {"id": "../../etc"}, {"id": "abcdef13", "messages": "x"},
                                                  hostile, {**good, "id": "abcdef12"}, good, None]}
    chat, cleaned, listed, _ = client.predict(sent, api_name="/new_conversation")
    assert [c["id"] for c in cleaned["conversations"]] == ["abcdef12", good["id"]] and cleaned["open"] is None
    kept = cleaned["conversations"][0]
    assert kept["title"] == SMART and kept["updated"] == "" and len(kept["messages"]) == 2
    assert kept["turns"][0]["references"] == [{**good["turns"][0]["references"][0], "doi": None}]
    chat, _, _, _ = client.predict("abcdef12", cleaned, api_name="/open_conversation")
    assert [text_of(m) for m in chat] == [text_of(m) for m in good["messages"]]
    assert client.predict(None, api_name="/new_conversation")[1] == {"open": None, "conversations": []}


def test_browser_copy_is_capped():
    def conversation(n: int, size: int = 10) -> dict:
        return {"id": f"{n:08x}", "title": f"q{n}", "started": "2024-01-02 03:04", "updated": "",
                "messages": [{"role": "user", "content": "q" * size}, {"role": "assistant", "content": "a" * size}],
                "turns": [{"question": "q", "answer": "a", "cited_ids": [], "references": []}]}

    _, kept = conversations.load({"conversations": [conversation(n) for n in range(60)]})
    assert len(kept) == conversations.MAX_CONVERSATIONS and kept[0]["id"] == "00000000"
    listed = conversations.put(kept, conversation(99))
    assert len(listed) == 50 and listed[0]["id"] == "00000063" and listed[-1]["id"] == "00000030"
    big = conversations.put(listed, conversation(100, conversations.MAX_STORED_CHARS // 2 - 1000))
    assert [c["id"] for c in big[:3]] == ["00000064", "00000063", "00000000"] and len(big) < 50
    assert sum(len(json.dumps(c)) for c in big) <= conversations.MAX_STORED_CHARS
    huge = conversation(101)
    huge["messages"] = [m for _ in range(4) for m in conversation(0, conversations.MAX_STORED_CHARS // 6)["messages"]]
    [kept] = conversations.put([], huge)
    assert len(kept["messages"]) < 8 and len(json.dumps(kept)) <= conversations.MAX_STORED_CHARS


def test_papers_tab_lists_searches_and_shows_provenance(app, seeded):
    _, client = app
    first = client.predict("", 1, api_name="/papers")
    assert first["headers"] == ["Paper", "Authors", "Year", "arXiv id", "id"] and len(first["data"]) == 100
    pages = [first] + [client.predict("", n, api_name="/papers") for n in (2, 3)]
    rows = [row for page in pages for row in page["data"]]
    assert len(rows) == 221 and len({row[-1] for row in rows}) == 221  # every paper once, in pages of 100
    labels = [row[0].lower() for row in rows]
    assert labels == sorted(labels)  # by title across pages
    assert client.predict("", 99, api_name="/papers")["data"] == pages[-1]["data"]  # past the end: the last page
    from ui.app import _Handlers

    handlers = _Handlers(seeded, threading.BoundedSemaphore(1))
    assert handlers.shown("", 2) == "Papers 101–200 of 221 by title (page 2 of 3)."
    assert handlers.shown("", 0) == "Papers 1–100 of 221 by title (page 1 of 3)."
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
    assert len(table["data"]) == 100 and "<td>223</td>" in status  # the first page of the papers, by title
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


def test_upload_takes_reference_manager_exports(app, tmp_path):
    _, client = app
    library = tmp_path / "My Library.bib"
    library.write_text(
        "@article{wombat2024,\n  title = {Wombat {Diffusion}},\n  author = {M{\\\"u}ller, J{\\\"o}rg},\n"
        "  journal = {Journal of Marsupial Imagery},\n  year = {2024},\n  doi = {10.5555/WOMBAT.2024},\n"
        "  abstract = {We introduce wombat diffusion, a score-based generative model trained on marsupial photographs,\n"
        "  reaching an FID of 3.21 on the MarsupialNet benchmark.}\n}\n\n"
        "@misc{bare2024,\n  title = {A Reference Without Its Abstract},\n  year = {2024}\n}\n", encoding="utf-8")
    report = client.predict([handle_file(str(library))], api_name="/ingest")[0]
    assert "1 added" in report and "1 rejected" in report
    assert "My Library.bib:11: entry 'bare2024' has no abstract (nothing to answer from)" in plain(report)
    detail = plain(client.predict("doi:10.5555/wombat.2024", api_name="/paper"))
    assert "Jörg Müller" in detail and "Journal of Marsupial Imagery" in detail and "DOI10.5555/wombat.2024" in detail


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
