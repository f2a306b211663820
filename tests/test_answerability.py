"""The answerability decision: evidence features on hand-made papers, the shipped model, the three outcomes."""

from __future__ import annotations

import json

import pytest

from rag import ABSTAIN_TEXT, LOW_CONFIDENCE_LEAD, Settings
from rag.answering.answerability import (
    ARTEFACT,
    FEATURES,
    AnswerabilityModel,
    asked_measure,
    assess,
    evidence_features,
    missing_terms,
    specific_terms,
)
from rag.answering.termstats import TermStats
from rag.models import Hit, Paper

AURORA = Paper(id="a", title="SMaRt: Improving GANs with Score Matching Regularity",
               abstract="We propose SMaRt, a score matching regularity for GANs. When training Aurora on ImageNet "
                        "64x64, we improve FID from 8.87 to 7.11. The code will be public.")
BIRDS = Paper(id="b", title="Counting songbirds in field recordings",
              abstract="We estimate how many birds sing in a field recording. Our counter reaches 91% accuracy on "
                       "the Dawn Chorus benchmark. It runs on a phone.")
STATS = TermStats.from_texts(f"{p.title} {p.abstract}" for p in (AURORA, BIRDS))


def hit(paper: Paper, similarity: float = 0.5) -> Hit:
    return Hit(paper=paper, passage=paper.abstract, score=1.0, similarity=similarity)


def model(**cut) -> AnswerabilityModel:
    """A hand-set model: confidence rises with sentence coverage only."""
    coef = tuple(4.0 if f == "sentence_coverage" else 0.0 for f in FEATURES)
    return AnswerabilityModel(version="test", features=FEATURES, mean=(0.0,) * len(FEATURES),
                              scale=(1.0,) * len(FEATURES), coef=coef, intercept=-2.0,
                              abstain_below=cut.get("abstain", 0.3), notice_below=cut.get("notice", 0.6))


def test_features_see_coverage_names_and_figures():
    good = evidence_features("What FID does SMaRt improve when training Aurora on ImageNet 64x64?", [hit(AURORA)],
                             0.6, STATS)
    assert set(good) == set(FEATURES)
    assert good["name_missing"] == good["number_missing"] == 0.0 and good["figure_missing"] == 0.0
    assert good["paper_coverage"] > 0.9 and good["rarest_missing"] == 0.0
    # A named model the top paper never mentions, and a figure it never gives.
    bad = evidence_features("How many parameters does the Imagen model have?", [hit(AURORA)], 0.6, STATS)
    assert bad["name_missing"] == 1.0 and bad["figure_missing"] == 1.0
    assert bad["rarest_missing"] > 0.5 and bad["paper_coverage"] < good["paper_coverage"]


def test_specific_terms_and_measures():
    assert specific_terms("What FID does MaskBit reach on ImageNet 256x256?") >= {"fid", "maskbit", "imagenet",
                                                                                    "256x256"}
    assert missing_terms("Does SMaRt help Aurora on CIFAR-10?", AURORA.abstract) == {"cifar10"}
    assert asked_measure("How many frames per second does it render?") == "frame"
    assert asked_measure("What zero-shot FID on COCO?") == "fid"
    assert asked_measure("Why does it work?") is None


def test_outcomes_follow_the_cut_points():
    m = model(abstain=0.3, notice=0.6)
    assert m.outcome(0.1) == "abstained" and m.outcome(0.45) == "low_confidence" and m.outcome(0.9) == "answered"
    assert m.outcome(0.45, abstain_below=0.5) == "abstained"
    assert m.outcome(0.45, notice_below=0.4) == "answered"
    covered = assess("FID Aurora ImageNet", [hit(AURORA)], 0.5, STATS, m)
    uncovered = assess("photosynthesis of kelp", [hit(AURORA)], 0.5, STATS, m)
    assert covered.confidence > 0.85 and covered.outcome == "answered"
    assert uncovered.confidence < 0.2 and uncovered.outcome == "abstained"
    nothing = assess("anything", [], -1.0, STATS, m)
    assert nothing.outcome == "abstained" and nothing.confidence == 0.0


def test_the_shipped_artefact_loads_and_is_calibrated():
    data = json.loads(ARTEFACT.read_text(encoding="utf-8"))
    shipped = AnswerabilityModel.load()
    assert shipped.features == FEATURES and shipped.version == data["version"] == "v1"
    assert 0.0 < shipped.abstain_below <= shipped.notice_below < 1.0
    assert set(data["trained_on"]["sets"]) == {"own", "scifact", "cross"}
    assert all(s > 0 for s in shipped.scale)


def test_an_artefact_for_other_features_is_refused(tmp_path):
    data = json.loads(ARTEFACT.read_text(encoding="utf-8"))
    data["features"] = data["features"][:-1]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="refit it with bench/answerability.py"):
        AnswerabilityModel.load(path)


@pytest.mark.slow
def test_confidence_ranks_answerable_above_unanswerable_on_the_seeds(seeded):
    answerable = seeded.assess("What FID did SMaRt reach on ImageNet 64x64?")
    off_topic = seeded.assess("What is the capital city of Australia?")
    near_topic = seeded.assess("What VQAv2 accuracy does BLIP-2 achieve?")
    assert answerable.outcome == "answered" and answerable.hits[0].paper.title.startswith("SMaRt")
    assert off_topic.outcome == near_topic.outcome == "abstained"
    assert answerable.confidence > max(off_topic.confidence, near_topic.confidence) + 0.3


@pytest.mark.slow
def test_abstention_is_decided_before_the_answerer_runs(seeded, monkeypatch):
    class Exploding:
        name = "llm"

        def generate(self, question, hits, history):
            raise AssertionError("the answerer must not run for an abstention")

    monkeypatch.setattr(seeded, "answerer", lambda name=None: Exploding())
    answer = seeded.ask("What is the capital city of Australia?")
    assert answer.abstained and answer.outcome == "abstained" and answer.text == ABSTAIN_TEXT
    assert answer.confidence is not None and answer.confidence < seeded.answerability.abstain_below


@pytest.mark.slow
def test_cut_points_come_from_settings_when_set(seeded_dir, tmp_path):
    import shutil

    from rag import Assistant

    data = tmp_path / "d"
    shutil.copytree(seeded_dir, data)
    question = "What is the capital city of Australia?"
    never = Assistant(Settings(data_dir=data, abstain_below=0.0, notice_below=1.0)).ask(question)
    assert never.outcome == "low_confidence" and never.text.startswith(LOW_CONFIDENCE_LEAD + "\n")
    assert never.citations and not never.abstained
    always = Assistant(Settings(data_dir=data, abstain_below=1.0)).ask("What FID did SMaRt reach on ImageNet 64x64?")
    assert always.abstained
