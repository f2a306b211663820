"""The public Python API on the real seeds with the real default embedder."""

from __future__ import annotations

import pytest

from rag import Answer, Assistant, Settings
from rag.answering.base import ABSTAIN_TEXT, FRAMING


def test_papers_are_merged_records(seeded):
    papers = seeded.papers()
    assert len(papers) == 221
    nd = next(p for p in papers if p.arxiv_id == "2211.12339")
    assert nd.title == "Neural Dependencies Emerging from Learning Massive Categories"
    assert len({s.path for s in nd.sources}) == 4


def test_search_finds_the_paper_first(seeded):
    hits = seeded.search("score matching for GANs", k=5)
    assert hits[0].paper.title == "SMaRt: Improving GANs with Score Matching Regularity"
    assert len({h.paper.id for h in hits}) == len(hits) == 5  # one hit per paper
    assert all(h.passage and h.passage in h.paper.abstract for h in hits)


def test_search_filters_apply_to_both_sides(seeded):
    hits = seeded.search("diffusion models", k=10, year_from=2023)
    assert hits and all(h.paper.year and h.paper.year >= 2023 for h in hits)
    hits = seeded.search("GAN", k=10, year_to=2022, year_from=2022)
    assert hits and all(h.paper.year == 2022 for h in hits)
    by_author = seeded.search("image synthesis", k=10, author="Bolei Zhou")
    assert by_author and all(any("Bolei Zhou" in a for a in h.paper.authors) for h in by_author)
    one = seeded.search("neural networks", k=5, arxiv_id="2211.12339")
    assert [h.paper.arxiv_id for h in one] == ["2211.12339"]
    assert seeded.search("GAN", author="Nobody Atall") == []


def test_ask_fact_gives_exact_figure_with_citation(seeded):
    answer = seeded.ask("What FID did SMaRt reach on ImageNet 64x64?")
    assert isinstance(answer, Answer) and not answer.abstained
    assert answer.answerer == "extractive"
    assert "8.87 to 7.11" in answer.text
    assert answer.citations[0].number == 1
    assert answer.citations[0].paper.title.startswith("SMaRt")
    assert "7.11" in answer.citations[0].passage
    assert "[1]" in answer.text and answer.dropped_citations == []


def test_every_extractive_sentence_is_cited_and_copied(seeded):
    answer = seeded.ask("How does StyleSwin suppress blocking artifacts?")
    assert not answer.abstained and answer.citations
    for line in answer.text.splitlines():
        assert "[" in line or FRAMING.match(line)  # each claim line ends its sentences with a citation
    for citation in answer.citations:
        for sentence in citation.passage.split(". "):
            assert sentence.rstrip(".") in citation.paper.abstract


def test_metadata_questions_use_the_merged_record(seeded):
    authors = seeded.ask("Who wrote TagAlign?")
    assert "Qinying Liu" in authors.text and not authors.abstained
    arxiv = seeded.ask("What is the arXiv id of Neural Dependencies Emerging from Learning Massive Categories?")
    assert "2211.12339" in arxiv.text
    date = seeded.ask("When was the paper on neural dependencies emerging from massive categories posted?")
    assert "2022-11-21" in date.text


def test_off_topic_and_unmentioned_questions_abstain(seeded):
    for question in ("What is the capital city of Australia?", "What VQAv2 accuracy does BLIP-2 achieve?"):
        answer = seeded.ask(question)
        assert answer.abstained and answer.citations == [] and answer.text == ABSTAIN_TEXT


def test_stream_yields_deltas_then_the_answer(seeded):
    stream = seeded.stream("What FID did SMaRt reach on ImageNet 64x64?")
    deltas = list(stream)
    assert deltas and "".join(deltas) == stream.answer.text


def _sentences(text: str) -> set[str]:
    """An answer's claim sentences without their citation marks (framing lines left out)."""
    from rag.answering.grounding import split_claims

    return {s for s, _ in split_claims(text)}


def test_chat_follow_up_refers_to_the_cited_paper(seeded):
    chat = seeded.chat()
    first = chat.ask("What is GeoD, the geometry-aware discriminator for 3D-aware GANs?")
    assert first.citations and first.citations[0].paper.arxiv_id == "2209.15637"
    follow = chat.ask("What does it additionally ask the discriminator to derive?")
    assert follow.citations and follow.citations[0].paper.arxiv_id == "2209.15637"
    assert "geometry" in follow.text and not follow.abstained
    assert not _sentences(follow.text) & _sentences(first.text)  # a new answer, not the previous one again
    chat.reset()
    assert chat.history == []


