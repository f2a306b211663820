"""Cited question answering over collections of scientific paper abstracts."""

from rag.answering.answerability import Assessment
from rag.answering.base import ABSTAIN_TEXT, LOW_CONFIDENCE_LEAD
from rag.answering.grounding import __doc__ as GROUNDING_METHOD
from rag.assistant import AnswerStream, Assistant, Chat
from rag.models import Answer, Citation, Hit, IngestReport, Paper, SentenceSupport, Source
from rag.ingest.records import is_arxiv_id
from rag.settings import Settings
from rag.text import author_list, citation_numbers, split_sentences, word_tokens
from rag.index.writelock import CollectionBusy

__all__ = ["ABSTAIN_TEXT", "GROUNDING_METHOD", "LOW_CONFIDENCE_LEAD", "Answer", "AnswerStream", "Assessment", "Assistant", "Chat", "Citation", "CollectionBusy", "Hit",
           "IngestReport", "Paper", "SentenceSupport", "Settings", "Source", "author_list", "citation_numbers",
           "is_arxiv_id", "split_sentences", "word_tokens"]
