"""The question-set format (JSONL) and matching gold papers against the catalog.

Each line: {"id", "question", "kind", "gold": [{"arxiv_id"} | {"title"} | {"phrase"}], "key_facts", "answer"}.
``kind`` "unanswerable" marks questions the collection cannot answer (gold is empty).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from rag.models import Paper

DEFAULT_SET = Path(__file__).resolve().parent / "questions.jsonl"


class Question(BaseModel):
    id: str
    question: str
    kind: str
    gold: list[dict[str, str]] = Field(default_factory=list)
    key_facts: list[str] = Field(default_factory=list)
    answer: str = ""

    @property
    def answerable(self) -> bool:
        return self.kind != "unanswerable"


def load_questions(path: Path = DEFAULT_SET) -> list[Question]:
    """Questions from a JSONL file; a bad line raises ValueError naming file and line."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(Question.model_validate(json.loads(line)))
            except (ValueError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None
    return out


def matches(paper: Paper, gold: dict[str, str]) -> bool:
    """Whether a paper is the one a gold entry identifies."""
    if "arxiv_id" in gold:
        return paper.arxiv_id == gold["arxiv_id"]
    if "title" in gold:
        return (paper.title or "").strip().lower() == gold["title"].strip().lower()
    if "phrase" in gold:
        return gold["phrase"] in paper.abstract
    raise ValueError(f"gold entry needs arxiv_id, title or phrase: {gold}")


def gold_ids(question: Question, papers: list[Paper]) -> list[set[str]]:
    """For each gold entry, the ids of catalog papers it identifies."""
    return [{p.id for p in papers if matches(p, g)} for g in question.gold]
