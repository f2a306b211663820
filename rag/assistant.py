"""The public entry point: ingest abstracts, list papers, search, ask (whole or streamed) and chat."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

from tqdm import tqdm

from rag.abstention import should_abstain
from rag.answerer import Answerer, Draft, Turn
from rag.catalog import Catalog
from rag.citations import collect, validate_citations
from rag.embedders import embedder_id, make_embedder
from rag.extractive import ExtractiveAnswerer
from rag.grounding import check_answer
from rag.index import Index
from rag.loaders import load
from rag.models import Answer, Hit, IngestReport, Paper
from rag.prompts import REFUSAL
from rag.retrieval import HybridRetriever, SearchFilter
from rag.settings import Settings

ABSTAIN_TEXT = "The collection does not say: none of the indexed abstracts answers this question."
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
        self.catalog = Catalog(self.settings.data_dir / "catalog.json")
        self._lock = threading.RLock()  # guards lazily built parts; held briefly
        self._ingest_lock = threading.Lock()  # one ingest at a time; searches and answers go on meanwhile
        self._index: Index | None = None
        self._extractive: ExtractiveAnswerer | None = None
        self._llm: Answerer | None = None

    # -- lazily built parts (the embedder takes seconds to load) ---------------------------------
    @property
    def index(self) -> Index:
        with self._lock:
            if self._index is None:
                self._index = Index(self.settings, make_embedder(self.settings), embedder_id(self.settings))
                if not self.catalog.papers and self._index.count():
                    # A new client of a shared Chroma server: take the catalog the store carries.
                    self.catalog.restore(self._index.records())
                    self.catalog.save()
            return self._index

    def _retriever(self) -> HybridRetriever:
        return HybridRetriever(self.index, self.catalog._by_id, self.settings)

    def answerer(self, name: str | None = None) -> Answerer:
        """The answerer by name (`extractive` / `llm`), default from settings."""
        name = name or self.settings.effective_answerer
        with self._lock:
            if name == "llm":
                if not self.settings.llm_configured:
                    raise ValueError("the LLM answerer needs OPENAI_API_KEY (or RAG_LLM_API_KEY) or RAG_LLM_BASE_URL")
                if self._llm is None:
                    from rag.llm import LLMAnswerer

                    self._llm = LLMAnswerer(self.settings)
                return self._llm
            if name != "extractive":
                raise ValueError(f"unknown answerer {name!r}; use 'extractive' or 'llm'")
            if self._extractive is None:
                self._extractive = ExtractiveAnswerer.from_texts(
                    f"{p.title or ''} {p.abstract}" for p in self.catalog.papers
                )
            return self._extractive

    # -- ingest and catalog ---------------------------------------------------------------------
    def ingest(self, *paths: str | Path, progress: bool | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> IngestReport:
        """Read files/folders of abstracts, merge them into the catalog and bring the index up to date.

        ``progress``: terminal progress bar (None: only on a terminal). ``on_progress(done, total)``:
        called after each embedded batch of chunks (for a UI's progress bar).
        """
        if not paths:
            raise ValueError("ingest needs at least one file or folder")
        loaded = load([Path(p) for p in paths], self.settings.max_abstract_chars)
        broken = {where.rsplit(":", 1)[0] for where, _ in loaded.failed if where.endswith(":1")}
        # A file that could not be read at all keeps what an earlier ingest took from it.
        readable = [f for f in loaded.files if f not in broken or any(r.path == f for r in loaded.records)]
        with self._ingest_lock:
            index = self.index
            self.catalog.replace_files(readable, loaded.records)
            self.catalog.save()
            with self._lock:
                self._extractive = None  # its term statistics come from the catalog
            bar = tqdm(total=0, unit="chunk", desc="Embedding", disable=None if progress is None else not progress)

            def tick(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)
                if on_progress:
                    on_progress(done, total)

            try:
                counts = index.sync(self.catalog.papers, progress=tick)
            finally:
                bar.close()
        return IngestReport(records=len(loaded.records), papers=len(self.catalog.papers),
                            failed=loaded.failed, warnings=loaded.warnings, **counts)

    def status(self) -> dict[str, str | int]:
        """What this assistant runs on (shown in UIs; never includes an API key)."""
        s = self.settings
        return {
            "papers": len(self.catalog.papers),
            "chunks": self.index.count(),
            "embedder": embedder_id(s),
            # local: the precision documents are embedded in (bf16 on AMX CPUs); a remote model's is unknown
            "embed_precision": getattr(self.index.embed_model, "precision", "remote"),
            "store": s.chroma_url or str(s.data_dir / "chroma"),
            "answerer": s.effective_answerer,
            "llm_endpoint": (s.llm_base_url or "https://api.openai.com/v1") if s.llm_configured else "none",
            "llm_model": s.llm_model if s.llm_configured else "none",
        }

    def papers(self) -> list[Paper]:
        """Every paper in the catalog."""
        if not self.catalog.papers and self.settings.chroma_url:
            self.index  # noqa: B018 - opening the index restores the catalog from the server
        return list(self.catalog.papers)

    def paper(self, paper_id: str) -> Paper | None:
        return self.catalog.get(paper_id)

    # -- search and answers ---------------------------------------------------------------------
    def search(self, query: str, k: int | None = None, *, year_from: int | None = None, year_to: int | None = None,
               author: str | None = None, arxiv_id: str | None = None) -> list[Hit]:
        """Papers most relevant to the query (one hit per paper, best passage), filters applied to both sides."""
        where = SearchFilter(year_from, year_to, author, arxiv_id)
        hits, _ = self._retriever().retrieve(_check_query(query), k or self.settings.top_k, where)
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

    def _run(self, question: str, history: list[Turn], *, k: int | None = None, answerer: str | None = None,
             year_from: int | None = None, year_to: int | None = None, author: str | None = None,
             arxiv_id: str | None = None, follow_up_ids: list[str] | None = None) -> Generator[str, None, Answer]:
        engine = self.answerer(answerer)
        k = k or self.settings.top_k
        retriever = self._retriever()
        hits: list[Hit] = []
        follow_up = False
        if follow_up_ids:
            where = SearchFilter(year_from, year_to, author, arxiv_id, tuple(follow_up_ids))
            hits, best = retriever.retrieve(question, k, where)
            follow_up = bool(hits)
        if not hits:
            hits, best = retriever.retrieve(question, k, SearchFilter(year_from, year_to, author, arxiv_id))
        if not hits or (not follow_up and should_abstain(question, best, paper_text(hits[0].paper),
                                                         self.settings.abstain_below)):
            yield ABSTAIN_TEXT
            return Answer(question=question, text=ABSTAIN_TEXT, hits=hits, abstained=True, answerer=engine.name)
        draft: Draft = yield from engine.generate(question, hits, history)
        return _finish(question, draft, hits, engine.name, self.index.embed_model)


def paper_text(paper: Paper) -> str:
    """Everything the collection says about a paper, as one text."""
    return " ".join(x for x in (paper.title, paper.abstract, ", ".join(paper.authors), paper.arxiv_id, paper.date,
                                paper.comment) if x)


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
                      abstained=True, answerer=answerer)  # type: ignore[arg-type]
    text, cited, dropped = validate_citations(draft.text, len(hits))
    citations = collect(cited, hits, draft.passages)
    # Copied sentences pass a lexical test at once; the embedder only sees sentences that test leaves open.
    return Answer(question=question, text=text, citations=citations, hits=hits, answerer=answerer,  # type: ignore[arg-type]
                  dropped_citations=dropped, support=check_answer(text, citations, embed_model))


class Chat:
    """A conversation with an Assistant. Follow-ups that say "it"/"they" search the papers just cited first."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.history: list[Turn] = []

    def stream(self, question: str, **options) -> AnswerStream:
        question = _check_query(question)
        previous = self.history[-1].cited_ids if self.history else []
        follow_up_ids = previous if previous and _ANAPHOR.search(question) else None
        keep = self.assistant.settings.history_turns

        def run() -> Generator[str, None, Answer]:
            answer = yield from self.assistant._run(question, self.history[-keep:] if keep else [],
                                                    follow_up_ids=follow_up_ids, **options)
            self.history.append(Turn(question, answer.text, [c.paper.id for c in answer.citations]))
            return answer

        return AnswerStream(run())

    def ask(self, question: str, **options) -> Answer:
        return self.stream(question, **options).result()

    def reset(self) -> None:
        """Forget the conversation."""
        self.history.clear()
