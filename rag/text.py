"""Text helpers every layer shares: sentences, word tokens, stemmed terms, named terms, citation marks and
author lists. The lowest module of the package: it imports nothing from ``rag``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import Stemmer

# -- sentences ------------------------------------------------------------------------------------
# A full stop after these is not a sentence end ("e.g. the", "Fig. 3", "et al. show").
_ABBREV = "".join(rf"(?<!\b{re.escape(a)})" for a in ("e.g.", "i.e.", "et al.", "Fig.", "Eq.", "vs.", "cf.", "No.", "Sec.", "resp."))
_BOUNDARY = re.compile(r"(?<=[.!?])" + _ABBREV + r"\s+(?=[A-Z0-9(\[\"“'$\\])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph; never empty strings."""
    text = " ".join(text.split())
    return [s for s in (part.strip() for part in _BOUNDARY.split(text)) if s]


# -- word tokens (matching) -----------------------------------------------------------------------
_LATEX_CMD = re.compile(r"\\(?:textbf|textit|emph|mathrm|mathbf|texttt|text|url)\s*\{([^{}]*)\}")
_LATEX_SYM = {r"\times": "x", r"\%": "%", r"\&": "&", r"\sim": "~", "~": " ", "$": " "}
_TOKEN = re.compile(r"[a-z0-9]+")


def word_tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens with LaTeX markup reduced to its content (for matching, not display)."""
    text = _LATEX_CMD.sub(r"\1", text)
    for symbol, plain in _LATEX_SYM.items():
        text = text.replace(symbol, plain)
    return _TOKEN.findall(text.lower())


def squashed(text: str) -> str:
    """The text's word tokens run together: "CIFAR-10" and "cifar 10" both become "cifar10"."""
    return "".join(word_tokens(text))


def name_keys(text: str) -> set[str]:
    """Every run of 1-3 consecutive word tokens, joined: the keys a name ("CIFAR-10" -> "cifar10") is looked up
    by as a whole word ("imagen" is not found in "ImageNet")."""
    tokens = word_tokens(text)
    return {"".join(tokens[i:i + n]) for n in (1, 2, 3) for i in range(len(tokens) - n + 1)}


# -- stemmed content terms (relevance) ------------------------------------------------------------
_STEM = Stemmer.Stemmer("english")
STOPWORDS = frozenset(
    "a an and are as at be by can could did do does for from has have how i in into is it its of on or "
    "that the their them then there these they this those to was were what when where which who whom whose "
    "why will with would paper papers work collection method approach propose proposed model models use used "
    "using show shows me tell about any some our we you your".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:[.\-][a-z0-9]+)*")


def terms(text: str) -> list[str]:
    """Stemmed content words (the same analysis on questions, sentences and abstracts)."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    return _STEM.stemWords(words)


# -- named terms ----------------------------------------------------------------------------------
# Tokens that name something specific: an inner capital or a digit ("ImageNet", "GPU", "CIFAR-10", "v2").
SPECIFIC = re.compile(r"\b[A-Za-z]*(?:[A-Z][A-Za-z]*[A-Z0-9]|[0-9])[\w\-.]*\b")


# -- citation marks -------------------------------------------------------------------------------
# "[1]", "[1, 3]", "[2-4]": the inside of one bracket group of citation numbers.
CITATION_GROUP = re.compile(r"\[(\s*\d+(?:\s*[,;\-–]\s*\d+)*\s*)\]")


def citation_numbers(group: str) -> list[int]:
    """The numbers of one citation group's inside ("1, 3" -> [1, 3]; "2-4" -> [2, 3, 4])."""
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        bounds = [int(x) for x in re.split(r"\s*[\-–]\s*", part) if x]
        out += list(range(bounds[0], bounds[1] + 1)) if len(bounds) == 2 and 0 < bounds[1] - bounds[0] < 20 else bounds
    return out


# -- people ---------------------------------------------------------------------------------------
def author_list(authors: Sequence[str], limit: int) -> str:
    """The first ``limit`` authors, "et al." for the rest: "A, B et al."."""
    return ", ".join(authors[:limit]) + (" et al." if len(authors) > limit else "")
