"""`rag eval`: registered through the "rag.commands" entry-point group (rag/cli.py never imports eval)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from eval.dataset import DEFAULT_SET, load_questions

if TYPE_CHECKING:  # `rag` loads this module to build its parser: the assistant's imports wait for a command
    from rag.assistant import Assistant


def register(subparsers) -> None:
    """Add the `eval` subcommand to the `rag` parser."""
    help_text = "measure retrieval, citations, grounding, key facts, abstention and latency on a question set"
    p = subparsers.add_parser("eval", help=help_text, description=help_text + " (format: docs/eval-format.md)")
    p.add_argument("file", nargs="?", default=str(DEFAULT_SET),
                   help="question set, JSONL (default: the bundled set about seeds/)")
    p.add_argument("--answerer", choices=["extractive", "llm"], help="default: RAG_ANSWERER")
    p.add_argument("--report", metavar="DIR", help="write report.json, report.md and PNG plots into DIR")
    p.add_argument("--compare", metavar="OLD_REPORT_JSON", help="show deltas against an earlier report.json")
    p.add_argument("--baselines", action="store_true",
                   help="also run the LlamaIndex starter recipe and BM25-only retrieval on the same questions")
    p.add_argument("--fail-on-gates", action="store_true", help="exit 1 when a quality gate fails")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the summary")
    beir = p.add_argument_group("BEIR datasets (corpus.jsonl, queries.jsonl, qrels/*.tsv; gzip accepted)")
    beir.add_argument("--beir", metavar="DIR", help="evaluate on this BEIR dataset instead of a question set")
    beir.add_argument("--split", help="qrels split (default: the only one, else test)")
    beir.add_argument("--withhold", type=float, default=0.3,
                      help="share of queries whose relevant papers are left out of the corpus (default 0.3; 0: none)")
    beir.add_argument("--seed", type=int, default=0, help="seed of the withheld subset (default 0)")
    beir.add_argument("--limit", type=int, help="evaluate only the first N queries")
    beir.add_argument("--beir-data-dir", metavar="PATH",
                      help="where the corpus is ingested (default <data dir>/beir/<name>-<hash>; reused when unchanged)")
    p.set_defaults(run=run)


def run_beir(assistant: Assistant, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from eval import beir

    if not 0.0 <= args.withhold < 1.0:
        raise ValueError(f"--withhold must be in [0, 1), got {args.withhold}")
    bset = beir.load_beir(Path(args.beir), args.split)
    withheld = beir.withheld_queries(bset, args.withhold, args.seed)
    gone = beir.withheld_docs(bset, withheld)
    data_dir = Path(args.beir_data_dir) if args.beir_data_dir else beir.default_data_dir(bset, assistant.settings, gone)
    print(f"{bset.name}: {len(bset.corpus)} documents, {len(bset.queries)} queries; {len(withheld)} withheld "
          f"({len(gone)} documents left out); index in {data_dir}", file=sys.stderr)
    target, doc_to_paper = beir.open_assistant(bset, data_dir, gone, assistant.settings)
    total = min(len(bset.queries), args.limit or len(bset.queries))
    bar = tqdm(total=total, unit="query", desc="Evaluating", disable=None, file=sys.stderr)
    try:
        report = beir.run_beir_eval(bset, target, doc_to_paper, withheld, answerer=args.answerer, limit=args.limit,
                                    baselines=True, progress=lambda done, _: bar.update(done - bar.n))
    finally:
        bar.close()
    if args.report:
        written = beir.write_report(report, args.report)
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else beir.markdown(report))
    return 0


def run(assistant: Assistant, args: argparse.Namespace) -> int:
    if args.beir:
        return run_beir(assistant, args)
    from eval.report import compare, markdown, write_report
    from eval.runner import run_eval

    questions = load_questions(Path(args.file))
    old = None
    if args.compare:
        try:
            old = json.loads(Path(args.compare).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the report to compare with: {exc}") from None
    judge = None
    if assistant.settings.judge_configured:
        from eval.judge import Judge

        judge = Judge.from_settings(assistant.settings)
    from tqdm import tqdm

    bar = tqdm(total=len(questions), unit="question", desc="Evaluating", disable=None, file=sys.stderr)
    try:
        report = run_eval(assistant, questions, args.answerer, judge=judge, baselines=args.baselines,
                          progress=lambda done, total: bar.update(done - bar.n))
    finally:
        bar.close()
    if old is not None:
        report["comparison"] = compare(old, report)
    if args.report:
        written = write_report(report, args.report)
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else markdown(report))
    failed = [name for name, gate in report["gates"].items() if not gate["passed"]]
    return 1 if failed and args.fail_on_gates else 0
