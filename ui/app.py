"""The Gradio app: a chat with cited answers, the papers catalog, and uploads. Everything goes through Assistant."""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from rag.answering.export import bibtex
from rag.assistant import Assistant
from ui import conversations, render
from ui.conversations import Session

# Questions the seed abstracts answer (shown on first load when the collection is the seeds).
EXAMPLES = [
    "What FID did SMaRt reach on ImageNet 64x64?",
    "Who wrote TagAlign?",
    "How long does GigaGAN take to synthesize a 512px image?",
    "What is GeoD?",
    "How many nodes and triplets does the UKnow knowledge graph contain?",
]
PAGE_SIZE = 100  # papers per page of the Papers tab
UPLOAD_TYPES = [".txt", ".md", ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".bib", ".ris"]
STORAGE_KEY = "rag-abstracts-conversations"
DOWNLOADS_KEPT_S = 3600  # Gradio copies a download into its own cache at once; our copy may go after this
CSS = """
.rag-question, .rag-answer { line-height: 1.5; }
.rag-ref { color: var(--color-accent); font-weight: 600; }
.rag-sources-title { margin-top: .8em; font-weight: 600; font-size: .9em; opacity: .8; }
.rag-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .5em .75em; margin: .5em 0;
            background: var(--background-fill-secondary); }
.rag-num { color: var(--color-accent); font-weight: 700; }
.rag-meta { font-size: .85em; opacity: .85; margin: .2em 0; }
.rag-passage { margin: .3em 0 0 0; padding-left: .6em; border-left: 3px solid var(--color-accent); font-size: .9em; }
.rag-passage mark { background: #fde68a; color: #111; padding: 0 .1em; }
.rag-note { font-weight: 700; color: #b45309; }
.rag-error { color: #b91c1c; }
.rag-dropped, .rag-confidence { font-size: .8em; opacity: .7; }
.rag-low-confidence { font-weight: 600; }
.rag-record th { text-align: left; vertical-align: top; white-space: nowrap; }
.rag-where { font-size: .85em; opacity: .8; }
.rag-missing { opacity: .5; font-style: italic; }
.rag-status table { font-size: .8em; width: 100%; }
.rag-status th, .rag-status td { padding: .15em .4em !important; }
.rag-status th { white-space: nowrap; }
.rag-status td { word-break: break-all; }
#conversations { max-height: 520px; overflow-y: auto; overflow-x: hidden; }
#conversations label { overflow-wrap: anywhere; }
"""
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def build_app(assistant: Assistant, *, llm_slots: int = 2, examples: list[str] | None = None) -> gr.Blocks:
    """The web chat over ``assistant``. ``llm_slots`` bounds concurrent LLM answers (searches are not bounded)."""
    ui = _Handlers(assistant, threading.BoundedSemaphore(llm_slots))
    settings = assistant.settings
    choices = ["extractive", "llm"] if settings.llm_configured else ["extractive"]
    shown_examples = examples if examples is not None else (EXAMPLES if assistant.count() else [])

    # Analytics off: the project works offline and sends nothing anywhere. Uploads are copied into the data dir,
    # so Gradio's temporary copies can go after an hour.
    with gr.Blocks(title="rag-abstracts · cited answers", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
        session = gr.State(None)  # the open conversation of this tab (a Session), created on first question
        # Past conversations live in the user's own browser (see ui/conversations.py), never on the server.
        saved = gr.BrowserState(conversations.empty(), storage_key=STORAGE_KEY,
                                secret=conversations.browser_secret(settings.data_dir))
        gr.Markdown("## Cited answers from paper abstracts")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row():
                with gr.Column(scale=1, min_width=200):
                    new = gr.Button("New conversation", size="sm", variant="primary", elem_id="new-conversation")
                    listed = gr.Radio([], value=None, label="Conversations", info="Kept in this browser only",
                                      elem_id="conversations")
                    delete = gr.Button("Delete this conversation", size="sm", variant="stop",
                                       elem_id="delete-conversation")
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Conversation", show_label=False, elem_id="chatbot", height=560, sanitize_html=True,
                        allow_tags=False, latex_delimiters=[], render_markdown=True, buttons=["copy"],
                        feedback_options=None, layout="panel",
                        examples=[{"text": q} for q in shown_examples] or None,
                        placeholder="Ask a question about the papers in the collection. "
                                    "Every claim in an answer cites the paper it comes from.",
                    )
                    with gr.Row():
                        question = gr.Textbox(label="Question", placeholder="Ask about the papers…",
                                              show_label=False, scale=5, elem_id="question", max_lines=4)
                        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                    with gr.Row():
                        # Shown once an answer cites papers: their BibTeX, for a reference manager.
                        cite = gr.DownloadButton("Download citations (.bib)", size="sm", visible=False,
                                                 elem_id="download-citations")
                        export = gr.DownloadButton("Download conversation (.md)", size="sm", visible=False,
                                                   elem_id="download-conversation")
                with gr.Column(scale=1, min_width=260):
                    gr.Markdown("### Settings")
                    answerer = gr.Radio(choices, value=settings.effective_answerer, label="Answerer",
                                        info=None if settings.llm_configured else
                                        "llm needs RAG_LLM_BASE_URL or OPENAI_API_KEY")
                    k = gr.Slider(1, 20, value=min(settings.top_k, 20), step=1, label="Number of sources")
                    years = ["any", *_years(assistant)]
                    with gr.Row():
                        year_from = gr.Dropdown(years, value="any", label="From year", allow_custom_value=True)
                        year_to = gr.Dropdown(years, value="any", label="To year", allow_custom_value=True)
                    author = gr.Textbox(label="Author contains", placeholder="e.g. Yujun Shen")
                    with gr.Accordion("Status", open=True):
                        status = gr.Markdown(elem_id="status", sanitize_html=True, latex_delimiters=[])
            with gr.Tab("Papers", id="papers"):
                with gr.Row():
                    query = gr.Textbox(placeholder="Search the catalog (empty: list every paper)", show_label=False,
                                       scale=5, elem_id="paper-query")
                    search = gr.Button("Search", scale=1)
                    page = gr.Number(value=1, minimum=1, precision=0, label="Page", scale=1, elem_id="paper-page")
                listing = gr.Markdown(elem_id="papers-shown", sanitize_html=True, latex_delimiters=[])
                table = gr.Dataframe(headers=render.PAPER_COLUMNS, datatype="str", interactive=False, wrap=True,
                                     max_height=420, elem_id="papers", column_widths=["40%", "25%", "7%", "12%", "16%"],
                                     label="Papers (click a row for its record and provenance)")
                detail = gr.Markdown(elem_id="paper-detail", sanitize_html=True, latex_delimiters=[])
            with gr.Tab("Add abstracts", id="add"):
                gr.Markdown("Listings (.txt) in any layout `rag ingest` reads, JSONL / JSON or CSV / TSV, and "
                            "reference-manager exports with abstracts: BibTeX (.bib), RIS (.ris), CSL-JSON (.json).")
                files = gr.File(label="Files of abstracts", file_count="multiple", file_types=UPLOAD_TYPES,
                                elem_id="upload")
                add = gr.Button("Add to the collection", variant="primary")
                report = gr.Markdown(elem_id="ingest-report", sanitize_html=True, latex_delimiters=[])

        options = [answerer, k, year_from, year_to, author]
        asked = {"fn": ui.respond, "inputs": [question, chatbot, session, *options],
                 "outputs": [chatbot, question, session]}
        saving = {"fn": ui.save, "inputs": [chatbot, session, saved], "outputs": [saved, listed, export]}
        citing = {"fn": ui.citations, "inputs": [session], "outputs": [cite]}
        private = {"api_visibility": "private"}
        question.submit(**asked, api_name="ask").then(**saving, api_name="save").then(**citing, api_name="citations")
        ask.click(**asked, **private).then(**saving, **private).then(**citing, **private)
        chatbot.example_select(ui.respond_example, [chatbot, session, *options], [chatbot, question, session],
                               **private).then(**saving, **private).then(**citing, **private)
        # Opening, starting or deleting a conversation sets the same things: the chat, its session, the list.
        shown = [chatbot, session, saved, listed, export]
        new.click(ui.new_conversation, [saved], shown, api_name="new_conversation").then(**citing, **private)
        chatbot.clear(ui.new_conversation, [saved], shown, **private).then(**citing, **private)  # its trash icon
        listed.input(ui.open_conversation, [listed, saved], shown, api_name="open_conversation").then(
            **citing, **private)
        delete.click(ui.delete_conversation, [session, saved], shown, api_name="delete_conversation").then(
            **citing, **private)

        query.submit(ui.papers, [query, page], [table], api_name="papers").then(
            ui.shown, [query, page], [listing], api_visibility="private")
        for event in (search.click, page.submit):
            event(ui.papers, [query, page], [table], api_visibility="private").then(
                ui.shown, [query, page], [listing], api_visibility="private")
        table.select(ui.select_paper, None, [detail], api_visibility="private")
        add.click(ui.ingest, [files], [report, table, status], api_name="ingest", concurrency_limit=1).then(
            ui.shown, [query, page], [listing], api_visibility="private")
        gr.api(ui.paper, api_name="paper")
        gr.api(ui.status, api_name="status")

        demo.load(ui.restore, [saved], shown, **private).then(**citing, **private)
        demo.load(ui.overview, None, [table, status], api_visibility="private").then(
            ui.shown, [query, page], [listing], api_visibility="private")
    # Several users at once: searches and extractive answers run concurrently; LLM answers take a slot of llm_gate.
    demo.queue(default_concurrency_limit=16, max_size=256)
    return demo


