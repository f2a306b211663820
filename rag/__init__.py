"""Cited question answering over collections of scientific paper abstracts.

The names below are imported on first use (PEP 562), so `rag` starts without the assistant's own imports
(LlamaIndex, Chroma: ~2 s) until something needs them: a cold `rag ask` loads its query encoder meanwhile.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each public name, and the module it comes from.
_EXPORTS = {
    "ABSTAIN_TEXT": "rag.answering.base", "LOW_CONFIDENCE_LEAD": "rag.answering.base",
    "Assessment": "rag.answering.answerability", "GROUNDING_METHOD": "rag.answering.grounding",
    "AnswerStream": "rag.assistant", "Assistant": "rag.assistant", "Chat": "rag.assistant",
    "Answer": "rag.models", "Citation": "rag.models", "Hit": "rag.models", "IngestReport": "rag.models",
    "Paper": "rag.models", "SentenceSupport": "rag.models", "Source": "rag.models",
    "is_arxiv_id": "rag.ingest.records", "Settings": "rag.settings", "CollectionBusy": "rag.index.writelock",
    "author_list": "rag.text", "citation_numbers": "rag.text", "split_sentences": "rag.text", "word_tokens": "rag.text",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module.__doc__ if name == "GROUNDING_METHOD" else getattr(module, name)
    globals()[name] = value  # once: later lookups do not come here
    return value


if TYPE_CHECKING:
    from rag.answering.answerability import Assessment
    from rag.answering.base import ABSTAIN_TEXT, LOW_CONFIDENCE_LEAD
    from rag.answering.grounding import __doc__ as GROUNDING_METHOD
    from rag.assistant import AnswerStream, Assistant, Chat
    from rag.index.writelock import CollectionBusy
    from rag.ingest.records import is_arxiv_id
    from rag.models import Answer, Citation, Hit, IngestReport, Paper, SentenceSupport, Source
    from rag.settings import Settings
    from rag.text import author_list, citation_numbers, split_sentences, word_tokens
