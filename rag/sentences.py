"""Split abstracts into sentences (for extractive answers and citation passages)."""

from __future__ import annotations

import re

# A full stop after these is not a sentence end ("e.g. the", "Fig. 3", "et al. show").
_ABBREV = "".join(rf"(?<!\b{re.escape(a)})" for a in ("e.g.", "i.e.", "et al.", "Fig.", "Eq.", "vs.", "cf.", "No.", "Sec.", "resp."))
_BOUNDARY = re.compile(r"(?<=[.!?])" + _ABBREV + r"\s+(?=[A-Z0-9(\[\"“'$\\])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph; never empty strings."""
    text = " ".join(text.split())
    return [s for s in (part.strip() for part in _BOUNDARY.split(text)) if s]
