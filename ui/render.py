"""Answers, papers and reports as safe HTML for the web chat (pure functions, testable without Gradio).

Everything that comes from abstracts, uploads, questions or an LLM is untrusted. It goes through
``escape``, which HTML-escapes it and also turns Markdown's punctuation into character references, so the
Markdown renderer in front of the browser cannot make links, images or emphasis out of it either. Every
fragment is one line of HTML starting with a ``<div>``: Markdown treats it as a raw HTML block and leaves
it alone. The only links built are ``https://arxiv.org/abs/<id>`` from a validated arXiv id (and, in an exported
Markdown conversation, ``https://doi.org/<doi>`` from a validated DOI). ``escape_markdown`` does the same for
text in a Markdown document, leaving the characters that are harmless there readable.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from rag import LOW_CONFIDENCE_LEAD, Answer, Citation, IngestReport, Paper, author_list, is_arxiv_id, split_sentences

# html.escape's five characters, plus what Markdown / GFM autolinks / KaTeX would act on.
_ESCAPES = str.maketrans({
    **{c: f"&#{ord(c)};" for c in "[]()*_`~$\\|!#:@{}^"},
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    "\n": "<br>", "\r": "",
})
# Markdown's own syntax (links, images, raw HTML, emphasis, code, tables, math, headings) as character references,
# for Markdown documents: quotes, parentheses and colons stay readable there, but for the colon of "://" and the dot
# of "www.", which GFM renderers would turn into links.
_MD_ESCAPES = str.maketrans({c: f"&#{ord(c)};" for c in "&<>[]*_`~$\\|#@{}^!"})
_MD_AUTOLINK = re.compile(r":(?=//)|(?<=www)\.", re.I)
_MD_BLOCK_START = re.compile(r"^(?:[-+=]|\d{1,9}[.)])")  # a list item or a heading underline at a line's start
CITATION_MARK = re.compile(r"&#91;(\d{1,3})&#93;")  # an "[n]" as escape() and escape_markdown() leave it
_DOI = re.compile(r"10\.\d{4,9}/[-._;()/:A-Za-z0-9]+")  # Crossref's pattern for modern DOIs
_WORD = re.compile(r"[a-z0-9]+")
_CONTEXT = 1  # sentences shown either side of the highlighted ones
ABSTAIN_NOTE = "Not in the collection"


def escape(text: object) -> str:
    """Untrusted text as inert HTML: no tags, no entities of its own, nothing Markdown can act on."""
    return str(text).translate(_ESCAPES)


def escape_markdown(text: object) -> str:
    """Untrusted text as one inert Markdown paragraph (whitespace collapsed): a renderer shows the same characters,
    never a link, image, HTML, emphasis, heading, list or table made of them."""
    inert = _MD_AUTOLINK.sub(lambda m: f"&#{ord(m.group(0))};", " ".join(str(text).split()).translate(_MD_ESCAPES))
    return _MD_BLOCK_START.sub(lambda m: f"{m.group(0)[:-1]}&#{ord(m.group(0)[-1])};", inert)


def doi_url(doi: str | None) -> str | None:
    """``https://doi.org/<doi>`` for a well-formed DOI, else None."""
    if not doi or not _DOI.fullmatch(doi.strip()):
        return None
    return f"https://doi.org/{doi.strip()}"


def arxiv_url(arxiv_id: str | None) -> str | None:
    """``https://arxiv.org/abs/<id>`` for a well-formed arXiv id, else None (never a link from other text)."""
    if not arxiv_id or not is_arxiv_id(arxiv_id):
        return None
    return f"https://arxiv.org/abs/{arxiv_id.strip()}"


def _arxiv_link(paper: Paper) -> str:
    url = arxiv_url(paper.arxiv_id)
    if url is None:
        return ""
    return (f'<a class="rag-arxiv" href="{html.escape(url)}" target="_blank" rel="noopener noreferrer">'
            f"arXiv&#58;{escape(paper.arxiv_id)}</a>")


def _authors(paper: Paper, limit: int = 6) -> str:
    if not paper.authors:
        return ""
    return escape(author_list(paper.authors, limit))


def _when(paper: Paper) -> str:
    return escape(paper.date or (str(paper.year) if paper.year else ""))


def render_question(text: str) -> str:
    """A user's question as shown in the chat."""
    return f'<div class="rag-question">{escape(text)}</div>'


def render_streaming(text: str) -> str:
    """The partial answer while it streams in (citation cards come with the final answer)."""
    return f'<div class="rag-answer rag-streaming">{escape(text)}</div>'


def render_error(message: str) -> str:
    """A failure of one request, shown in that chat only."""
    return f'<div class="rag-answer rag-error"><strong>Error:</strong> {escape(message)}</div>'


