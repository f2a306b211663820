"""The public entry point: ingest abstracts, list papers, search, ask (whole or streamed) and chat."""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

from tqdm import tqdm

from rag.answering.answerability import AnswerabilityModel, Assessment, assess
from rag.answering.base import ABSTAIN_TEXT, LOW_CONFIDENCE_LEAD, Answerer, Draft, Turn
from rag.answering.citations import collect, validate_citations
from rag.answering.extractive import ExtractiveAnswerer
from rag.answering.grounding import check_answer
from rag.answering.prompts import REFUSAL
from rag.answering.termstats import TermStats
from rag.index.catalog import Catalog
from rag.index.database import DB_NAME, Database
from rag.index.embedders import embedder_id, make_embedder
from rag.index.search_index import Index
from rag.ingest.loaders import load
from rag.ingest.stream import Slice
from rag.models import Answer, Hit, IngestReport, Paper
from rag.retrieval.hybrid import HybridRetriever, SearchFilter
from rag.settings import Settings
from rag.index.writelock import writer_lock

_LEGACY_CATALOG = "catalog.json"  # what versions before the database kept; its index is adopted once
FOLLOW_UP_COVERAGE = 0.15  # share of a follow-up's own term weight the conversation's paper must hold

__all__ = ["ABSTAIN_TEXT", "AnswerStream", "Assessment", "Assistant", "Chat"]
# A follow-up that points back at the previous answer ("which dataset did it use?").
_ANAPHOR = re.compile(r"\b(it|its|they|their|them|this|that|these|those|the (paper|method|model|approach|authors))\b",
                      re.I)


class AnswerStream:
    """Iterate for text deltas; ``answer`` holds the final Answer once iteration ends."""

    def __init__(self, run: Generator[str, None, Answer]) -> None:
        self._run = run
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        self.answer = yield from self._run

    def result(self) -> Answer:
        """Drain the stream (if not yet done) and return the Answer."""
        if self.answer is None:
            for _ in self:
                pass
        assert self.answer is not None
        return self.answer


