"""`rag eval`: registered through the "rag.commands" entry-point group (rag/cli.py never imports eval)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eval.dataset import DEFAULT_SET, load_questions
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
    p.set_defaults(run=run)


def run(assistant: Assistant, args: argparse.Namespace) -> int:
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