class _Handlers:
    """The app's event handlers; each request's failure is rendered into its own output only."""

    def __init__(self, assistant: Assistant, llm_gate: threading.BoundedSemaphore) -> None:
        self.assistant = assistant
        self.llm_gate = llm_gate
        self.uploads = assistant.settings.data_dir / "uploads"

    # -- chat ---------------------------------------------------------------------------------------
    def respond(self, question: str, history: list[dict] | None, session: Session | None, answerer: str | None,
                k: float | None, year_from: str | None, year_to: str | None,
                author: str | None) -> Generator[tuple[list[dict], str, Session], None, None]:
        """Stream the answer to ``question`` into the chat, then replace it with the answer and its citation cards."""
        history = list(history or [])
        session = session or Session(self.assistant.chat())
        if not (question or "").strip():
            yield history, "", session
            return
        session.title = session.title or question
        history.append({"role": "user", "content": render.render_question(question)})
        history.append({"role": "assistant", "content": render.render_streaming("…")})
        yield history, "", session
        gate = self.llm_gate if (answerer or self.assistant.settings.effective_answerer) == "llm" else None
        try:
            options = {"answerer": answerer or None, "k": int(k) if k else None, "year_from": _year(year_from),
                       "year_to": _year(year_to), "author": (author or "").strip() or None}
            if gate and not gate.acquire(blocking=False):
                history[-1]["content"] = render.render_streaming("Waiting for a free LLM slot…")
                yield history, "", session
                if not gate.acquire(timeout=self.assistant.settings.llm_timeout * 2):
                    gate = None
                    raise TimeoutError("the LLM is busy with other questions; try again shortly")
            try:
                stream = session.chat.stream(question, **options)
                text = ""
                for delta in stream:
                    text += delta
                    history[-1]["content"] = render.render_streaming(text)
                    yield history, "", session
                answer = stream.result()
                session.answered(answer)
                history[-1]["content"] = render.render_answer(answer)
            finally:
                if gate:
                    gate.release()
        except Exception as exc:  # noqa: BLE001 - shown in this chat only, the app keeps serving
            expected = isinstance(exc, ValueError | TimeoutError)  # bad input or a busy LLM: the message says it all
            history[-1]["content"] = render.render_error(str(exc) if expected else f"{type(exc).__name__}: {exc}")
        yield history, "", session

    def respond_example(self, history: list[dict] | None, session: Session | None, answerer: str | None,
                        k: float | None, year_from: str | None, year_to: str | None, author: str | None,
                        evt: gr.SelectData) -> Generator[tuple[list[dict], str, Session], None, None]:
        """An example question clicked in the empty chat."""
        value = evt.value if isinstance(evt.value, dict) else {"text": str(evt.value)}
        yield from self.respond(str(value.get("text", "")), history, session, answerer, k, year_from, year_to, author)

    # -- conversations (kept in the browser: ``saved`` is untrusted, checked by conversations.load) ------------
    def save(self, history: list[dict] | None, session: Session | None, saved: object) -> tuple[dict, Any, Any]:
        """Keep the open conversation first in the browser's list, each answer with its own sources and references."""
        opened, kept = conversations.load(saved)
        if session is not None and history:
            opened, kept = session.id, conversations.put(kept, session.record(history))
        return {"open": opened, "conversations": kept}, self._list(kept, opened), self._export(session)

    def restore(self, saved: object) -> tuple[list, Session, dict, Any, Any]:
        """On page load: the conversation that was open, and the list."""
        opened, kept = conversations.load(saved)
        return self._open(kept, opened)

    def open_conversation(self, conversation_id: str | None, saved: object) -> tuple[list, Session, dict, Any, Any]:
        """Reopen a past conversation: its messages as answered, and its turns for follow-ups."""
        return self._open(conversations.load(saved)[1], conversation_id)

    def new_conversation(self, saved: object) -> tuple[list, Session, dict, Any, Any]:
        """Start over; the open conversation stays in the list (it was saved with its last answer)."""
        return self._open(conversations.load(saved)[1], None)

    def delete_conversation(self, session: Session | None, saved: object) -> tuple[list, Session, dict, Any, Any]:
        """Drop the open conversation from the browser's list and start a new one."""
        kept = conversations.load(saved)[1]
        return self._open(conversations.remove(kept, session.id) if session else kept, None)

    def _open(self, kept: list[dict], conversation_id: str | None) -> tuple[list, Session, dict, Any, Any]:
        """The chat, session, stored value, list and export button with ``conversation_id`` open (None, or one no
        longer stored: a new conversation)."""
        record = conversations.find(kept, conversation_id)
        session = Session.reopen(self.assistant.chat(), record) if record else Session(self.assistant.chat())
        opened = record["id"] if record else None
        return (record["messages"] if record else [], session, {"open": opened, "conversations": kept},
                self._list(kept, opened), self._export(session))

    @staticmethod
    def _list(kept: list[dict], opened: str | None) -> Any:
        return gr.Radio(choices=conversations.choices(kept), value=opened)

    @staticmethod
    def _export(session: Session | None) -> Any:
        """The download button for the open conversation as Markdown, hidden until something is answered."""
        if session is None or not session.chat.turns():
            return gr.DownloadButton(value=None, visible=False)
        return gr.DownloadButton(value=_download(session.markdown(), "conversation.md"), visible=True)

    def citations(self, session: Session | None) -> Any:
        """The download button for the last answer: a .bib of the papers it cites, hidden when it cites none."""
        turns = session.chat.turns() if session else []
        found = (self.assistant.paper(pid) for pid in (turns[-1]["cited_ids"] if turns else []))
        papers = [paper for paper in found if paper]
        if not papers:
            return gr.DownloadButton(value=None, visible=False)
        return gr.DownloadButton(value=_download(bibtex(papers), "citations.bib"), visible=True)

    # -- catalog ------------------------------------------------------------------------------------
    def papers(self, query: str | None, page: float | None = 1) -> pd.DataFrame:
        """A page of every paper by title (empty query), or the papers most relevant to the query, best first.
        Pages keep what the browser receives small however large the collection."""
        if (query or "").strip():
            found = [hit.paper for hit in self.assistant.search(query, 50)]
        else:
            number, _ = self._page(page)
            found = self.assistant.papers((number - 1) * PAGE_SIZE, PAGE_SIZE, by_label=True)
        return pd.DataFrame([render.paper_row(p) for p in found], columns=render.PAPER_COLUMNS)

    def shown(self, query: str | None, page: float | None = 1) -> str:
        """What the table shows: "Papers 101–200 of 2,345 (page 2 of 24)", or that it holds search results."""
        if (query or "").strip():
            return "The papers most relevant to the search, best first (empty search: every paper by title)."
        number, total = self._page(page)
        first, last = (number - 1) * PAGE_SIZE + 1, min(number * PAGE_SIZE, total)
        pages = max(1, -(-total // PAGE_SIZE))
        return f"Papers {first if total else 0:,}–{last:,} of {total:,} by title (page {number} of {pages})."

    def _page(self, page: float | None) -> tuple[int, int]:
        """The page number asked for, kept within the collection's pages, and the number of papers."""
        total = self.assistant.count()
        pages = max(1, -(-total // PAGE_SIZE))
        return min(max(1, int(page or 1)), pages), total

    def paper(self, paper_id: str) -> str:
        """One paper's merged record, provenance and conflicts, by id."""
        found = self.assistant.paper((paper_id or "").strip())
        return render.render_paper(found) if found else render.render_error(f"no paper with id {paper_id!r}")

    def select_paper(self, evt: gr.SelectData) -> str:
        row = evt.row_value or []
        return self.paper(str(row[-1])) if row else ""

    def status(self) -> dict:
        """What the assistant runs on: papers, chunks, embedder, store, answerer, LLM endpoint and model."""
        return dict(self.assistant.status())

    def overview(self) -> tuple[pd.DataFrame, str]:
        return self.papers(""), render.render_status(self.assistant.status())

    # -- uploads ------------------------------------------------------------------------------------
    def ingest(self, files: list[str] | None,
               progress: gr.Progress = gr.Progress()) -> tuple[str, Any, str]:  # noqa: B008 - Gradio's idiom
        """Ingest uploaded files; the report lists what was added, updated, unchanged and rejected (file:line, why)."""
        if not files:
            return render.render_error("choose one or more files first"), gr.skip(), gr.skip()
        progress(0, desc="Reading files")

        def embedded(done: int, total: int) -> None:
            if total:
                progress((done, total), desc="Embedding", unit="chunks")

        try:
            names = {str(self._store_upload(Path(upload))): Path(upload).name for upload in files}
            report = self.assistant.ingest(*names, progress=False, on_progress=embedded)
        except Exception as exc:  # noqa: BLE001 - reported in the page, the app keeps serving
            return render.render_error(str(exc)), gr.skip(), gr.skip()
        table, status = self.overview()
        return render.render_report(report, names), table, status

    def _store_upload(self, upload: Path) -> Path:
        """A copy under the data dir, named by the uploaded file's name: uploading an edited file again
        replaces what the earlier version gave (as `rag ingest` of the same path does); the same file again
        changes nothing."""
        stem = _SAFE_NAME.sub("_", upload.stem)[:60] or "upload"
        suffix = upload.suffix.lower() if upload.suffix.lower() in UPLOAD_TYPES else ".txt"
        self.uploads.mkdir(parents=True, exist_ok=True)
        stored = self.uploads / f"{stem}{suffix}"
        if not stored.exists() or stored.read_bytes() != upload.read_bytes():
            shutil.copyfile(upload, stored)
        return stored


def _download(text: str, name: str) -> str:
    """A file to offer for download, named by content: the same text reuses one file, however many sessions ask.
    Files older than DOWNLOADS_KEPT_S go (Gradio has copied them into its cache by then)."""
    root = _downloads()
    folder = root / hashlib.sha1(f"{name}\n{text}".encode()).hexdigest()[:16]
    path = folder / name
    with contextlib.suppress(FileNotFoundError):  # pruned meanwhile: written again below
        os.utime(folder)  # in use again: kept for another while
        if path.exists():
            return str(path)
    _prune(root)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{os.getpid()}-{threading.get_ident()}"
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)  # never a half-written file for a concurrent reader
    return str(path)


@functools.cache
def _downloads() -> Path:
    """This process's folder of downloads: made private by mkdtemp (conversations are nobody else's to read), never
    a fixed name in the shared temporary directory that another local user could have made first."""
    folder = tempfile.mkdtemp(prefix="rag-downloads-")
    atexit.register(shutil.rmtree, folder, True)  # Gradio has copied what it served into its own cache
    return Path(folder)


def _prune(root: Path) -> None:
    cutoff = time.time() - DOWNLOADS_KEPT_S
    for folder in root.glob("*") if root.is_dir() else []:
        with contextlib.suppress(OSError):  # another process may be pruning too
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder)


def _years(assistant: Assistant) -> list[str]:
    return [str(y) for y in assistant.years()]


def _year(value: str | float | None) -> int | None:
    """A year filter from the dropdown ("any" or empty: no bound)."""
    text = str(value if value is not None else "").strip().lower()
    if text in ("", "any", "none", "0"):
        return None
    if not re.fullmatch(r"\d{4}", text.removesuffix(".0")):
        raise ValueError(f"not a year: {str(value)[:20]!r}")
    return int(text.removesuffix(".0"))


def launch(assistant: Assistant, *, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           auth: list[tuple[str, str]] | None = None, llm_slots: int = 2, block: bool = True) -> gr.Blocks:
    """Build and serve the app. Callers check ``auth`` for non-loopback hosts (see ui.cli)."""
    assistant.status()  # load the embedder and index now, not on the first question
    demo = build_app(assistant, llm_slots=llm_slots)
    demo.launch(**launch_options(), server_name=host, server_port=port, share=share, auth=auth or None,
                prevent_thread_lock=not block)
    return demo


def launch_options() -> dict[str, Any]:
    """Options every launch of the app should pass (tests use them too)."""
    return {"css": CSS, "max_file_size": "50mb", "footer_links": ["api"], "show_error": False}
