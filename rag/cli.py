"""The `rag` command: ingest, papers, search, ask and chat over the same Assistant the Python API uses.

The assistant's modules (LlamaIndex, Chroma: ~2 s to import) are imported when a command runs, once the query
encoder has started loading beside them, so a cold `rag ask` waits for the longer of the two, not their sum.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, NoReturn

from pydantic import ValidationError

from rag.settings import Settings

if TYPE_CHECKING:
    from rag.assistant import AnswerStream, Assistant
    from rag.models import Answer, Hit, IngestReport, Paper


class UserError(Exception):
    """An error to print as one line, without a traceback."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "answerer", None):
        overrides["answerer"] = args.answerer
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        where = f"bad setting {field} (env RAG_{field.upper()})" if field else "bad settings"
        raise UserError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None


def _reference(number: int, paper: Paper) -> str:
    return f"[{number}] {paper.reference()}"


def _print_answer_tail(answer: Answer) -> None:
    if answer.dropped_citations:
        print(f"\n(removed citation numbers that point at no source: {answer.dropped_citations})")
    weak = [s for s in answer.support if s.verdict != "supported"]
    for s in weak:
        missing = f"; not in the cited sources: {', '.join(s.missing)}" if s.missing else ""
        print(f"(⚠ {s.verdict}: “{s.sentence[:100]}”{missing})")
    if answer.citations:
        print("\nReferences:")
        for c in answer.citations:
            print(_reference(c.number, c.paper))
    elif answer.error and answer.hits:
        print("\nRetrieved sources:")
        for number, hit in enumerate(answer.hits, 1):
            print(_reference(number, hit.paper))
    if answer.confidence is not None:
        print(f"\n(confidence that the collection answers this: {answer.confidence:.2f}, {answer.outcome.replace('_', ' ')})")


def _print_stream(stream: AnswerStream) -> Answer:
    """Print deltas as they come, then the reference list (and the error line, if the LLM failed)."""
    for delta in stream:
        print(delta, end="", flush=True)
    print()
    answer = stream.result()
    _print_answer_tail(answer)
    if answer.error:
        print(f"rag: error: {answer.error}", file=sys.stderr)
    return answer


def _answer_json(answer: Answer) -> str:
    return answer.model_dump_json(indent=2)


def cmd_ingest(assistant: Assistant, args: argparse.Namespace) -> int:
    report: IngestReport = assistant.ingest(*args.paths, progress=False if args.json else None, limit=args.limit,
                                            categories=args.category or ())
    if args.json:
        print(report.model_dump_json(indent=2))
        return 0
    print(f"{report.records} records -> {report.papers} papers: {report.added} added, {report.updated} updated, "
          f"{report.unchanged} unchanged, {report.removed} removed, {len(report.failed)} rejected")
    for where, why in report.warnings:
        print(f"warning: {where}: {why}")
    for where, why in report.failed:
        print(f"rejected: {where}: {why}")
    return 0


def _print_json(items: Sequence[Paper | Hit]) -> int:
    print(json.dumps([item.model_dump() for item in items], indent=2, ensure_ascii=False))
    return 0


def cmd_papers(assistant: Assistant, args: argparse.Namespace) -> int:
    papers = assistant.papers()
    if args.json:
        return _print_json(papers)
    if not papers:
        print("No papers yet: run `rag ingest seeds` (or your own files).")
    for number, paper in enumerate(papers, 1):
        print(_reference(number, paper))
    return 0


def _filters(args: argparse.Namespace) -> dict:
    return {"year_from": args.year_from, "year_to": args.year_to, "author": args.author, "arxiv_id": args.arxiv_id}


def cmd_search(assistant: Assistant, args: argparse.Namespace) -> int:
    hits: list[Hit] = assistant.search(args.query, args.k, **_filters(args))
    if args.json:
        return _print_json(hits)
    if not hits:
        print("No matching papers.")
    for number, hit in enumerate(hits, 1):
        print(f"{_reference(number, hit.paper)}\n    score {hit.score:.4f}: {hit.passage[:240]}…\n")
    return 0


def _print_citations(answer: Answer, args: argparse.Namespace) -> None:
    """The cited papers as BibTeX and/or RIS after the answer (--bib, --ris), ready to paste."""
    for wanted, export in ((args.bib, answer.bibtex), (args.ris, answer.ris)):
        if wanted and answer.citations:
            print("\n" + export().rstrip("\n"))  # RIS ends in "ER  - ": its space is part of the tag


def cmd_ask(assistant: Assistant, args: argparse.Namespace) -> int:
    options = {"k": args.k, **_filters(args)}
    if args.json and (args.bib or args.ris):
        raise UserError("--bib / --ris print text after the answer; --json already gives every cited paper")
    if args.json:
        answer = assistant.ask(args.question, **options)
        print(_answer_json(answer))
        if answer.error:
            print(f"rag: error: {answer.error}", file=sys.stderr)
    else:
        answer = _print_stream(assistant.stream(args.question, **options))
        _print_citations(answer, args)
    return 3 if answer.error else 0