def render_answer(answer: Answer) -> str:
    """The final answer: text with inline [n] markers, then one card per cited paper (or the abstention / error)."""
    if answer.error:
        sources = "".join(_hit_line(n, hit.paper) for n, hit in enumerate(answer.hits, 1))
        listed = f'<div class="rag-sources-title">Retrieved sources</div><ol class="rag-hits">{sources}</ol>' \
            if sources else ""
        return (f'<div class="rag-answer rag-error"><strong>Error:</strong> {escape(answer.error)}'
                f'<div class="rag-text">{escape(answer.text)}</div>{listed}</div>')
    if answer.abstained:
        return (f'<div class="rag-answer rag-abstained"><div class="rag-note">{ABSTAIN_NOTE}</div>'
                f'<div class="rag-text">{escape(answer.text)}</div></div>')
    cited = {c.number for c in answer.citations}
    body, note = answer.text, ""
    if answer.outcome == "low_confidence":
        body = body.removeprefix(LOW_CONFIDENCE_LEAD).lstrip("\n")
        note = f'<div class="rag-note rag-low-confidence">{escape(LOW_CONFIDENCE_LEAD)}</div>'
    text = CITATION_MARK.sub(lambda m: _ref(m, cited), escape(body))
    cards = "".join(render_citation(c, answer.text) for c in answer.citations)
    dropped = ""
    if answer.dropped_citations and answer.answerer == "llm":  # extractive text never invents numbers
        numbers = ", ".join(str(n) for n in answer.dropped_citations)
        dropped = f'<div class="rag-dropped">Removed citation numbers that point at no source: {numbers}</div>'
    sources = f'<div class="rag-sources-title">Sources</div><div class="rag-cards">{cards}</div>' if cards else ""
    return (f'<div class="rag-answer">{note}<div class="rag-text">{text}</div>{dropped}{render_support(answer)}'
            f'{_confidence(answer)}{sources}</div>')


def _confidence(answer: Answer) -> str:
    """The answerability confidence, as a small line under the answer."""
    if answer.confidence is None:
        return ""
    return f'<div class="rag-confidence">Confidence that the collection answers this: {answer.confidence:.2f}</div>'


def render_support(answer: Answer) -> str:
    """A warning listing the answer sentences its cited sources do not fully back (Answer.support)."""
    weak = [s for s in answer.support if s.verdict != "supported"]
    if not weak:
        return ""
    items = "".join(
        f'<li><span class="rag-verdict">{escape(s.verdict)}</span>: “{escape(s.sentence)}”'
        + (f' (not in the cited sources: {escape(", ".join(s.missing))})' if s.missing else "") + "</li>"
        for s in weak
    )
    return f'<div class="rag-unsupported">⚠ Not fully backed by the cited sources:<ul>{items}</ul></div>'


def _ref(match: re.Match[str], cited: set[int]) -> str:
    number = int(match.group(1))
    if number not in cited:
        return match.group(0)
    return f'<sup class="rag-ref">&#91;{number}&#93;</sup>'


def _hit_line(number: int, paper: Paper) -> str:
    link = _arxiv_link(paper)
    return f'<li value="{number}">{escape(paper.label)}{" · " + link if link else ""}</li>'


def render_citation(citation: Citation, answer_text: str = "") -> str:
    """A numbered card: label, authors, date, arXiv link and the passage with the supporting sentence marked."""
    paper = citation.paper
    meta = " · ".join(x for x in (_authors(paper), _when(paper), _arxiv_link(paper)) if x)
    return (f'<div class="rag-card"><div class="rag-card-head">'
            f'<span class="rag-num">&#91;{citation.number}&#93;</span> <strong class="rag-label">{escape(paper.label)}'
            '</strong></div>'
            f'<div class="rag-meta">{meta}</div>'
            f'<blockquote class="rag-passage">{highlight_passage(citation, answer_text)}</blockquote></div>')


def highlight_passage(citation: Citation, answer_text: str = "") -> str:
    """The abstract around the supporting sentences, those marked; or the record field an answer came from."""
    sentences = split_sentences(citation.paper.abstract)
    passage = " ".join(citation.passage.split())
    inside = [i for i, s in enumerate(sentences) if s in passage]
    if not inside:
        # A record answer (authors, arXiv id, date): the passage is that field, not abstract text.
        lead = " ".join(sentences[:1])
        return f'<mark>{escape(passage)}</mark><br><span class="rag-context">{escape(lead)}</span>'
    if len(inside) > 2 and len(passage) > 0.5 * len(" ".join(sentences)):
        # A whole chunk (LLM answers): mark the sentence closest to what the answer says with [n].
        inside = [_closest(sentences, inside, _citing(answer_text, citation.number))]
    return highlight(sentences, inside)


def highlight(sentences: list[str], marked: Iterable[int]) -> str:
    """Escaped sentences around the marked ones (one sentence of context each side), marked ones in <mark>."""
    marked = sorted(set(marked))
    if not marked:
        return escape(" ".join(sentences))
    start, end = max(0, marked[0] - _CONTEXT), min(len(sentences), marked[-1] + _CONTEXT + 1)
    parts = [f"<mark>{escape(s)}</mark>" if i in marked else escape(s) for i, s in
             enumerate(sentences[start:end], start)]
    return ("… " if start > 0 else "") + " ".join(parts) + (" …" if end < len(sentences) else "")


