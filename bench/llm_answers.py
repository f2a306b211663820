"""The LLM answer path against a real OpenAI-compatible server: answer rate, dangling citations, grounding.

Runs our question set (over seeds/) and a SciFact-train sample (a fixed random sample of claims over their
cited papers plus random distractor abstracts) through `Assistant.ask(answerer="llm")`, and prints per set:
answer rate on answerable questions (abstentions split into "decided before the LLM" and "the LLM refused"),
abstention on unanswerable ones, dangling citation numbers, grounding of answer sentences
(supported / partial / unsupported, the offline check), key-fact recall where the set has key facts, answers
citing a gold paper, and seconds per answer.

Usage (a llama.cpp server, Ollama, vLLM, OpenAI …):
  python -m llama_cpp.server --model qwen2.5-coder-0.5b-instruct.gguf --host 127.0.0.1 --port 8091 --n_ctx 4096
  python bench/llm_answers.py --base-url http://127.0.0.1:8091/v1 --model qwen --limit 30 \\
      --scifact ../shared/benchmarks/scifact --scifact-sample 20 -k 3
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.dataset import gold_ids, load_questions  # noqa: E402
from eval.metrics import dangling_citations, key_facts_found  # noqa: E402
from rag import Assistant, Settings  # noqa: E402


def run_set(name: str, assistant: Assistant, items: list[dict], k: int) -> dict:
    """items: {question, answerable, gold: set of paper ids, key_facts}."""
    rows = []
    for i, item in enumerate(items, 1):
        start = time.perf_counter()
        answer = assistant.ask(item["question"], answerer="llm", k=k)
        seconds = time.perf_counter() - start
        cited = {c.paper.id for c in answer.citations}
        rows.append({
            "question": item["question"], "answerable": item["answerable"], "seconds": seconds,
            "abstained": answer.abstained, "llm_refused": _llm_refused(answer, assistant),
            "error": answer.error, "dangling": dangling_citations(answer.text, len(answer.hits), answer.dropped_citations),
            "verdicts": [s.verdict for s in answer.support],
            "key_facts": key_facts_found(item["key_facts"], answer.text) if item["key_facts"] and not answer.abstained
            else [False] * len(item["key_facts"]),
            "cites_gold": bool(cited & item["gold"]), "text": answer.text,
        })
        print(f"  [{name} {i}/{len(items)}] {seconds:5.1f}s {'ABSTAIN' if answer.abstained else 'answer '} "
              f"{item['question'][:70]}", file=sys.stderr)
    return summarise(rows)


def _llm_refused(answer, assistant: Assistant) -> bool:
    """An abstention the LLM chose (the answerability decision had let the question through)."""
    cut = assistant.settings.abstain_below
    cut = assistant.answerability.abstain_below if cut is None else cut
    return answer.abstained and answer.error is None and (answer.confidence or 0.0) >= cut


def summarise(rows: list[dict]) -> dict:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    verdicts = [v for r in rows if not r["abstained"] for v in r["verdicts"]]
    facts = [f for r in answerable for f in r["key_facts"]]
    answered = [r for r in answerable if not r["abstained"] and not r["error"]]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "answered": len(answered),
        "answer_rate": len(answered) / len(answerable) if answerable else None,
        "abstained_before_llm": sum(r["abstained"] and not r["llm_refused"] for r in answerable),
        "llm_refused": sum(r["llm_refused"] for r in answerable),
        "errors": sum(bool(r["error"]) for r in rows),
        "unanswerable_abstained": f"{sum(r['abstained'] for r in unanswerable)}/{len(unanswerable)}",
        "dangling_citations": sum(len(r["dangling"]) for r in rows),
        "sentences": len(verdicts),
        "supported": verdicts.count("supported") / len(verdicts) if verdicts else None,
        "partial": verdicts.count("partial") / len(verdicts) if verdicts else None,
        "unsupported": verdicts.count("unsupported") / len(verdicts) if verdicts else None,
        "key_fact_recall": sum(facts) / len(facts) if facts else None,
        "answers_citing_gold": sum(r["cites_gold"] for r in answered) / len(answered) if answered else None,
        "median_seconds": statistics.median(r["seconds"] for r in rows) if rows else None,
        "rows": rows,
    }


def own_items(assistant: Assistant, limit: int | None) -> list[dict]:
    questions = load_questions()
    answerable = [q for q in questions if q.answerable]
    unanswerable = [q for q in questions if not q.answerable]
    if limit:  # keep the set's mix: about one unanswerable question in five
        picked = answerable[:limit - limit // 5] + unanswerable[:limit // 5]
    else:
        picked = questions
    papers = assistant.papers()
    return [{"question": q.question, "answerable": q.answerable, "key_facts": q.key_facts,
             "gold": set().union(*gold_ids(q, papers)) if q.gold else set()} for q in picked]


def scifact_items(path: Path, data_dir: Path, sample: int, distractors: int, settings: dict) -> tuple[Assistant, list]:
    claims = [json.loads(x) for x in (path / "queries-train.jsonl").read_text().splitlines() if x.strip()]
    claims = [c for c in claims if c.get("cited")]
    picked = random.Random(0).sample(claims, sample)
    with gzip.open(path / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        corpus = {r["_id"]: r for r in map(json.loads, f)}
    wanted = {d for c in picked for d in c["cited"]}
    others = sorted(set(corpus) - wanted)
    keep = sorted(wanted) + random.Random(1).sample(others, distractors)
    data_dir.mkdir(parents=True, exist_ok=True)
    file = data_dir / "sample.jsonl"
    file.write_text("".join(json.dumps({"title": corpus[d]["title"], "abstract": corpus[d]["text"]}) + "\n"
                            for d in keep))
    assistant = Assistant(Settings(data_dir=data_dir / "index", **settings))
    assistant.ingest(file, progress=False)
    line_of = {d: i for i, d in enumerate(keep, 1)}
    by_line = {s.line: p.id for p in assistant.papers() for s in p.sources}
    items = [{"question": c["text"], "answerable": True, "key_facts": [],
              "gold": {by_line[line_of[d]] for d in c["cited"] if line_of[d] in by_line}} for c in picked]
    return assistant, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible API root, e.g. http://127.0.0.1:8091/v1")
    parser.add_argument("--model", required=True)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--limit", type=int, help="questions of our set (default: all 106)")
    parser.add_argument("-k", type=int, default=5, help="sources per question")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per answer (RAG_LLM_TIMEOUT)")
    parser.add_argument("--scifact", type=Path, help="SciFact-train folder (BEIR format)")
    parser.add_argument("--scifact-sample", type=int, default=20)
    parser.add_argument("--distractors", type=int, default=300, help="random other abstracts in the SciFact sample")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/rag-llm-bench"))
    parser.add_argument("--out", type=Path, help="write the full results (every answer) as JSON")
    args = parser.parse_args()

    llm = {"llm_base_url": args.base_url, "llm_model": args.model, "llm_timeout": args.timeout, "answerer": "llm",
           **({"llm_api_key": args.api_key} if args.api_key else {})}
    results = {"model": args.model, "base_url": args.base_url, "k": args.k}
    seeds = Assistant(Settings(data_dir=args.data_dir / "seeds", **llm))
    if not seeds.papers():
        seeds.ingest(ROOT / "seeds", progress=False)
    results["own"] = run_set("own", seeds, own_items(seeds, args.limit), args.k)
    if args.scifact:
        assistant, items = scifact_items(args.scifact, args.data_dir / "scifact", args.scifact_sample,
                                         args.distractors, llm)
        results["scifact"] = run_set("scifact", assistant, items, args.k)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str))
    for name in ("own", "scifact"):
        if name in results:
            summary = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in results[name].items() if k != "rows"}
            print(f"{name}: {json.dumps(summary)}")


if __name__ == "__main__":
    main()
