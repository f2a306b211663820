"""Speed figures on this machine (quoted in the README). Prints a table; no pass/fail.

- ingest throughput (papers/s) of seeds/ into a fresh data dir, model load excluded, next to plain
  sentence-transformers encoding of the same texts (the baseline);
- re-ingest of unchanged seeds;
- search p50/p95 and extractive ask p50 (warm, over the eval questions);
- cold start of `rag ask` (process start to answer).
Usage: python bench/benchmark.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.dataset import load_questions  # noqa: E402
from rag import Assistant, Settings  # noqa: E402
from rag.chunking import chunk_paper  # noqa: E402
from rag.embedders import embedder_id, make_embedder  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the questions")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / ".rag")
        model = make_embedder(settings)  # load once: ingest figures exclude model load
        model.get_text_embedding("warm up")
        assistant = Assistant(settings)

        start = time.perf_counter()
        report = assistant.ingest(ROOT / "seeds", progress=False)
        ingest_s = time.perf_counter() - start
        rows.append(("ingest seeds (parse, merge, chunk, embed, index)",
                     f"{report.papers} papers in {ingest_s:.1f} s = {report.papers / ingest_s:.1f} papers/s"))

        # Baseline: plain sentence-transformers encoding of the same chunk texts, nothing else.
        texts = [n.get_content(metadata_mode="embed")  # type: ignore[arg-type]
                 for p in assistant.papers()
                 for n in chunk_paper(p, settings.chunk_tokens, settings.chunk_overlap, embedder_id(settings))]
        start = time.perf_counter()
        model._model.encode(texts, batch_size=settings.embed_batch_size)  # type: ignore[attr-defined]
        plain_s = time.perf_counter() - start
        rows.append(("baseline: sentence-transformers encode only",
                     f"{len(texts)} chunks of {report.papers} papers in {plain_s:.1f} s = "
                     f"{report.papers / plain_s:.1f} papers/s (ratio ours/baseline {plain_s / ingest_s:.2f})"))

        start = time.perf_counter()
        again = Assistant(settings).ingest(ROOT / "seeds", progress=False)
        rows.append(("re-ingest unchanged seeds", f"{time.perf_counter() - start:.2f} s ({again.unchanged} unchanged)"))

        questions = [q.question for q in load_questions()]
        assistant.search(questions[0])
        assistant.ask(questions[0])
        search_ms, ask_ms = [], []
        for _ in range(args.repeat):
            for question in questions:
                start = time.perf_counter()
                assistant.search(question)
                search_ms.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                assistant.ask(question, answerer="extractive")
                ask_ms.append((time.perf_counter() - start) * 1000)
        rows.append(("search (warm)", f"p50 {statistics.median(search_ms):.1f} ms, p95 {pct(search_ms, .95):.1f} ms "
                                      f"({len(search_ms)} queries)"))
        rows.append(("extractive ask (warm)", f"p50 {statistics.median(ask_ms):.1f} ms, p95 {pct(ask_ms, .95):.1f} ms"))

        cold = []
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "rag.cli", "--data-dir", str(settings.data_dir), "ask",
                            "What FID did SMaRt reach on ImageNet 64x64?"], check=True, capture_output=True)
            cold.append(time.perf_counter() - start)
        rows.append(("cold start `rag ask` (process start to answer)", f"median {statistics.median(cold):.1f} s"))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
