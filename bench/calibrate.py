"""Retrieval quality and abstention calibration on eval/questions.jsonl.

Prints paper-level hit@1/5 and MRR on answerable questions, and the abstention features
(best dense cosine, question-term coverage of the top paper) for answerable vs unanswerable questions.
Usage: python bench/calibrate.py [--data-dir DIR]   (ingests seeds/ into DIR if empty)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.dataset import gold_ids, load_questions  # noqa: E402
from rag import Assistant, Settings  # noqa: E402
from rag.abstention import missing_terms, should_abstain  # noqa: E402
from rag.assistant import paper_text  # noqa: E402
from rag.retrieval import SearchFilter  # noqa: E402


def score_single(assistant: Assistant, mode: str, questions, papers) -> str:
    """hit@1 / hit@5 / MRR of one side alone (same chunks, one hit per paper), as a baseline."""
    from llama_index.core.schema import QueryBundle

    from rag.retrieval import OnePerPaper

    index = assistant.index
    side = (index.vector_index.as_retriever(similarity_top_k=assistant.settings.candidates)
            if mode == "dense only" else index.lexical)
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
    extractive = assistant.answerer("extractive")
    retriever = assistant._retriever()
    for mode in ("dense only", "BM25 only"):
        print(f"{mode:10s} " + score_single(assistant, mode, questions, papers))
    hit1 = hit5 = rr = 0.0
    answerable = unanswerable = 0
    rows = []
    texts: dict[str, str] = {}
    for q in questions:
        hits, best = retriever.retrieve(q.question, 5, SearchFilter())
        top = hits[0].paper if hits else None
        coverage = extractive.coverage(q.question, f"{top.title or ''} {top.abstract} {' '.join(top.authors)}") if top else 0
        texts[q.id] = paper_text(top) if top else ""
        missing = missing_terms(q.question, texts[q.id])
        rows.append((q, best, coverage, missing))
        if not q.answerable:
            unanswerable += 1
            continue
        answerable += 1
        gold = set().union(*gold_ids(q, papers))
        ranks = [i for i, h in enumerate(hits, 1) if h.paper.id in gold]
        if ranks:
            hit1 += ranks[0] == 1
            hit5 += 1
            rr += 1 / ranks[0]
        else:
            print(f"miss {q.id} [{q.kind}] {q.question[:80]}")
    print(f"answerable {answerable}: hit@1 {hit1 / answerable:.3f}  hit@5 {hit5 / answerable:.3f}  "
          f"MRR {rr / answerable:.3f}")
    for label, keep in (("answerable", True), ("unanswerable", False)):
        sims = sorted(b for q, b, c, m in rows if q.answerable == keep)
        covs = sorted(c for q, b, c, m in rows if q.answerable == keep)
        print(f"{label:13s} cos min {sims[0]:.3f} p10 {sims[len(sims) // 10]:.3f} median {statistics.median(sims):.3f}"
              f" max {sims[-1]:.3f} | coverage min {covs[0]:.2f} p10 {covs[len(covs) // 10]:.2f} "
              f"median {statistics.median(covs):.2f} max {covs[-1]:.2f}")
    for threshold in (0.15, 0.18, 0.2, 0.22, 0.25, 0.3, 0.35):
        a = sum(1 for q, b, c, m in rows if q.answerable and should_abstain(q.question, b, texts[q.id], threshold))
        u = sum(1 for q, b, c, m in rows if not q.answerable and should_abstain(q.question, b, texts[q.id], threshold))
        print(f"abstain below cos {threshold:.2f} or missing terms: answerable abstained {a}/{answerable}, "
              f"unanswerable abstained {u}/{unanswerable}")
    for q, b, c, m in sorted(rows, key=lambda r: r[1]):
        print(f"{'A' if q.answerable else 'U'} cos {b:.3f} cov {c:.2f} miss {sorted(m)} {q.kind:12s} {q.question[:70]}")


if __name__ == "__main__":
    main()