def _citing(answer_text: str, number: int) -> str:
    """The sentences of an answer that cite source ``number``."""
    return " ".join(s for s in split_sentences(answer_text) if f"[{number}]" in s) or answer_text


def _closest(sentences: list[str], candidates: list[int], text: str) -> int:
    words = set(_WORD.findall(text.lower()))
    return max(candidates, key=lambda i: (len(words & set(_WORD.findall(sentences[i].lower()))), -i))


# -- the Papers tab -------------------------------------------------------------------------------------

PAPER_COLUMNS = ["Paper", "Authors", "Year", "arXiv id", "id"]


def paper_row(paper: Paper) -> list[str]:
    """One row of the papers table (plain text cells; the table renders them as text)."""
    authors = author_list(paper.authors, 3)
    return [paper.label, authors, str(paper.year or ""), paper.arxiv_id or "", paper.id]


def _shown_path(path: str) -> str:
    try:
        return os.path.relpath(path) if Path(path).is_absolute() and Path(path).is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


def _value(name: str, value: str | list[str] | None) -> str:
    if value is None or value == []:
        return '<span class="rag-missing">none</span>'
    if isinstance(value, list):
        return escape(", ".join(value))
    return escape(value)


def render_paper(paper: Paper) -> str:
    """A paper's merged record, where each field came from (file:line), and the fields its sources disagree on."""
    fields = [("Title", "title", paper.title), ("Authors", "authors", paper.authors), ("Date", "date", paper.date),
              ("arXiv id", "arxiv_id", paper.arxiv_id), ("DOI", "doi", paper.doi), ("Venue", "venue", paper.venue),
              ("Comment", "comment", paper.comment),
              ("Abstract", "abstract", paper.abstract)]
    rows = []
    for title, name, value in fields:
        where = ", ".join(escape(_shown_path(s.where)) for s in paper.sources if name in s.fields)
        rows.append(f"<tr><th>{title}</th><td>{_value(name, value)}</td>"
                    f'<td class="rag-where">{where or "—"}</td></tr>')
    link = _arxiv_link(paper)
    sources = "".join(
        f"<li><code>{escape(_shown_path(s.where))}</code> ({escape(s.layout)}): "
        f"{escape(', '.join(s.fields) or 'no fields')}</li>" for s in paper.sources)
    conflicts = paper.conflicts()
    if conflicts:
        items = "".join(f"<li><strong>{escape(name)}</strong>: "
                        + " | ".join(_value(name, v) for v in values) + "</li>" for name, values in conflicts.items())
        disagree = f"<ul>{items}</ul>"
    else:
        disagree = "<p>The sources agree on every field they give.</p>"
    return (f'<div class="rag-paper"><h3>{escape(paper.label)}</h3>'
            f'<div class="rag-meta">{escape(paper.id)}{" · " + link if link else ""}</div>'
            f'<table class="rag-record"><thead><tr><th>Field</th><th>Merged value</th><th>From (file:line)</th></tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table>'
            f"<h4>Sources ({len(paper.sources)})</h4><ul>{sources}</ul>"
            f"<h4>Conflicts</h4>{disagree}</div>")


# -- ingest report and status ---------------------------------------------------------------------------

def render_report(report: IngestReport, names: Mapping[str, str] | None = None) -> str:
    """Counts, then every rejected and warned-about line with its file:line and reason.

    ``names`` maps stored file paths to the names the user uploaded, for readable locations.
    """
    names = names or {}

    def where(text: str) -> str:
        path, _, line = text.rpartition(":")
        return escape(f"{names.get(path, _shown_path(path))}:{line}" if path else text)

    counts = (f"<strong>{report.records} records → {report.papers} papers in the collection</strong>: "
              f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
              f"{report.removed} removed, {len(report.failed)} rejected")
    rejected = "".join(f"<li><code>{where(w)}</code>: {escape(why)}</li>" for w, why in report.failed)
    warned = "".join(f"<li><code>{where(w)}</code>: {escape(why)}</li>" for w, why in report.warnings)
    return (f'<div class="rag-report"><p>{counts}</p>'
            + (f'<div class="rag-rejected"><h4>Rejected</h4><ul>{rejected}</ul></div>' if rejected else "")
            + (f'<div class="rag-warnings"><h4>Warnings</h4><ul>{warned}</ul></div>' if warned else "")
            + "</div>")


_STATUS_LABELS = {"papers": "Papers", "chunks": "Indexed chunks", "embedder": "Embedder",
                  "embed_precision": "Embedding precision", "store": "Vector store",
                  "answerer": "Default answerer", "llm_endpoint": "LLM endpoint", "llm_model": "LLM model"}


def render_status(status: Mapping[str, object]) -> str:
    """What the assistant runs on. Only known keys are shown, so a key that should never be there is not either."""
    rows = "".join(f"<tr><th>{label}</th><td>{escape(status[key])}</td></tr>"
                   for key, label in _STATUS_LABELS.items() if key in status)
    return f'<div class="rag-status"><table>{rows}</table></div>'