class Assistant:
    """Cited question answering over a collection of abstracts."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.db = Database(self.settings.data_dir / DB_NAME)
        self.catalog = Catalog(self.db)
        self._seen: str | None = self.db.version  # the database version this process's caches reflect
        self._lock = threading.RLock()  # guards lazily built parts; held briefly
        self._ingest_lock = threading.Lock()  # one ingest at a time; searches and answers go on meanwhile
        self._index: Index | None = None
        self._embed_model = None  # loaded once (seconds), kept when the index is reopened
        self._stats: TermStats | None = None
        self._llm: Answerer | None = None
        self.answerability = AnswerabilityModel.load()

    # -- lazily built parts (the embedder takes seconds to load) ---------------------------------
    @property
    def index(self) -> Index:
        with self._lock:
            if self._index is None:
                if self._embed_model is None:
                    self._embed_model = make_embedder(self.settings)
                index = Index(self.settings, self._embed_model, embedder_id(self.settings), self.db)
                if self.settings.chroma_url:
                    if index.catch_up(self.catalog):  # what the server's other clients wrote since
                        self._forget()
                elif not index.in_step():
                    # An index built before the database existed (or by another schema): the database is rebuilt
                    # from Chroma.
                    index.adopt(self.catalog)
                    self._forget()
                    for name in (_LEGACY_CATALOG, "termstats.json"):  # superseded by the database
                        (self.settings.data_dir / name).unlink(missing_ok=True)
                    shutil.rmtree(self.settings.data_dir / "bm25", ignore_errors=True)
                self._index = index
            return self._index

    def _forget(self) -> None:
        """Drop what was derived from an earlier state of the collection."""
        self._stats = None
        self._seen = self.db.version

    def catch_up(self) -> None:
        """Take in what other processes wrote to the collection since this one last looked.

        Called before every search, answer and ingest, so a running chat sees the papers a CLI ingest (or,
        with a shared server, another machine) added, and an ingest never overwrites them. The catalog and
        lexical index are read from the database on every use; what is cached is dropped when its version
        moved. Embedded: Chroma is reopened then (its vector index lives in memory, where another process's
        writes never reach). Server: when the server's fingerprint moved, the papers named in its change log
        since this database last looked are read back (see ``Index.catch_up``).
        """
        with self._lock:
            index = self._index
            if self.settings.chroma_url:
                if index is not None and index.catch_up(self.catalog):
                    self._forget()
                return
            if index is None and (self.settings.data_dir / _LEGACY_CATALOG).exists() and self.catalog.count() == 0:
                self.index  # noqa: B018 - a data dir of an older version: opening adopts its index
            if self.db.version != self._seen:
                if index is not None:
                    index.close()
                    self._index = None  # reopened on next use, with the other process's vectors
                self._forget()

    def _retriever(self) -> HybridRetriever:
        index = self.index
        return HybridRetriever(index, self.catalog, self.settings)

    def answerer(self, name: str | None = None) -> Answerer:
        """The answerer by name (`extractive` / `llm`), default from settings."""
        name = name or self.settings.effective_answerer
        with self._lock:
            if name == "llm":
                if not self.settings.llm_configured:
                    raise ValueError("the LLM answerer needs OPENAI_API_KEY (or RAG_LLM_API_KEY) or RAG_LLM_BASE_URL")
                if self._llm is None:
                    from rag.answering.llm import LLMAnswerer

                    self._llm = LLMAnswerer(self.settings)
                return self._llm
            if name != "extractive":
                raise ValueError(f"unknown answerer {name!r}; use 'extractive' or 'llm'")
            return ExtractiveAnswerer(self.term_stats)

    @property
    def term_stats(self) -> TermStats:
        """IDF statistics of the collection's titles and abstracts (answerability and extractive answers),
        read term by term from the database, where every ingest keeps them up to date."""
        with self._lock:
            if self._stats is None:
                self._stats = TermStats(self.catalog.frequencies(), self.catalog.count())
            return self._stats

    # -- ingest and catalog ---------------------------------------------------------------------
    def _writing(self):
        """The data dir's inter-process writer lock (embedded store); a shared server serialises writes itself."""
        if self.settings.chroma_url:
            return contextlib.nullcontext()
        return writer_lock(self.settings.data_dir, self.settings.lock_timeout)

    def ingest(self, *paths: str | Path, progress: bool | None = None,
               on_progress: Callable[[int, int], None] | None = None, limit: int | None = None,
               categories: Sequence[str] = ()) -> IngestReport:
        """Read files/folders of abstracts, merge them into the catalog and bring the index up to date.

        ``progress``: terminal progress bars (None: only on a terminal). ``on_progress(done, total)``:
        called after each embedded batch of chunks (for a UI's progress bar). ``limit`` / ``categories``:
        take a slice (at most ``limit`` records; only arXiv categories such as "cs.CL", or archives such
        as "cs"); JSON Lines files that are sliced or large (the arXiv metadata snapshot) are streamed.
        """
        if not paths:
            raise ValueError("ingest needs at least one file or folder")
        wanted = Slice(limit, tuple(categories))
        loaded = load([Path(p) for p in paths], self.settings.max_abstract_chars, wanted, progress)
        broken = {where.rsplit(":", 1)[0] for where, _ in loaded.failed if where.endswith(":1")}
        # A file that could not be read at all keeps what an earlier ingest took from it.
        readable = [f for f in loaded.files if f not in broken or any(r.path == f for r in loaded.records)]
        with self._ingest_lock, self._writing():
            self.catch_up()  # merge onto what other processes wrote, never over it
            index = self.index
            change = self.catalog.plan(readable, loaded.records)
            counts = {"added": 0, "updated": 0, "removed": 0}
            if change:  # an unchanged re-ingest plans nothing and writes nothing
                bar = tqdm(total=0, unit="chunk", desc="Embedding",
                           disable=None if progress is None else not progress)

                def tick(done: int, total: int) -> None:
                    bar.total = total
                    bar.update(done - bar.n)
                    if on_progress:
                        on_progress(done, total)

                try:
                    counts = index.apply(self.catalog, change, progress=tick)
                finally:
                    bar.close()
                with self._lock:
                    self._forget()
            papers = self.catalog.count()
        return IngestReport(records=len(loaded.records), papers=papers, failed=loaded.failed,
                            warnings=loaded.warnings, added=counts["added"], updated=counts["updated"],
                            removed=counts["removed"], unchanged=papers - counts["added"] - counts["updated"])

    def status(self) -> dict[str, str | int]:
        """What this assistant runs on (shown in UIs; never includes an API key)."""
        s = self.settings
        self.catch_up()
        return {
            "papers": self.catalog.count(),
            "chunks": self.index.count(),
            "embedder": embedder_id(s),
            # local: the precision documents are embedded in (bf16 on AMX CPUs); a remote model's is unknown
            "embed_precision": getattr(self.index.embed_model, "precision", "remote"),
            "store": s.chroma_url or str(s.data_dir / "chroma"),
            "answerer": s.effective_answerer,
            "llm_endpoint": (s.llm_base_url or "https://api.openai.com/v1") if s.llm_configured else "none",
            "llm_model": s.llm_model if s.llm_configured else "none",
        }

    @property
    def embed_model(self):
        """The LlamaIndex embedding model the index uses (for tools that embed alongside it, e.g. baselines)."""
        return self.index.embed_model

    def papers(self, offset: int = 0, limit: int | None = None, *, by_label: bool = False) -> list[Paper]:
        """The papers of the catalog in id order, or by title (``by_label``): every one, or a page of ``limit``
        from ``offset``."""
        if self.settings.chroma_url:
            self.index  # noqa: B018 - opening the index reads the catalog from the server
        self.catch_up()
        return self.catalog.papers(offset, limit, by_label)

    def years(self) -> list[int]:
        """The publication years in the collection, ascending."""
        if self.settings.chroma_url:
            self.index  # noqa: B018
        self.catch_up()
        return self.catalog.years()

    def count(self) -> int:
        """How many papers the collection holds."""
        if self.settings.chroma_url:
            self.index  # noqa: B018
        self.catch_up()
        return self.catalog.count()

    def paper(self, paper_id: str) -> Paper | None:
        """The paper with this id (``Paper.id``), or None."""
        self.catch_up()
        return self.catalog.get(paper_id)

    # -- search and answers ---------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, *, year_from: int | None = None, year_to: int | None = None,
               author: str | None = None, arxiv_id: str | None = None) -> list[Hit]:
        """Papers most relevant to the query (one hit per paper, best passage), filters applied to both sides."""
        where = SearchFilter(year_from, year_to, author, arxiv_id)
        query = _check_query(query)
        self.catch_up()
        hits, _ = self._retriever().retrieve(query, k or self.settings.top_k, where)
        return hits

    def ask(self, question: str, **options) -> Answer:
        """Answer with numbered citations, or abstain. Options: k, answerer, year_from, year_to, author, arxiv_id."""
        return self.stream(question, **options).result()

    def stream(self, question: str, **options) -> AnswerStream:
        """Like ask(), yielding text deltas as they are produced."""
        return AnswerStream(self._run(_check_query(question), [], **options))

    def chat(self) -> Chat:
        """A conversation that keeps history, so follow-ups refer back to the papers just cited."""
        return Chat(self)

    def assess(self, question: str, k: int | None = None, *, year_from: int | None = None,
               year_to: int | None = None, author: str | None = None, arxiv_id: str | None = None) -> Assessment:
        """Whether the collection answers the question, and why: the hits, the evidence features, the
        confidence and the outcome (answered / low_confidence / abstained). No answer is composed."""
        where = SearchFilter(year_from, year_to, author, arxiv_id)
        question = _check_query(question)
        self.catch_up()
        return self._assess(question, k or self.settings.top_k, where)

    def _assess(self, question: str, k: int, where: SearchFilter, follow_up_ids: list[str] | None = None,
                context: str = "") -> Assessment:
        retriever = self._retriever()
        if follow_up_ids:
            # A follow-up ("what did it use?") first looks in the papers just cited; it is decided like any
            # question, read together with the question before it (what "it" stands for), and when those
            # papers do not answer it the whole collection is searched.
            narrowed = SearchFilter(where.year_from, where.year_to, where.author, where.arxiv_id, tuple(follow_up_ids))
            hits, best = retriever.retrieve(question, k, narrowed)
            verdict = self._decide(f"{context} {question}".strip(), hits, best)
            # The earlier question must not carry an unrelated one: the new question's own terms have to be
            # in the paper too ("what is its population?" after a GAN paper goes to the whole collection).
            own = self._decide(question, hits, best).features.get("top_coverage", 0.0)
            if verdict.outcome != "abstained" and own >= FOLLOW_UP_COVERAGE:
                return verdict
        hits, best = retriever.retrieve(question, k, where)
        return self._decide(question, hits, best)

    def _decide(self, question: str, hits: list[Hit], best: float) -> Assessment:
        s = self.settings
        return assess(question, hits, best, self.term_stats, self.answerability, s.abstain_below, s.notice_below)

    def _run(self, question: str, history: list[Turn], *, k: int | None = None, answerer: str | None = None,
             year_from: int | None = None, year_to: int | None = None, author: str | None = None,
             arxiv_id: str | None = None, follow_up_ids: list[str] | None = None) -> Generator[str, None, Answer]:
        engine = self.answerer(answerer)
        self.catch_up()
        context = history[-1].question if history and follow_up_ids else ""
        verdict = self._assess(question, k or self.settings.top_k, SearchFilter(year_from, year_to, author, arxiv_id),
                               follow_up_ids, context)
        hits, confidence = verdict.hits, round(verdict.confidence, 4)
        if verdict.outcome == "abstained":  # decided before any answerer runs: no LLM call, no cost
            yield ABSTAIN_TEXT
            return Answer(question=question, text=ABSTAIN_TEXT, hits=hits, abstained=True, outcome="abstained",
                          confidence=confidence if hits else None, answerer=engine.name)
        lead = LOW_CONFIDENCE_LEAD + "\n" if verdict.outcome == "low_confidence" else ""
        if lead:
            yield lead
        draft: Draft = yield from engine.generate(question, hits, history)
        answer = _finish(question, draft, hits, engine.name, self.index.embed_model)
        if answer.abstained or answer.error:
            return answer.model_copy(update={"confidence": confidence})
        return answer.model_copy(update={"text": lead + answer.text, "outcome": verdict.outcome,
                                         "confidence": confidence})