def test_chat_follow_up_about_the_baseline_does_not_repeat_the_answer(seeded):
    chat = seeded.chat()
    first = chat.ask("What FID did SMaRt reach on ImageNet 64x64?")
    assert "7.11" in first.text
    follow = chat.ask("How does it compare with the baseline it improves?")
    assert not follow.abstained and follow.text != first.text
    assert follow.citations[0].paper.title.startswith("SMaRt")
    assert not _sentences(follow.text) & _sentences(first.text)


def test_an_unrelated_follow_up_is_decided_like_any_question(seeded):
    chat = seeded.chat()
    chat.ask("What is GeoD, the geometry-aware discriminator for 3D-aware GANs?")
    # "its" would once have searched only GeoD's abstract and answered from it without any check.
    unrelated = chat.ask("What is the capital city of Australia and what is its population?")
    assert unrelated.abstained and unrelated.citations == []


def test_a_saved_conversation_continues_after_restore(seeded):
    chat = seeded.chat()
    chat.ask("What is GeoD, the geometry-aware discriminator for 3D-aware GANs?")
    saved = chat.turns()
    other = seeded.chat()
    other.restore([*saved, {"question": 3}, "junk"])  # untrusted storage: malformed turns are skipped
    assert other.turns() == saved
    follow = other.ask("What does it additionally ask the discriminator to derive?")
    assert follow.citations[0].paper.arxiv_id == "2209.15637"


def test_empty_question_is_a_clear_error(seeded):
    with pytest.raises(ValueError, match="empty"):
        seeded.ask("   ")


def test_llm_answerer_without_configuration_is_refused(seeded):
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        seeded.ask("anything about GANs?", answerer="llm")


def test_new_data_dir_has_no_papers(tmp_path):
    assistant = Assistant(Settings(data_dir=tmp_path / "empty"))
    assert assistant.papers() == []
    assert assistant.search("GAN") == []


def test_brackets_copied_from_an_abstract_are_not_citations(tmp_path):
    listing = tmp_path / "refs.txt"
    listing.write_text(
        "Pelican Routing for Sparse Experts\n"
        "Pelican routing assigns tokens to sparse experts with a learned hash, as proposed in [2] and refined "
        "in [3, 4]. It lowers WikiText-103 perplexity from 24.1 to 21.7 at equal compute. We also show that the "
        "router stays stable without auxiliary load-balancing losses on four language modelling benchmarks.\n",
        encoding="utf-8")
    assistant = Assistant(Settings(data_dir=tmp_path / "d"))
    assistant.ingest(listing, progress=False)
    answer = assistant.ask("How does Pelican routing assign tokens to sparse experts?")
    assert not answer.abstained
    assert [c.number for c in answer.citations] == [1] and answer.dropped_citations == []
    assert "as proposed in (2) and refined in (3, 4)" in answer.text


def test_term_statistics_come_from_the_database_and_follow_every_ingest(seeded, tmp_path, monkeypatch):
    from rag.answering.termstats import TermStats

    data = seeded.settings.data_dir
    fresh = Assistant(Settings(data_dir=data))

    def refuse(cls, texts):
        raise AssertionError("counted over the whole collection although the database keeps the counts")

    monkeypatch.setattr(TermStats, "from_texts", classmethod(refuse))
    assert fresh.term_stats.n == 221 and fresh.term_stats.df.get("gan", 0) > 1
    listing = tmp_path / "one.jsonl"
    listing.write_text('{"title": "Kelp Forests Under Heat Waves", "abstract": "Marine heat waves cut kelp canopy '
                       'cover by 60% at warm sites over ten years of surveys along the coast."}\n', encoding="utf-8")
    assert fresh.ingest(listing, progress=False).added == 1
    later = Assistant(Settings(data_dir=data)).term_stats
    monkeypatch.undo()
    full = TermStats.from_texts(f"{p.title or ''} {p.abstract}" for p in Assistant(Settings(data_dir=data)).papers())
    assert later.n == full.n == 222 and dict(later.df.items()) == full.df and later.df["kelp"] == 1
    assert seeded.term_stats.n == 222  # the running assistant follows the other one's ingest
