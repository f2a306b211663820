"""ui.render: answers and papers as inert HTML, cited passages highlighted (no Gradio, no index)."""

from __future__ import annotations

from html.parser import HTMLParser

from rag import Answer, Citation, Hit, IngestReport, Paper, Source
from ui import render

HOSTILE_TITLE = 'Quokka <script>alert(1)</script><img src=x onerror="alert(2)"> Nets'
HOSTILE_ABSTRACT = (
    "We present quokka nets for zebra recognition, a method with a long enough abstract. "
    'It contains <img src=x onerror="alert(3)"> and <script>alert(4)</script> tags. '
    "Read more at [click me](javascript:alert(5)) or https://evil.example/steal and ![x](https://evil.example/p.png). "
    "As shown in prior work [7], quokka nets reach 99.9% accuracy on zebras. "
    "Also **bold** and `code` and $$x^2$$ stay plain text."
)
ALLOWED_TAGS = {"div", "span", "strong", "sup", "a", "blockquote", "mark", "br", "ol", "li", "h3", "h4", "table",
                "thead", "tbody", "tr", "th", "td", "ul", "p", "code"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(fragment: str) -> _Tags:
    parser = _Tags()
    parser.feed(fragment)
    parser.close()
    return parser


def hostile(**changes) -> Paper:
    fields = {"id": "arxiv:2401.00001", "title": HOSTILE_TITLE, "authors": ["Eve <b>Mallory</b>"],
              "abstract": HOSTILE_ABSTRACT, "arxiv_id": "2401.00001", "date": "2024-01-02",
              "sources": [Source(path="up/evil.jsonl", line=1, layout="jsonl",
                                 fields={"title": HOSTILE_TITLE, "abstract": HOSTILE_ABSTRACT})]}
    return Paper(**{**fields, **changes})


def assert_inert(fragment: str) -> _Tags:
    """Only our own tags and attributes; the one kind of link is an arXiv abstract page; Markdown sees raw HTML."""
    assert "\n" not in fragment and fragment.startswith("<div")  # one raw HTML block: Markdown leaves it alone
    parsed = parse(fragment)
    for tag, attrs in parsed.tags:
        assert tag in ALLOWED_TAGS, tag
        assert set(attrs) <= {"class", "href", "target", "rel", "value"}, attrs
        if tag == "a":
            assert attrs["href"].startswith("https://arxiv.org/abs/"), attrs
    for needle in ("javascript:", "](", "<script", "<img", "$$", "**"):
        assert needle not in fragment
    return parsed


def test_hostile_paper_card_is_inert_text():
    card = render.render_citation(Citation(number=1, paper=hostile(), passage="As shown in prior work [7], quokka "
                                                                               "nets reach 99.9% accuracy on zebras."))
    parsed = assert_inert(card)
    text = "".join(parsed.text)
    assert HOSTILE_TITLE in text and "Eve <b>Mallory</b>" in text  # shown, as text
    assert "[click me](javascript:alert(5))" in text and "[7]" in text
    assert [a["href"] for tag, a in parsed.tags if tag == "a"] == ["https://arxiv.org/abs/2401.00001"]


def test_fake_citation_in_an_abstract_is_not_a_card():
    paper = hostile()
    answer = Answer(question="q", text="Quokka nets reach 99.9% accuracy on zebras [1].", answerer="extractive",
                    citations=[Citation(number=1, paper=paper, passage=HOSTILE_ABSTRACT)],
                    hits=[Hit(paper=paper, passage=HOSTILE_ABSTRACT, score=1.0)])
    fragment = render.render_answer(answer)
    parsed = assert_inert(fragment)
    assert fragment.count('class="rag-card"') == 1
    assert [a.get("class") for t, a in parsed.tags if t == "sup"] == ["rag-ref"]
    # an answer whose text carries a bracketed number that no citation backs keeps it as plain text
    fake = answer.model_copy(update={"text": "As shown in prior work [7], quokka nets work [1]."})
    fragment = render.render_answer(fake)
    assert fragment.count('class="rag-card"') == 1 and fragment.count('class="rag-ref"') == 1
    assert "&#91;7&#93;" in fragment


def test_arxiv_links_only_from_well_formed_ids():
    assert render.arxiv_url("2209.15637") == "https://arxiv.org/abs/2209.15637"
    assert render.arxiv_url("hep-th/9901001v2") == "https://arxiv.org/abs/hep-th/9901001v2"
    for bad in (None, "", "javascript:alert(1)", '2209.15637"><script>', "2209.15637 x", "https://evil/2209.15637"):
        assert render.arxiv_url(bad) is None
    card = render.render_citation(Citation(number=2, paper=hostile(arxiv_id='1234.56789"onmouseover=x'),
                                           passage="x"))
    assert "<a " not in card and "onmouseover" not in card


def test_supporting_sentences_are_highlighted_in_context():
    abstract = "First sentence sets the scene. The method reaches 7.11 FID on ImageNet. A third sentence. A fourth one."
    paper = Paper(id="p", title="T", abstract=abstract)
    passage = render.highlight_passage(Citation(number=1, paper=paper, passage="The method reaches 7.11 FID on "
                                                                               "ImageNet."))
    assert passage == ("First sentence sets the scene. <mark>The method reaches 7.11 FID on ImageNet.</mark> "
                       "A third sentence. …")
    # a record answer (authors) marks the record field, the abstract's start gives context
    record = render.highlight_passage(Citation(number=1, paper=paper, passage="Ada Lovelace, Alan Turing"))
    assert record.startswith("<mark>Ada Lovelace, Alan Turing</mark>") and "First sentence" in record
    # a whole chunk (LLM answers): the sentence closest to what the answer says with [1]
    chunk = render.highlight_passage(Citation(number=1, paper=paper, passage=abstract),
                                     "It gets 7.11 FID on ImageNet [1]. Other claim [2].")
    assert chunk.count("<mark>") == 1 and "<mark>The method reaches 7.11 FID on ImageNet.</mark>" in chunk


def test_answer_text_keeps_inline_citations_and_cards_carry_metadata():
    paper = Paper(id="arxiv:2209.15637", abstract="We propose GeoD, a geometry-aware discriminator. It works well.",
                  authors=["A. One", "B. Two"], arxiv_id="2209.15637", date="2022-09-30")
    answer = Answer(question="What is GeoD?", text="We propose GeoD, a geometry-aware discriminator. [1]",
                    answerer="extractive",
                    citations=[Citation(number=1, paper=paper, passage="We propose GeoD, a geometry-aware "
                                                                      "discriminator.")])
    fragment = render.render_answer(answer)
    assert_inert(fragment)
    assert '<sup class="rag-ref">&#91;1&#93;</sup>' in fragment
    assert paper.label in "".join(parse(fragment).text)  # no title: first authors and the abstract's start
    assert "A. One, B. Two" in fragment and "2022-09-30" in fragment
    assert 'href="https://arxiv.org/abs/2209.15637"' in fragment and "<mark>We propose GeoD" in fragment


def test_abstention_and_errors_are_labelled():
    abstained = render.render_answer(Answer(question="q", text="The collection does not say.", abstained=True,
                                            answerer="extractive"))
    assert_inert(abstained)
    assert render.ABSTAIN_NOTE in abstained and "rag-card" not in abstained and "rag-abstained" in abstained
    paper = hostile()
    failed = render.render_answer(Answer(question="q", text="No answer: timeout.", answerer="llm",
                                         error="LLM <b>timeout</b>", hits=[Hit(paper=paper, passage="x", score=1)]))
    assert_inert(failed)
    assert "rag-error" in failed and "LLM &lt;b&gt;timeout&lt;/b&gt;" in failed and "Retrieved sources" in failed
    crash = render.render_error("boom <script>")
    assert_inert(crash)
    assert "Error" in crash and "&lt;script&gt;" in crash


def test_questions_and_streamed_text_are_escaped():
    assert_inert(render.render_question("[x](javascript:alert(1)) <img src=x onerror=alert(1)>"))
    streamed = render.render_streaming("line one\nline <two>")
    assert_inert(streamed)
    assert "line one<br>line &lt;two&gt;" in streamed


def test_paper_record_shows_provenance_and_conflicts():
    # A DOI is shown as text, never a link (the only links are arXiv pages); a venue is as untrusted as a title.
    paper = hostile(doi='10.1000/"><script>alert(3)</script>', venue=HOSTILE_TITLE, sources=[
        Source(path="seeds/a.txt", line=3, layout="title-abstract", fields={"title": "Quokka Nets", "abstract": "x"}),
        Source(path="seeds/b.txt", line=10, layout="blocks", fields={"arxiv_id": "2401.00001", "date": "2024-01-02",
                                                                     "title": HOSTILE_TITLE}),
    ])
    fragment = render.render_paper(paper)
    parsed = assert_inert(fragment)
    text = "".join(parsed.text)
    assert "seeds/a.txt:3" in text and "seeds/b.txt:10" in text
    assert "title-abstract" in text and "arxiv_id, date, title" in text
    assert "Conflicts" in text and "Quokka Nets" in text and HOSTILE_TITLE in text  # the two titles disagree
    assert '10.1000/"><script>alert(3)</script>' in text and "doi.org" not in fragment


def test_ingest_report_lists_rejections_with_file_and_line():
    report = IngestReport(added=2, updated=1, unchanged=3, records=7, papers=9,
                          failed=[("/data/uploads/mine-abc.txt:4", "title without an abstract: '<b>x</b>'")],
                          warnings=[("/data/uploads/mine-abc.txt:1", "not UTF-8")])
    fragment = render.render_report(report, {"/data/uploads/mine-abc.txt": "mine.txt"})
    parsed = assert_inert(fragment)
    text = "".join(parsed.text)
    assert "2 added, 1 updated, 3 unchanged, 0 removed, 1 rejected" in text
    assert "mine.txt:4: title without an abstract: '<b>x</b>'" in text and "mine.txt:1: not UTF-8" in text


def test_status_shows_known_fields_only():
    fragment = render.render_status({"papers": 3, "embedder": "local:all-MiniLM-L6-v2", "llm_endpoint": "none",
                                     "llm_api_key": "sk-secret"})
    assert_inert(fragment)
    assert "all-MiniLM-L6-v2" in fragment and "sk-secret" not in fragment


def test_paper_rows_are_plain_text():
    row = render.paper_row(hostile(authors=["A", "B", "C", "D"]))
    assert row == [HOSTILE_TITLE, "A, B, C et al.", "2024", "2401.00001", "arxiv:2401.00001"]


def test_sentences_the_sources_do_not_back_are_flagged_inertly():
    from rag.models import SentenceSupport

    paper = Paper(id="p", title="GeoD", abstract="We propose GeoD, a geometry-aware discriminator for 3D GANs.")
    base = dict(question="q", answerer="llm", citations=[Citation(number=1, paper=paper, passage=paper.abstract)])
    claim = "GeoD reaches FID 3.1 <img src=x onerror=alert(1)>"
    weak = Answer(text=f"{claim} [1]", support=[
        SentenceSupport(sentence=claim, citations=[1], verdict="unsupported", missing=["3.1"])], **base)
    fragment = render.render_answer(weak)
    assert_inert(fragment)
    assert "Not fully backed by the cited sources" in fragment and "unsupported" in fragment and "3.1" in fragment
    fine = Answer(text="We propose GeoD. [1]", support=[
        SentenceSupport(sentence="We propose GeoD.", citations=[1], verdict="supported")], **base)
    assert "Not fully backed" not in render.render_answer(fine)


def test_markdown_escaping_keeps_untrusted_text_inert_but_readable():
    from markdown_it import MarkdownIt

    hostile = f"1. {HOSTILE_TITLE} {HOSTILE_ABSTRACT} www.evil.example a@evil.example | x | ~~y~~ # z"
    escaped = render.escape_markdown(hostile)
    shown = parse(MarkdownIt("commonmark").render(escaped))
    assert [tag for tag, _ in shown.tags] == ["p"]  # one paragraph: no list, link, image, emphasis or HTML
    assert "".join(shown.text).strip() == " ".join(hostile.split())  # and it reads as the source did
    assert "model's (FID): 7.11" == render.escape_markdown("model's   (FID):\n7.11")
    for line in ("- item", "+ item", "2023. A year", "3) three", "==="):
        assert parse(MarkdownIt("commonmark").render(render.escape_markdown(line))).tags == [("p", {})]


def test_doi_links_only_from_well_formed_dois():
    assert render.doi_url("10.5555/wombat.2024") == "https://doi.org/10.5555/wombat.2024"
    assert render.doi_url("10.1000/a b") is None and render.doi_url("javascript:alert(1)") is None
    assert render.doi_url("10.1000/x<script>") is None and render.doi_url(None) is None