def cmd_chat(assistant: Assistant, args: argparse.Namespace) -> int:
    chat = assistant.chat()
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Chatting with {len(assistant.papers())} papers ({assistant.settings.effective_answerer} answerer). "
              "Empty line or Ctrl-D to quit, /new for a new conversation.")
    while True:
        try:
            question = input("you> " if interactive else "")
        except EOFError:
            return 0
        if not question.strip():
            return 0
        if question.strip() == "/new":
            chat.reset()
            continue
        if args.json:
            print(_answer_json(chat.ask(question, k=args.k)))
            continue
        _print_stream(chat.stream(question, k=args.k))
        print()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Cited answers from collections of paper abstracts.")
    parser.add_argument("--data-dir", help="data directory (default .rag, env RAG_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    p = add("ingest", "read files or folders of abstracts into the index")
    p.add_argument("paths", nargs="+", help="listings (.txt), JSONL/JSON or CSV files, BibTeX (.bib), RIS (.ris) "
                                            "or CSL-JSON (.json) exports, or folders of them")
    p.add_argument("--limit", type=int, help="take at most N records (a slice of a large file; rerun to resume)")
    p.add_argument("--category", action="append", metavar="CAT",
                   help="only records in this arXiv category (cs.CL) or archive (cs); repeatable; JSON Lines "
                        "with a 'categories' field, as in the arXiv metadata snapshot")
    p.set_defaults(run=cmd_ingest)
    add("papers", "list the papers in the catalog").set_defaults(run=cmd_papers)
    for name, arg, help_text, run in (("search", "query", "find the papers most relevant to a query", cmd_search),
                                      ("ask", "question", "answer a question with citations", cmd_ask)):
        p = add(name, help_text)
        p.add_argument(arg)
        p.add_argument("-k", type=int, default=None, help="number of papers (default RAG_TOP_K)")
        p.add_argument("--year-from", type=int)
        p.add_argument("--year-to", type=int)
        p.add_argument("--author", help="keep papers with an author name containing this text")
        p.add_argument("--arxiv-id")
        if name == "ask":
            p.add_argument("--answerer", choices=["auto", "extractive", "llm"])
            p.add_argument("--bib", action="store_true", help="print the cited papers as BibTeX after the answer")
            p.add_argument("--ris", action="store_true", help="print the cited papers as RIS after the answer")
        p.set_defaults(run=run)
    p = add("chat", "a conversation in the terminal (follow-up questions work)")
    p.add_argument("-k", type=int, default=None)
    p.add_argument("--answerer", choices=["auto", "extractive", "llm"])
    p.set_defaults(run=cmd_chat)
    # Other packages (ui, eval) add subcommands through the "rag.commands" entry-point group, so rag/
    # never imports them: each entry point is a function(subparsers) that adds its parser and sets
    # `run=callable(assistant, args) -> int`.
    for plugin in sorted(entry_points(group="rag.commands"), key=lambda e: e.name):
        plugin.load()(sub)
    return parser


def _warm_up(settings: Settings, command: str) -> None:
    """Questions need the local model's query encoder: start opening it (~0.3 s, off the GIL) now, while the
    assistant's modules import."""
    if command in {"ask", "search", "chat"} and settings.embedder == "local" and settings.embed_runtime == "auto":
        from rag.index import onnx_encoder

        onnx_encoder.preload(settings.cache_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `rag` command line; the exit status."""
    return _run(_parser().parse_args(argv))


def console() -> NoReturn:
    """The `rag` executable (and `python -m rag.cli`): main, then the exit.

    After a one-shot command that only reads (ask, search, papers) the interpreter is not torn down: freeing
    the ~1,300 modules of LlamaIndex, Chroma and their dependencies object by object takes ~0.5 s (measured) of
    a cold `rag ask`'s ~2.7 s, and the OS frees the process at once. Output and log handlers are flushed
    first; commands that write (ingest, the servers) and the chat exit the usual way.
    """
    args = _parser().parse_args()
    code = _run(args)
    if args.command in {"ask", "search", "papers"}:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):  # a closed pipe (`rag ask … | head -1`) has nothing to flush to
                stream.flush()
        os._exit(code)
    sys.exit(code)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except UserError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 2
    _warm_up(settings, args.command)
    from rag.assistant import Assistant
    from rag.index.chroma import StoreError
    from rag.index.embedders import EmbedderError
    from rag.index.writelock import CollectionBusy

    try:
        return args.run(Assistant(settings), args)
    except (UserError, ValueError, FileNotFoundError, StoreError, EmbedderError, CollectionBusy) as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    console()
