"""Peers run on the same questions and machine, for `rag eval --baselines` (retrieval only: neither has an
offline answerer worth measuring).

- ``llamaindex-starter``: the LlamaIndex starter recipe: ``SimpleDirectoryReader`` over the files the
  catalog was ingested from + ``VectorStoreIndex.from_documents`` with default chunking (SentenceSplitter,
  1024 tokens, overlap 200), retrieving 5 chunks. One substitution: the embedder is our offline local one
  (all-MiniLM-L6-v2), since the recipe's default (OpenAI) cannot be reached and nothing may download.
  Its chunks are slices of the raw listings, not our papers: a chunk is mapped to every catalog paper one
  of whose abstract sentences (30+ characters, compared as lower-case alphanumerics) it contains, in the
  order they appear in it; papers are ranked by their first chunk.
- ``bm25``: LlamaIndex ``BM25Retriever`` (English stemmer) over one document per catalog paper (title,
  authors, abstract): lexical retrieval alone, on our parsed papers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from eval.dataset import Question, gold_ids
from eval.metrics import latency_summary, retrieval_metrics
from rag import Assistant, Paper, split_sentences, word_tokens

RATIO_KEYS = ("hit@1", "hit@5", "mrr", "ndcg@5", "recall@5_multi")
Ranker = Callable[[str], list[str]]


def _flat(text: str) -> str:
    return " ".join(word_tokens(text))


class ChunkMapper:
    """Which catalog papers a chunk of raw listing text contains (by their abstract sentences)."""

    def __init__(self, papers: Sequence[Paper], min_chars: int = 30) -> None:
        self.anchors = [(p.id, flat) for p in papers for s in split_sentences(p.abstract)
                        if len(flat := _flat(s)) >= min_chars]

    def papers_in(self, text: str) -> list[str]:
        flat = _flat(text)
        first: dict[str, int] = {}
        for pid, anchor in self.anchors:
            at = flat.find(anchor)
            if at >= 0 and (pid not in first or at < first[pid]):
                first[pid] = at
        return sorted(first, key=first.get)  # type: ignore[arg-type]


def starter_recipe(assistant: Assistant, chunks: int = 5) -> Ranker:
    """The LlamaIndex starter recipe over the ingested files, as a ranker of catalog paper ids."""
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex

    papers = assistant.papers()
    files = sorted({s.path for p in papers for s in p.sources})
    try:
        documents = SimpleDirectoryReader(input_files=files).load_data()
    except (FileNotFoundError, ValueError) as exc:
        raise ValueError(f"the starter baseline re-reads the ingested files, and cannot: {exc}") from None
    index = VectorStoreIndex.from_documents(documents, embed_model=assistant.embed_model)
    retriever = index.as_retriever(similarity_top_k=chunks)
    mapper = ChunkMapper(papers)

    def rank(question: str) -> list[str]:
        ranked: list[str] = []
        for node in retriever.retrieve(question):
            ranked += [pid for pid in mapper.papers_in(node.node.get_content()) if pid not in ranked]
        return ranked

    return rank


def bm25_per_paper(assistant: Assistant, k: int = 10) -> Ranker:
    """BM25 alone over one document per catalog paper, as a ranker of paper ids."""
    import Stemmer
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever

    nodes = [TextNode(id_=p.id, text="\n".join(x for x in (p.title, ", ".join(p.authors), p.abstract) if x))
             for p in assistant.papers()]
    retriever = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=min(k, len(nodes)),
                                            stemmer=Stemmer.Stemmer("english"))
    return lambda question: [n.node.node_id for n in retriever.retrieve(question) if (n.score or 0) > 0]


def dense_per_paper(assistant: Assistant, k: int = 10) -> Ranker:
    """The assistant's own dense side alone (same chunks, same Chroma collection), one hit per paper."""
    from llama_index.core.schema import QueryBundle

    from rag.retrieval.hybrid import OnePerPaper

    retriever = assistant.index.vector_index.as_retriever(similarity_top_k=assistant.settings.candidates)

    def rank(question: str) -> list[str]:
        nodes = OnePerPaper(top_n=k).postprocess_nodes(retriever.retrieve(question), QueryBundle(question))
        return [n.node.metadata.get("paper_id") for n in nodes]

    return rank


def evaluate_ranker(rank: Ranker, questions: Sequence[Question], papers: Sequence[Paper]) -> dict:
    """Retrieval figures and search latency of one ranker on answerable questions."""

    rankings, golds, times = [], [], []
    for q in questions:
        start = time.perf_counter()
        rankings.append(rank(q.question))
        times.append({"search_ms": (time.perf_counter() - start) * 1000, "ask_ms": 0.0})
        golds.append([g for g in gold_ids(q, papers) if g])
    latency = latency_summary(times)
    return {"retrieval": retrieval_metrics(rankings, golds, [len(g) > 1 for g in golds]),
            "latency_ms": {"search_p50": latency["search_p50"], "search_p95": latency["search_p95"]}}


def run_baselines(assistant: Assistant, questions: Sequence[Question], ours: dict) -> dict:
    """Both peers on the answerable questions, and our figures divided by theirs."""
    papers = assistant.papers()
    out: dict = {"notes": (__doc__ or "").strip(), "questions": len(questions)}
    for name, build in (("llamaindex-starter", starter_recipe), ("bm25", bm25_per_paper)):
        start = time.perf_counter()
        rank = build(assistant)
        build_s = round(time.perf_counter() - start, 2)
        result = evaluate_ranker(rank, questions, papers)
        result["build_s"] = build_s
        theirs = result["retrieval"]
        result["ratio"] = {k: (ours["retrieval"][k] / theirs[k] if theirs.get(k) and ours["retrieval"].get(k)
                               is not None else None) for k in RATIO_KEYS}
        mine, their_ms = ours["latency_ms"]["search_p50"], result["latency_ms"]["search_p50"]
        result["ratio"]["search_p50"] = mine / their_ms if mine and their_ms else None
        out[name] = result
    return out
