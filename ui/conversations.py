"""Past conversations of the web chat, kept in the user's own browser (``gr.BrowserState``): what is stored, the
checks it passes on the way back (the browser's copy is untrusted), the list's labels, and the Markdown export.

Stored shape: ``{"open": id | None, "conversations": [conversation, ...]}``, the latest active first; each
conversation is ``{"id", "title", "started", "updated", "messages", "turns"}``. ``messages`` are the chat's
messages as rendered when answered (each answer with its own source cards); ``turns`` are ``Chat.turns()`` with
``references``: the cited papers' references, taken when the answer was made (the collection may change later).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rag import Answer, Paper
from rag.assistant import Chat
from ui import render

MAX_CONVERSATIONS = 50
# localStorage holds about 5M characters a site and Gradio's encryption (base64) adds a third: stay well below.
MAX_STORED_CHARS = 2_000_000
MAX_TURNS = 200  # per conversation; older exchanges are dropped from the browser's copy
MAX_TEXT = 200_000  # characters of one message, question or answer
MAX_REFERENCES = 100  # per answer
TITLE_CHARS = 80
SECRET_FILE = "ui-browser-secret"
_ID = re.compile(r"[0-9a-f]{6,32}")
_WHEN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")


def empty() -> dict:
    """What a browser stores before its first conversation."""
    return {"open": None, "conversations": []}


def now() -> str:
    """The server's local time to the minute, as the list shows it."""
    return datetime.now().strftime("%Y-%m-%d %H:%M")


@dataclass
class Session:
    """The open conversation of one browser tab: the rag Chat that follow-ups go through, and what the browser keeps."""

    chat: Chat
    id: str = field(default_factory=lambda: secrets.token_hex(6))
    title: str = ""
    started: str = field(default_factory=now)
    references: list[list[dict]] = field(default_factory=list)  # per turn of the Chat, taken when it was answered

    def answered(self, answer: Answer) -> None:
        """Keep the references of the answer the Chat just added as a turn."""
        self.references.append(references(answer))

    def turns(self) -> list[dict]:
        """The Chat's turns, each with its answer's references."""
        refs = self.references
        return [{**turn, "references": refs[i] if i < len(refs) else []} for i, turn in enumerate(self.chat.turns())]

    def record(self, messages: list | None) -> dict:
        """The conversation as the browser stores it."""
        return {"id": self.id, "title": _title(self.title), "started": self.started, "updated": now(),
                "messages": clean_messages(messages), "turns": self.turns()}

    @classmethod
    def reopen(cls, chat: Chat, record: dict) -> Session:
        """A stored conversation (checked by ``load``) continued: follow-ups see its turns."""
        chat.restore(record["turns"])
        return cls(chat, record["id"], record["title"], record["started"],
                   [turn["references"] for turn in record["turns"]])

    def markdown(self) -> str:
        """The conversation as Markdown with its reference list (``to_markdown``)."""
        return to_markdown(self.title, self.started, self.turns())


def references(answer: Answer) -> list[dict]:
    """What the export needs of each paper the answer cites, under the answer's own citation numbers."""
    return [{"number": c.number, "id": c.paper.id, "text": reference_text(c.paper), "arxiv_id": c.paper.arxiv_id,
             "doi": c.paper.doi} for c in answer.citations]


def reference_text(paper: Paper) -> str:
    """``Paper.reference()`` without its link: the export adds links from validated ids only (a record's url is
    whatever the input file said)."""
    return paper.model_copy(update={"url": None, "doi": None}).reference()


# -- the browser's copy, on the way back -----------------------------------------------------------------

def load(value: object) -> tuple[str | None, list[dict]]:
    """The open conversation's id and the conversations a browser sent back: well-formed ones only (the rest are
    skipped), each id once, at most MAX_CONVERSATIONS."""
    value = value if isinstance(value, dict) else {}
    items = value.get("conversations")
    kept: dict[str, dict] = {}
    for item in items[:2 * MAX_CONVERSATIONS] if isinstance(items, list) else []:  # an honest browser sends <= 50
        conversation = _conversation(item)
        if conversation and conversation["id"] not in kept:
            kept[conversation["id"]] = conversation
            if len(kept) == MAX_CONVERSATIONS:
                break
    opened = value.get("open")
    return (opened if isinstance(opened, str) and opened in kept else None), list(kept.values())


def _conversation(item: object) -> dict | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not _ID.fullmatch(item["id"]):
        return None
    messages, turns = clean_messages(item.get("messages")), _turns(item.get("turns"))
    if not messages:
        return None
    title = _title(item.get("title") if isinstance(item.get("title"), str) else turns[0]["question"] if turns else "")
    return {"id": item["id"], "title": title or "Untitled conversation", "started": _when(item.get("started")),
            "updated": _when(item.get("updated")), "messages": messages, "turns": turns}


def clean_messages(value: object) -> list[dict]:
    """Chat messages as ``{"role", "content"}`` with text content; others skipped. The Chatbot renders them with its
    HTML sanitizer on, as when they were first shown."""
    messages = []
    for message in value[-4 * MAX_TURNS:] if isinstance(value, list) else []:
        if isinstance(message, dict) and message.get("role") in ("user", "assistant"):
            content = _text(message.get("content"))
            if content is not None:
                messages.append({"role": message["role"], "content": content})
    return messages[-2 * MAX_TURNS:]


def _text(content: object) -> str | None:
    """A message's content as text: a string, or Gradio's list of text parts."""
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        content = "".join(p for p in parts if isinstance(p, str)) if parts else None
    return content if isinstance(content, str) and len(content) <= MAX_TEXT else None


