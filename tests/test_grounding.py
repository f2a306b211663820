"""The offline attribution check of rag/answering/grounding.py, on hand-made sentences and sources (no model)."""

from __future__ import annotations

from rag.answering.grounding import check_answer, check_sentence, named_terms, numbers, split_claims
from rag.models import Answer, Citation, Paper

ABSTRACT = ("We propose SMaRt, a score matching regularity for GANs. "
            "When training Aurora on ImageNet 64x64, we improve FID from 8.87 to 7.11. "
            "The source code will be made public.")
PAPER = Paper(id="p1", title="SMaRt: Improving GANs with Score Matching Regularity", authors=["Mengfei Xia", "Yujun Shen"],
              abstract=ABSTRACT, arxiv_id="2311.18208", date="2023-11-30", comment="Accepted by ICML 2024")
PASSAGE = "When training Aurora on ImageNet 64x64, we improve FID from 8.87 to 7.11."


class FakeEmbedder:
    """Maps texts to fixed vectors; counts calls (the check must not embed what words already settle)."""

    def __init__(self, vectors: dict[str, list[float]], default: list[float]) -> None:
        self.vectors, self.default, self.calls = vectors, default, 0

    def get_text_embedding_batch(self, texts):
        self.calls += 1
        return [self.vectors.get(t, self.default) for t in texts]


def test_split_claims_attaches_marks_written_after_the_full_stop():
    text = "“SMaRt”: We improve FID to 7.11. [1] The code will be public. [1][2]\nOther: a claim [3]. An uncited one."
    assert split_claims(text) == [
        ("“SMaRt”: We improve FID to 7.11.", [1]),
        ("The code will be public.", [1, 2]),
        ("Other: a claim.", [3]),
        ("An uncited one.", []),
    ]
    assert split_claims("Both [1, 3] and a range [4-5].") == [("Both and a range.", [1, 3, 4, 5])]


def test_numbers_and_names_are_normalised():
    assert numbers("It cost $1,890 and reached 51.1% (FID 7.11) [not a number]") == {"1890", "51.1", "7.11"}
    assert named_terms("Our model beats Imagen on ImageNet and CIFAR-10.") == {"imagen", "imagenet", "cifar10"}


def test_verbatim_copy_is_supported():
    verdict = check_sentence(PASSAGE, [1], [PASSAGE], [PAPER])
    assert verdict.verdict == "supported" and verdict.method == "verbatim"


def test_the_extractive_label_before_a_copied_sentence_is_not_a_claim():
    verdict = check_sentence(f"“{PAPER.title}”: {PASSAGE}", [1], [PASSAGE], [PAPER])
    assert verdict.verdict == "supported" and verdict.method == "verbatim"


def test_a_number_not_in_the_sources_makes_the_sentence_unsupported():
    verdict = check_sentence("Training Aurora on ImageNet 64x64 improves FID from 8.87 to 6.02.", [1], [PASSAGE], [PAPER])
    assert verdict.verdict == "unsupported"
    assert verdict.missing == ["6.02"]


def test_a_faithful_rewording_with_every_figure_is_supported_lexically():
    embedder = FakeEmbedder({}, [1.0, 0.0])
    verdict = check_sentence("SMaRt improves the FID of Aurora on ImageNet 64x64 from 8.87 to 7.11.", [1], [PASSAGE],
                             [PAPER], embedder)
    assert verdict.verdict == "supported" and verdict.method == "lexical"
    assert embedder.calls == 0  # words settled it: no embedding


def test_a_name_missing_from_the_sources_caps_the_verdict_at_partial():
    verdict = check_sentence("SMaRt improves the FID of Aurora and Imagen on ImageNet 64x64 from 8.87 to 7.11.", [1],
                             [PASSAGE], [PAPER])
    assert verdict.verdict == "partial" and "imagen" in verdict.missing


def test_unrelated_wording_is_unsupported_offline_and_embeddings_can_rescue_a_paraphrase():
    claim = "The approach makes generated pictures look noticeably more realistic."
    assert check_sentence(claim, [1], [PASSAGE], [PAPER]).verdict == "unsupported"
    near = FakeEmbedder({claim: [1.0, 0.0]}, [0.9, 0.436])  # cosine ~0.9 with every source sentence
    rescued = check_sentence(claim, [1], [PASSAGE], [PAPER], near)
    assert rescued.verdict == "supported" and rescued.method == "embedding" and near.calls == 1
    far = FakeEmbedder({claim: [1.0, 0.0]}, [0.0, 1.0])
    assert check_sentence(claim, [1], [PASSAGE], [PAPER], far).verdict == "unsupported"


def test_record_facts_are_checked_against_the_merged_record():
    dated = check_sentence(f"“{PAPER.title}” was posted on 2023-11-30 (arXiv:2311.18208).", [1], ["Created: 2023-11-30"],
                           [PAPER])
    assert dated.verdict == "supported"
    wrong = check_sentence(f"“{PAPER.title}” was posted on 2021-01-05.", [1], ["Created: 2023-11-30"], [PAPER])
    assert wrong.verdict == "unsupported" and "2021" in wrong.missing


def test_a_sentence_citing_nothing_is_unsupported():
    verdict = check_sentence("GANs are hard to train.", [], [], [])
    assert verdict.verdict == "unsupported" and verdict.method == "uncited"


def test_check_answer_reads_each_sentence_against_its_own_citations():
    other = Paper(id="p2", title="Another paper", abstract="We study vocoders. HiFi-GAN is 167.9 times faster.")
    citations = [Citation(number=1, paper=PAPER, passage=PASSAGE),
                 Citation(number=2, paper=other, passage="HiFi-GAN is 167.9 times faster.")]
    text = "SMaRt improves FID from 8.87 to 7.11 [1]. HiFi-GAN is 167.9 times faster [1]. HiFi-GAN is 167.9 times faster [2]."
    verdicts = [s.verdict for s in check_answer(text, citations)]
    assert verdicts == ["supported", "unsupported", "supported"]


def test_answer_support_defaults_to_empty():
    answer = Answer(question="q", text="The collection does not say.", abstained=True, answerer="extractive")
    assert answer.support == []


def test_every_extractive_answer_on_the_seeds_is_grounded(seeded):
    for question in ("What FID did SMaRt reach on ImageNet 64x64?", "Who wrote TagAlign?",
                     "At which venue was GeoD accepted?"):
        answer = seeded.ask(question)
        assert answer.support and all(s.verdict == "supported" for s in answer.support), answer.support
    assert seeded.ask("What VQAv2 accuracy does BLIP-2 achieve?").support == []