def _check_query(text: str) -> str:
    text = " ".join(str(text).split())
    if not text:
        raise ValueError("the question is empty")
    return text[:2000]  # a question, not a document: keeps prompts and embeddings bounded


def _finish(question: str, draft: Draft, hits: list[Hit], answerer: str, embed_model=None) -> Answer:
    if draft.error:
        return Answer(question=question, text=f"No answer: {draft.error}. The retrieved sources are listed below.",
                      hits=hits, answerer=answerer, error=draft.error)  # type: ignore[arg-type]
    if draft.abstained:
        return Answer(question=question, text=ABSTAIN_TEXT if draft.text == REFUSAL else draft.text, hits=hits,
                      abstained=True, outcome="abstained", answerer=answerer)  # type: ignore[arg-type]
    text, cited, dropped = validate_citations(draft.text, len(hits))
    citations = collect(cited, hits, draft.passages)
    # Copied sentences pass a lexical test at once; the embedder only sees sentences that test leaves open.
    return Answer(question=question, text=text, citations=citations, hits=hits, answerer=answerer,  # type: ignore[arg-type]
                  dropped_citations=dropped, support=check_answer(text, citations, embed_model))


class Chat:
    """A conversation with an Assistant. A follow-up that says "it"/"they" looks in the conversation's cited
    papers first; it is decided (answer or abstain) like any question, and never repeats an earlier answer."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.history: list[Turn] = []

    def _kept(self) -> list[Turn]:
        keep = self.assistant.settings.history_turns
        return self.history[-keep:] if keep else []

    def stream(self, question: str, **options) -> AnswerStream:
        question = _check_query(question)
        kept = self._kept()
        cited = list(dict.fromkeys(pid for turn in reversed(kept) for pid in turn.cited_ids))  # latest first
        follow_up_ids = cited if cited and _ANAPHOR.search(question) else None

        def run() -> Generator[str, None, Answer]:
            answer = yield from self.assistant._run(question, kept, follow_up_ids=follow_up_ids, **options)
            self.history.append(Turn(question, answer.text, [c.paper.id for c in answer.citations]))
            return answer

        return AnswerStream(run())

    def ask(self, question: str, **options) -> Answer:
        return self.stream(question, **options).result()

    def reset(self) -> None:
        """Forget the conversation."""
        self.history.clear()

    def turns(self) -> list[dict]:
        """The conversation as plain data (question, answer text, cited paper ids), e.g. to keep in a browser."""
        return [{"question": t.question, "answer": t.answer, "cited_ids": list(t.cited_ids)} for t in self.history]

    def restore(self, turns: list) -> None:
        """Continue a conversation saved with ``turns()``; malformed entries (untrusted storage) are skipped."""
        self.history.clear()
        for turn in turns or []:
            if isinstance(turn, dict) and isinstance(turn.get("question"), str) and isinstance(turn.get("answer"), str):
                ids = [i for i in turn.get("cited_ids") or [] if isinstance(i, str)]
                self.history.append(Turn(turn["question"], turn["answer"], ids))
