"""Cited question answering over collections of scientific paper abstracts."""

from rag.assistant import AnswerStream, Assistant, Chat
from rag.models import Answer, Citation, Hit, IngestReport, Paper, Source
from rag.settings import Settings

__all__ = ["Answer", "AnswerStream", "Assistant", "Chat", "Citation", "Hit", "IngestReport", "Paper", "Settings",
           "Source"]
