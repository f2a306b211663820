"""`rag ui` (the web chat) and `rag mcp` (tools for AI assistants), added to the `rag` command through the
"rag.commands" entry point."""

from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `rag` loads this module to build its parser: the assistant's imports wait for a command
    from rag.assistant import Assistant

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
AUTH_ENV = "RAG_UI_AUTH"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `rag ui` and `rag mcp` to the `rag` command's subparsers."""
    help_text = "open the web chat (ingests seeds/ first when the collection is empty)"
    p = subparsers.add_parser("ui", help=help_text, description=help_text)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; any other needs credentials, see --auth-file)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (needs credentials)")
    p.add_argument("--auth-file", type=Path,
                   help=f"file of user:password lines required to log in (or env {AUTH_ENV}=user:password)")
    p.add_argument("--llm-slots", type=int, default=2, help="LLM answers generated at once (default 2)")
    p.set_defaults(run=run)
    help_text = "serve search, ask and paper lookup to AI assistants (MCP over stdio; never ingests)"
    subparsers.add_parser("mcp", help=help_text, description=help_text).set_defaults(run=run_mcp)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def credentials(auth_file: Path | None, env_value: str | None) -> list[tuple[str, str]]:
    """(user, password) pairs from the auth file and/or RAG_UI_AUTH; raises ValueError on a malformed entry."""
    entries: list[tuple[str, str]] = []
    if env_value:
        entries.append((f"env {AUTH_ENV}", env_value))
    if auth_file is not None:
        try:
            lines = auth_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"cannot read --auth-file {auth_file}: {exc.strerror}") from None
        entries += [(f"{auth_file}:{n}", line.strip()) for n, line in enumerate(lines, 1)
                    if line.strip() and not line.lstrip().startswith("#")]
    pairs = []
    for where, entry in entries:
        user, sep, password = entry.partition(":")
        if not sep or not user.strip() or not password:
            raise ValueError(f"{where}: expected user:password")
        pairs.append((user.strip(), password))
    return pairs


def check_exposure(host: str, share: bool, auth: list[tuple[str, str]]) -> None:
    """Refuse to serve beyond this machine without credentials."""
    if auth or (is_loopback(host) and not share):
        return
    where = "a public share link" if share else f"{host} (not a loopback address)"
    raise ValueError(f"refusing to serve the web chat on {where} without credentials: set {AUTH_ENV}=user:password "
                     "or pass --auth-file with user:password lines")


def run(assistant: Assistant, args: argparse.Namespace) -> int:
    auth = credentials(args.auth_file, os.environ.get(AUTH_ENV))
    check_exposure(args.host, args.share, auth)
    if args.llm_slots < 1:
        raise ValueError("--llm-slots must be at least 1")
    if not assistant.count():
        if SEEDS.is_dir():
            print(f"The collection is empty: ingesting {SEEDS} …", flush=True)
            report = assistant.ingest(SEEDS, progress=None)
            print(f"{report.papers} papers ready ({len(report.failed)} rejected).", flush=True)
        else:
            print("The collection is empty: add abstracts in the 'Add abstracts' tab.", flush=True)
    # gradio takes seconds to import: only now that the checks passed
    from ui.app import launch

    print(f"Web chat on http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    launch(assistant, host=args.host, port=args.port, share=args.share, auth=auth or None, llm_slots=args.llm_slots)
    return 0


def run_mcp(assistant: Assistant, args: argparse.Namespace) -> int:
    # the MCP SDK loads only for this command
    from ui.mcp_server import serve

    serve(assistant)
    return 0