def _turns(value: object) -> list[dict]:
    turns = []
    for turn in value[-2 * MAX_TURNS:] if isinstance(value, list) else []:
        if not isinstance(turn, dict) or not all(_short(turn.get(key), MAX_TEXT) for key in ("question", "answer")):
            continue
        ids = turn.get("cited_ids")
        turns.append({"question": turn["question"], "answer": turn["answer"],
                      "cited_ids": [i for i in ids if _short(i, 200)][:MAX_REFERENCES] if isinstance(ids, list) else [],
                      "references": _references(turn.get("references"))})
    return turns[-MAX_TURNS:]


def _references(value: object) -> list[dict]:
    refs = []
    for ref in value[:2 * MAX_REFERENCES] if isinstance(value, list) else []:
        number = ref.get("number") if isinstance(ref, dict) else None
        if (type(number) is int and 0 < number < 1000 and _short(ref.get("id"), 200)
                and _short(ref.get("text"), 2000)):
            refs.append({"number": number, "id": ref["id"], "text": ref["text"],
                         "arxiv_id": ref["arxiv_id"] if _short(ref.get("arxiv_id"), 40) else None,
                         "doi": ref["doi"] if _short(ref.get("doi"), 300) else None})
    return refs[:MAX_REFERENCES]


def _short(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _title(text: object) -> str:
    words = " ".join(str(text or "").split())
    return words if len(words) <= TITLE_CHARS else words[:TITLE_CHARS - 1].rstrip() + "…"


def _when(value: object) -> str:
    return value if isinstance(value, str) and _WHEN.fullmatch(value) else ""


# -- the list ---------------------------------------------------------------------------------------------

def put(conversations: list[dict], record: dict) -> list[dict]:
    """``record`` first (the latest active) in place of its older copy; the oldest conversations go beyond
    MAX_CONVERSATIONS or the storage budget."""
    listed = [_fitted(record), *(c for c in conversations if c["id"] != record["id"])]
    kept, total = [], 0
    for conversation in listed[:MAX_CONVERSATIONS]:
        total += _size(conversation)
        if kept and total > MAX_STORED_CHARS:
            break
        kept.append(conversation)
    return kept


def _fitted(conversation: dict) -> dict:
    """A conversation over the whole budget without its oldest exchanges (the browser's copy only)."""
    messages, turns = list(conversation["messages"]), list(conversation["turns"])
    excess = _size(conversation) - MAX_STORED_CHARS
    while excess > 0 and len(messages) > 2:
        excess -= _size(messages[:2]) + (_size(turns[0]) if turns else 0)
        del messages[:2], turns[:1]
    return {**conversation, "messages": messages, "turns": turns}


def _size(value: Any) -> int:
    return len(json.dumps(value))


def remove(conversations: list[dict], conversation_id: str) -> list[dict]:
    return [c for c in conversations if c["id"] != conversation_id]


def find(conversations: list[dict], conversation_id: str | None) -> dict | None:
    return next((c for c in conversations if c["id"] == conversation_id), None)


def choices(conversations: list[dict]) -> list[tuple[str, str]]:
    """The list's (label, id) pairs: first question and date of the last answer."""
    return [(f"{c['title']} · {c['updated'] or c['started']}".removesuffix(" · "), c["id"]) for c in conversations]


# -- export -----------------------------------------------------------------------------------------------

def to_markdown(title: str, started: str, turns: list[dict]) -> str:
    """The conversation as Markdown: each question and answer, then one numbered reference list of the papers cited,
    each once; the answers' [n] follow that list. Untrusted text is escaped (render.escape_markdown)."""
    numbers: dict[str, int] = {}  # paper id -> its number in the reference list
    listed: list[dict] = []
    lines = [f"# {render.escape_markdown(_title(title) or 'Conversation')}", "",
             f"Conversation of {started or 'unknown date'}, exported from rag-abstracts. "
             "Numbers in brackets refer to the references at the end.", ""]
    for n, turn in enumerate(turns, 1):
        local = {}
        for ref in turn["references"]:
            if ref["id"] not in numbers:
                numbers[ref["id"]] = len(listed) + 1
                listed.append(ref)
            local[ref["number"]] = numbers[ref["id"]]
        lines += [f"## {n}. {render.escape_markdown(turn['question'])}", "", _answer(turn["answer"], local), ""]
    if listed:
        lines += ["## References", "", *(f"{n}. {_reference(ref)}" for n, ref in enumerate(listed, 1)), ""]
    return "\n".join(lines)


def _answer(text: str, numbers: dict[int, int]) -> str:
    """An answer's paragraphs, its citation marks renumbered to the reference list (others stay escaped text)."""
    def renumber(match: re.Match[str]) -> str:
        number = numbers.get(int(match.group(1)))
        return f"[{number}]" if number else match.group(0)

    paragraphs = [render.CITATION_MARK.sub(renumber, render.escape_markdown(line)) for line in text.splitlines()]
    return "\n\n".join(p for p in paragraphs if p)


def _reference(ref: dict) -> str:
    link = render.arxiv_url(ref["arxiv_id"]) or render.doi_url(ref["doi"])
    return render.escape_markdown(ref["text"]) + (f". <{link}>" if link else "")


def browser_secret(data_dir: Path) -> str | None:
    """The key Gradio encrypts the browser's copy with, kept in the data dir: with a new one per launch (Gradio's
    default) every browser's conversations would be lost at each restart. It is sent to the browser; on the server
    it guards nothing. None when the data dir cannot hold it (conversations then last until a restart)."""
    path = data_dir / SECRET_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_urlsafe(24))
    except FileExistsError:
        pass  # made by an earlier launch
    except OSError:
        return None
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
