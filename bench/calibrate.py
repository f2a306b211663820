"""Retrieval quality on eval/questions.jsonl: dense alone, BM25 alone and the hybrid, side by side.

Prints paper-level hit@1/5 and MRR on answerable questions (the answerability decision is calibrated by
bench/answerability.py). Usage: python bench/calibrate.py [--data-dir DIR] [--chunk-tokens N]
(ingests seeds/ into DIR if empty)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.dataset import gold_ids, load_questions  # noqa: E402
from rag import Assistant, Settings  # noqa: E402
from rag.retrieval.hybrid import SearchFilter  # noqa: E402


def score_single(assistant: Assistant, mode: str, questions, papers) -> str:
    """hit@1 / hit@5 / MRR of one side alone (same chunks, one hit per paper), as a baseline."""
    from llama_index.core.schema import QueryBundle

    from rag.index.lexical import Where
    from rag.retrieval.hybrid import LexicalRetriever, OnePerPaper

    index = assistant.index
    side = (index.vector_index.as_retriever(similarity_top_k=assistant.settings.candidates)
            if mode == "dense only" else LexicalRetriever(index, assistant.settings.candidates, Where()))
    hit1 = hit5 = rr = 0.0
    answerable = [q for q in questions if q.answerable]
    for q in answerable:
        nodes = OnePerPaper(top_n=5).postprocess_nodes(side.retrieve(q.question), QueryBundle(q.question))
        gold = set().union(*gold_ids(q, papers))
        ranks = [i for i, n in enumerate(nodes, 1) if n.node.metadata.get("paper_id") in gold]
        if ranks:
            hit1 += ranks[0] == 1
            hit5 += 1
            rr += 1 / ranks[0]
    n = len(answerable)
    return f"hit@1 {hit1 / n:.3f}  hit@5 {hit5 / n:.3f}  MRR {rr / n:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="/tmp/rag-calibrate")
    parser.add_argument("--chunk-tokens", type=int, default=None)
    args = parser.parse_args()
    extra = {"chunk_tokens": args.chunk_tokens} if args.chunk_tokens else {}
    assistant = Assistant(Settings(data_dir=Path(args.data_dir), **extra))
    if not assistant.papers() or extra:
        assistant.ingest(ROOT / "seeds", progress=False)
    papers = assistant.papers()
    questions = load_questions()
    retriever = assistant._retriever()
    for mode in ("dense only", "BM25 only"):
        print(f"{mode:10s} " + score_single(assistant, mode, questions, papers))
    hit1 = hit5 = rr = 0.0
    answerable = [q for q in questions if q.answerable]
    for q in answerable:
        hits, _ = retriever.retrieve(q.question, 5, SearchFilter())
        gold = set().union(*gold_ids(q, papers))
        ranks = [i for i, h in enumerate(hits, 1) if h.paper.id in gold]
        if ranks:
            hit1 += ranks[0] == 1
            hit5 += 1
            rr += 1 / ranks[0]
        else:
            print(f"miss {q.id} [{q.kind}] {q.question[:80]}")
    n = len(answerable)
    print(f"hybrid     hit@1 {hit1 / n:.3f}  hit@5 {hit5 / n:.3f}  MRR {rr / n:.3f}")

if __name__ == "__main__":
    main()
