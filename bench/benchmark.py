"""Speed figures on this machine (quoted in the README). Prints a table; no pass/fail.

- ingest throughput (papers/s) of seeds/ into a fresh data dir, model load excluded, with the default
  embed_precision and with fp32, next to plain sentence-transformers encoding of the same texts (the
  baseline), in interleaved rounds;
- re-ingest of unchanged seeds;
- search p50/p95 and extractive ask p50 (warm, over the eval questions);
- cold start of `rag ask` (process start to answer; bench/cold_ask.py compares the two query paths).
Usage: python bench/benchmark.py [--repeat N] [--ingest-runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cold_ask import QUESTION, print_table, run as run_rag  # noqa: E402
from eval.dataset import load_questions  # noqa: E402
from rag import Assistant, Settings  # noqa: E402
from rag.ingest.merge import build_papers# noqa: E402
from rag.index.chunking import chunk_paper  # noqa: E402
from rag.index.embedders import embedder_id, make_embedder  # noqa: E402
from rag.ingest.loaders import load  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the questions")
    parser.add_argument("--ingest-runs", type=int, default=3, help="rounds of baseline / ingest / fp32 ingest")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / ".rag")
        model = make_embedder(settings)  # load once: ingest figures exclude model load
        fp32 = make_embedder(settings.model_copy(update={"embed_precision": "fp32"}))
        for m in (model, fp32):
            m.torch_model().get_text_embedding("warm up")  # documents are embedded in torch
        # The baseline encodes exactly the chunk texts ingest embeds, in plain sentence-transformers (fp32).
        papers = build_papers(load([ROOT / "seeds"], settings.max_abstract_chars).records)
        texts = [n.get_content(metadata_mode="embed")  # type: ignore[arg-type]
                 for p in papers
                 for n in chunk_paper(p, settings.chunk_tokens, settings.chunk_overlap, embedder_id(settings))]

        # Rounds interleave the three so that this VM's drift hits them alike; medians are reported.
        plain, ours, ours_fp32 = [], [], []
        for i in range(args.ingest_runs):
            start = time.perf_counter()
            model.torch_model()._model.encode(texts, batch_size=settings.embed_batch_size)  # type: ignore[attr-defined]
            plain.append(time.perf_counter() - start)
            for name, precision, times in (("fp32", "fp32", ours_fp32), ("default", settings.embed_precision, ours)):
                run = settings.model_copy(update={"data_dir": Path(tmp) / f"{name}-{i}", "embed_precision": precision})
                start = time.perf_counter()
                report = Assistant(run).ingest(ROOT / "seeds", progress=False)
                times.append(time.perf_counter() - start)
        n = report.papers
        base_s, ours_s, fp32_s = (statistics.median(t) for t in (plain, ours, ours_fp32))
        ratios = [b / o for b, o in zip(plain, ours, strict=True)]  # baseline time / ingest time, per round
        per_round = ", ".join(f"{r:.2f}" for r in ratios)
        rows.append((f"ingest seeds (parse, merge, chunk, embed, index), documents in {model.precision}",
                     (f"{n} papers in {ours_s:.1f} s = {n / ours_s:.1f} papers/s "
                      f"(x{statistics.median(ratios):.2f} baseline; per round {per_round})")))
        rows.append(("ingest seeds, embed_precision=fp32",
                     f"{fp32_s:.1f} s = {n / fp32_s:.1f} papers/s (x{base_s / fp32_s:.2f} baseline)"))
        rows.append(("baseline: sentence-transformers encode only (fp32)",
                     f"{len(texts)} chunks of {n} papers in {base_s:.1f} s = {n / base_s:.1f} papers/s"))
        settings = settings.model_copy(update={"data_dir": Path(tmp) / "default-0"})
        assistant = Assistant(settings)

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

        ask = ["--data-dir", str(settings.data_dir), "ask", QUESTION]
        cold = [run_rag(ask, dict(os.environ))[0] for _ in range(2)]
        rows.append(("cold start `rag ask` (process start to answer)", f"median {statistics.median(cold):.1f} s"))
    print_table(rows)


if __name__ == "__main__":
    main()
