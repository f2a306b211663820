"""Run a question set through an Assistant and measure retrieval, citations, grounding, key facts,
abstention and latency. The report is a plain dict (JSON-ready); its keys are documented in
docs/eval-format.md and kept stable (``schema`` changes when they do not).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from eval.dataset import Question, gold_ids, load_questions
from eval.gates import check_gates
from eval.metrics import (
    abstention_scores,
    citation_precision,
    citation_recall,
    dangling_citations,
    first_rank,
    hit_at,
    key_facts_found,
    latency_summary,
    mean,
    reciprocal_rank,
    retrieval_metrics,
)
from rag import GROUNDING_METHOD, Answer, Assistant, Paper
from rag.index.embedders import embedder_id

SCHEMA = "rag-eval/1"
SEARCH_K = 10  # retrieved for recall@10; hit@k, MRR and nDCG read the first 5
VERDICTS = ("supported", "partial", "unsupported")
GROUNDING_LIMITS = (
    "Offline grounding is an attribution heuristic, not entailment: every number and named term of a sentence "
    "must occur in its cited passages or the cited papers' records, and its content words must overlap them "
    "(or embed close to one of their sentences). Sentences that recombine true figures into a false claim, "
    "negations and figures attached to the wrong metric pass; faithful paraphrases sharing few words may fail. "
    "Set RAG_JUDGE_BASE_URL / RAG_JUDGE_MODEL (or RAG_JUDGE_API_KEY) for an LLM judge."
)


def _label(paper: Paper) -> str:
    label = paper.label
    return label if len(label) <= 70 else label[:67] + "…"


def _timed(call: Callable, *args, **kwargs) -> tuple:
    """(call's result, milliseconds it took)."""
    start = time.perf_counter()
    result = call(*args, **kwargs)
    return result, (time.perf_counter() - start) * 1000


def _question_record(q: Question, gold: list[set[str]], hits: list, answer: Answer, search_ms: float,
                     ask_ms: float) -> dict:
    ranked = [h.paper.id for h in hits]
    relevant = set().union(*gold) if gold else set()
    support = answer.support
    backed = {n for s in support if s.verdict != "unsupported" for n in s.citations}
    cited = [{"number": c.number, "paper_id": c.paper.id, "label": _label(c.paper), "gold": c.paper.id in relevant,
              "supported": c.number in backed} for c in answer.citations]
    cited_ids = [c["paper_id"] for c in cited]
    found = key_facts_found(q.key_facts, answer.text) if not answer.abstained else [False] * len(q.key_facts)
    dangling = dangling_citations(answer.text, len(answer.hits), answer.dropped_citations)
    record = {
        "id": q.id, "kind": q.kind, "question": q.question, "answerable": q.answerable,
        "gold": [sorted(g) for g in gold],
        "retrieved": [{"paper_id": h.paper.id, "label": _label(h.paper), "gold": h.paper.id in relevant}
                      for h in hits[:5]],
        "rank": first_rank(ranked, gold) if q.answerable else None,
        "abstained": answer.abstained,
        "outcome": answer.outcome,
        "confidence": None if answer.confidence is None else round(answer.confidence, 4),
        "answer": answer.text,
        "error": answer.error,
        "cited": cited,
        "citation_recall": citation_recall(cited_ids, gold) if q.answerable else None,
        "citation_precision": citation_precision(cited_ids, gold, {c["paper_id"] for c in cited if c["supported"]}),
        "citation_precision_gold_only": citation_precision(cited_ids, gold),
        "dangling": dangling,
        "key_facts_found": [f for f, ok in zip(q.key_facts, found, strict=True) if ok],
        "key_facts_missing": [f for f, ok in zip(q.key_facts, found, strict=True) if not ok],
        "key_fact_recall": sum(found) / len(found) if found else None,
        "support": [s.model_dump() for s in support],
        "search_ms": round(search_ms, 2),
        "ask_ms": round(ask_ms, 2),
    }
    record["failures"] = _failures(record)
    return record


def _failures(r: dict) -> list[str]:
    """Why a question counts as failed (empty: it passed)."""
    if not r["answerable"]:
        return [] if r["abstained"] else ["answered an unanswerable question"]
    out = []
    if r["rank"] is None or r["rank"] > 5:
        out.append("no gold paper in the top 5")
    if r["error"]:
        out.append(f"answerer error: {r['error']}")
    elif r["abstained"]:
        out.append("abstained")
    else:
        if not r["citation_recall"]:
            out.append("no gold paper cited")
        if r["key_facts_missing"]:
            out.append("key facts missing: " + ", ".join(r["key_facts_missing"]))
        if any(s["verdict"] == "unsupported" for s in r["support"]):
            out.append("unsupported sentence")
    if r["dangling"]:
        out.append(f"dangling citations {r['dangling']}")
    return out


def _grounding(records: list[dict]) -> dict:
    verdicts = [s["verdict"] for r in records if not r["abstained"] for s in r["support"]]
    total = len(verdicts)
    out: dict[str, float | int | None] = {"sentences": total}
    for v in VERDICTS:
        out[v] = verdicts.count(v)
        out[f"{v}_rate"] = verdicts.count(v) / total if total else None
    return out


def _answer_metrics(records: list[dict]) -> tuple[dict, dict, dict]:
    answerable = [r for r in records if r["answerable"]]
    citing = [r for r in answerable if r["cited"]]
    cited_all = [c for r in citing for c in r["cited"]]
    citations = {
        "recall": mean([r["citation_recall"] for r in answerable]),
        "precision": mean([r["citation_precision"] for r in citing]),
        "precision_gold_only": mean([r["citation_precision_gold_only"] for r in citing]),
        "precision_micro": (sum(c["gold"] or c["supported"] for c in cited_all) / len(cited_all)) if cited_all else None,
        "answers_citing": len(citing),
        "dangling": sum(len(r["dangling"]) for r in records),
    }
    answers = {
        "key_fact_recall": mean([r["key_fact_recall"] for r in answerable]),
        "all_key_facts": mean([float(not r["key_facts_missing"]) for r in answerable if r["key_fact_recall"] is not None]),
        "errors": sum(1 for r in records if r["error"]),
    }
    abstention = abstention_scores([r["abstained"] for r in records], [r["answerable"] for r in records])
    abstention["abstained"] = sum(r["abstained"] for r in records)
    return citations, answers, abstention


def _by_kind(records: list[dict], rankings: dict[str, list[str]], golds: dict[str, list[set[str]]]) -> dict:
    out = {}
    for kind in sorted({r["kind"] for r in records}):
        rows = [r for r in records if r["kind"] == kind]
        answerable = [r for r in rows if r["answerable"]]
        g = _grounding(rows)
        out[kind] = {
            "questions": len(rows),
            "hit@5": mean([hit_at(rankings[r["id"]], golds[r["id"]], 5) for r in answerable]),
            "mrr": mean([reciprocal_rank(rankings[r["id"]], golds[r["id"]], 5) for r in answerable]),
            "citation_recall": mean([r["citation_recall"] for r in answerable]),
            "key_fact_recall": mean([r["key_fact_recall"] for r in answerable]),
            "supported_rate": g["supported_rate"],
            "abstention_rate": mean([float(r["abstained"]) for r in rows]),
            "failed": sum(1 for r in rows if r["failures"]),
        }
    return out


def run_eval(assistant: Assistant, questions: Sequence[Question] | str | Path | None = None,
             answerer: str | None = None, *, judge=None, baselines: bool = False,
             progress: Callable[[int, int], None] | None = None) -> dict:
    """Evaluate ``assistant`` on the questions (a list, a JSONL path, or None for eval/questions.jsonl).

    ``answerer``: extractive / llm (default: the assistant's settings). ``judge``: an eval.judge.Judge to
    decide grounding (default: the offline check the Answer already carries). ``baselines``: also run the
    LlamaIndex starter recipe and BM25-only retrieval on the same questions (eval/baselines.py).
    """
    if questions is None or isinstance(questions, (str, Path)):
        questions = load_questions(Path(questions)) if questions else load_questions()
    questions = list(questions)
    papers = assistant.papers()
    if not papers:
        raise ValueError("the collection is empty: ingest the abstracts the questions are about first")
    engine = assistant.answerer(answerer).name
    if questions:  # warm up: model load and first-call costs are not latency
        assistant.search(questions[0].question, k=SEARCH_K)
        assistant.ask(questions[0].question, answerer=engine)
    records, rankings, golds = [], {}, {}
    unmatched = []
    for number, q in enumerate(questions, 1):
        gold = gold_ids(q, papers)
        unmatched += [f"{q.id}: {entry}" for entry, ids in zip(q.gold, gold, strict=True) if not ids]
        gold = [g for g in gold if g]
        hits, search_ms = _timed(assistant.search, q.question, k=SEARCH_K)
        answer, ask_ms = _timed(assistant.ask, q.question, answerer=engine)
        if judge is not None and not answer.abstained:
            answer = answer.model_copy(update={"support": judge.check(answer.support, answer.citations)})
        rankings[q.id], golds[q.id] = [h.paper.id for h in hits], gold
        records.append(_question_record(q, gold, hits, answer, search_ms, ask_ms))
        if progress:
            progress(number, len(questions))
    answerable = [r for r in records if r["answerable"]]
    citations, answers, abstention = _answer_metrics(records)
    grounding = _grounding(records)
    grounding["method"] = judge.name if judge is not None else "offline"
    metrics = {
        "retrieval": retrieval_metrics([rankings[r["id"]] for r in answerable], [golds[r["id"]] for r in answerable],
                                       [len(golds[r["id"]]) > 1 for r in answerable]),
        "citations": citations,
        "grounding": grounding,
        "answers": answers,
        "abstention": abstention,
        "latency_ms": latency_summary(records),
    }
    by_kind = _by_kind(records, rankings, golds)
    report = {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "setup": {
            "questions": len(records), "answerable": len(answerable), "unanswerable": len(records) - len(answerable),
            "kinds": {k: v["questions"] for k, v in by_kind.items()},
            "papers": len(papers), "answerer": engine, "embedder": embedder_id(assistant.settings),
            "top_k": assistant.settings.top_k, "search_k": SEARCH_K, "grounding": grounding["method"],
            "unmatched_gold": unmatched,
            "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        },
        "metrics": metrics,
        "by_kind": by_kind,
        "gates": check_gates(metrics),
        "failures": [r["id"] for r in records if r["failures"]],
        "questions": records,
        "limits": {"grounding": GROUNDING_LIMITS if judge is None else
                   "Grounding decided by an LLM judge: its errors are the model's.",
                   "grounding_method": (GROUNDING_METHOD or "").strip()},
    }
    if baselines:
        from eval.baselines import run_baselines

        report["baselines"] = run_baselines(assistant, [q for q in questions if q.answerable], metrics)
    return report
