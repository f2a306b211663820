"""The extractive answerer on hand-made papers: composition, complete citations, trimming, follow-ups."""

from __future__ import annotations

from rag.answering.base import Turn
from rag.answering.extractive import LONG_SENTENCE, ExtractiveAnswerer, trim
from rag.answering.grounding import check_answer
from rag.answering.termstats import TermStats
from rag.models import Citation, Hit, Paper

KELP = Paper(id="k", title="Kelp forests under heat waves", arxiv_id="2401.00001",
             abstract="Kelp forests are declining worldwide. We survey 40 sites over ten years. "
                      "Marine heat waves reduced kelp canopy cover by 60% at warm sites. "
                      "Urchin grazing explained the remaining losses.")
KELP2 = Paper(id="k2", title="Satellite mapping of kelp canopy",
              abstract="We map kelp canopy from satellite images. Marine heat waves cut kelp canopy cover by "
                       "half along the coast in 2015. The maps are public.")
GPU = Paper(id="g", title="Faster matrix multiplication on GPUs",
            abstract="We present a new GPU kernel for sparse matrix multiplication. It is 3x faster than cuSPARSE.")
UNDATED = Paper(id="u", title="A paper with a date only", abstract="Something about sea urchins.", date="2021-05-04")
STATS = TermStats.from_texts(f"{p.title} {p.abstract}" for p in (KELP, KELP2, GPU, UNDATED))


def answer(question: str, papers: list[Paper], history: list[Turn] | None = None):
    hits = [Hit(paper=p, passage=p.abstract, score=1.0 / i) for i, p in enumerate(papers, 1)]
    stream = ExtractiveAnswerer(STATS).generate(question, hits, history or [])
    deltas = []
    try:
        while True:
            deltas.append(next(stream))
    except StopIteration as done:
        draft = done.value
    assert "".join(deltas) == draft.text
    return draft, hits


def test_leads_with_the_answering_sentence_without_title_boilerplate():
    draft, _ = answer("How much did marine heat waves reduce kelp canopy cover at warm sites?", [KELP, GPU])
    first = draft.text.splitlines()[0]
    assert first.startswith("Marine heat waves reduced kelp canopy cover by 60% at warm sites. [1]")
    assert "“" not in draft.text and KELP.title not in draft.text
    assert "[2]" not in draft.text  # the GPU paper carries no evidence: not cited


def test_every_paper_with_evidence_gets_its_own_cited_statement():
    draft, hits = answer("Did marine heat waves reduce kelp canopy cover?", [KELP, KELP2, GPU])
    lines = draft.text.splitlines()
    assert lines[0] == "Two papers report on this."
    assert lines[1].endswith("[1]") and "[2]" not in lines[1]
    assert lines[2].endswith("[2]") and "half along the coast" in lines[2]
    assert set(draft.passages) == {1, 2}
    citations = [Citation(number=n, paper=hits[n - 1].paper, passage=p) for n, p in draft.passages.items()]
    support = check_answer(draft.text, citations)
    assert [s.verdict for s in support] == ["supported"] * len(support) and len(support) >= 2  # lead line no claim


def test_follow_up_does_not_repeat_what_the_conversation_already_said():
    question = "What happened to kelp canopy cover during marine heat waves?"
    first, _ = answer(question, [KELP])
    again, _ = answer("And what else explained the kelp losses at those sites?", [KELP], [Turn(question, first.text)])
    said = {s.strip() for s in first.text.replace("[1]", "\n").splitlines() if s.strip()}
    assert not any(s in again.text for s in said)
    assert "Urchin grazing explained the remaining losses." in again.text


def test_long_sentences_are_cut_to_the_answering_clause():
    filler = " ".join(f"word{i}" for i in range(LONG_SENTENCE))
    sentence = f"We also tried {filler} in the lab; marine heat waves reduced kelp canopy cover by 60%."
    weights = STATS.weights("How much did heat waves reduce kelp canopy?")
    cut = trim(sentence, weights)
    assert cut == "marine heat waves reduced kelp canopy cover by 60%."
    assert cut.rstrip(".") in sentence  # verbatim: grounding still finds it
    assert trim("Short; heat waves reduced kelp.", weights) == "Short; heat waves reduced kelp."


def test_a_date_without_an_arxiv_id_says_no_none():
    draft, _ = answer("When was the paper on sea urchins posted?", [UNDATED])
    assert "2021-05-04" in draft.text and "None" not in draft.text


UNIAD = Paper(id="ua", arxiv_id="2206.03687",
              abstract="Anomaly detection usually trains one model per product category. "
                       "We present UniAD, a unified framework that detects defects of many categories with one model. "
                       "A neighbor masked attention module stops the reconstruction from copying its input.")
SBS = Paper(id="sbs", authors=["Mengya Gao", "Yujun Shen"],
            abstract="Knowledge distillation trains a small student from a large teacher. "
                     "We name our scheme Stage-by-Stage Knowledge Distillation (SSKD), which distills one stage at a "
                     "time. It improves students on ImageNet.")


def test_which_paper_questions_name_the_paper_and_its_naming_sentence():
    draft, hits = answer("Which method detects defects of many product categories and stops the reconstruction "
                         "from copying its input?", [UNIAD, GPU])
    line = draft.text.splitlines()[0]
    assert line.startswith("arXiv:2206.03687: ")  # no title, no authors: named by its arXiv id
    assert "We present UniAD" in line  # the sentence that says what the method is called
    citations = [Citation(number=n, paper=hits[n - 1].paper, passage=p) for n, p in draft.passages.items()]
    assert all(s.verdict == "supported" for s in check_answer(draft.text, citations))


def test_only_questions_asking_which_paper_name_it():
    named, _ = answer("Which paper maps kelp canopy from satellite images?", [KELP2, GPU])
    assert named.text.startswith(f"“{KELP2.title}”: ")
    plain, _ = answer("How much did marine heat waves cut kelp canopy cover along the coast?", [KELP2, GPU])
    assert KELP2.title not in plain.text


def test_a_list_question_by_authors_cites_each_of_their_papers():
    draft, _ = answer("Which papers by Mengya Gao and Yujun Shen propose knowledge distillation schemes?",
                      [SBS, Paper(id="x", authors=["Mengya Gao", "Yujun Shen"],
                                  abstract="Residual knowledge distillation adds an assistant network to KD.")])
    lines = draft.text.splitlines()
    assert lines[0] == "Two papers report on this."
    assert "Stage-by-Stage Knowledge Distillation" in draft.text and "[2]" in draft.text
