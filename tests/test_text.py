"""Sentence splitting of abstracts."""

from __future__ import annotations

import pytest

from rag.text import split_sentences


def test_splits_on_sentence_ends():
    assert split_sentences("GANs are hard to train. We fix that! Does it work? Yes.") == [
        "GANs are hard to train.", "We fix that!", "Does it work?", "Yes.",
    ]


@pytest.mark.parametrize("sentence", [
    "We use priors, e.g. GAN inversion, to edit images.",
    "Models (e.g. GANs and VAEs) are compared.",
    "The generator, i.e. the decoder, is frozen.",
    "As shown in Fig. 3 the loss drops quickly.",
    "See Eq. 2 and Sec. 4 for details.",
    "Prior work (Smith et al. 2020) shows it.",
    "Smith et al. Show it too.",
    "FID improves from 8.87 to 7.11 on ImageNet.",
    "Accuracy rose by 2.5% at 0.91 recall.",
    "Our method vs. Theirs is compared.",
    "Results hold (cf. Table 2) across runs.",
])
def test_abbreviations_and_decimals_stay_inside_sentences(sentence):
    text = f"First sentence here. {sentence} Last sentence here."
    assert split_sentences(text) == ["First sentence here.", sentence, "Last sentence here."]


def test_sentences_may_start_with_digits_brackets_quotes_and_latex():
    text = ('It is hard. 3D-aware synthesis helps. (a) One case. [1] Prior art. "Quoted" words. '
            "$x$ is a variable. \\textbf{Bold} claims. “Curly” too.")
    assert split_sentences(text) == [
        "It is hard.", "3D-aware synthesis helps.", "(a) One case.", "[1] Prior art.", '"Quoted" words.',
        "$x$ is a variable.", "\\textbf{Bold} claims.", "“Curly” too.",
    ]


def test_no_split_before_lower_case_or_without_space():
    assert split_sentences("We use ver. two here. The site example.com works.") == [
        "We use ver. two here.", "The site example.com works.",
    ]


def test_whitespace_is_collapsed_and_empty_text_gives_no_sentences():
    assert split_sentences("  One   sentence\nhere.\n\n  Two\there.  ") == ["One sentence here.", "Two here."]
    assert split_sentences("") == []
    assert split_sentences("   \n ") == []
    assert split_sentences("No final stop") == ["No final stop"]


def test_real_abstract_sentence_count():
    abstract = (
        "Existing attempts usually face the problem of coarse alignment, e.g., the vision encoder struggles in "
        "localizing an attribute-specified object. Concretely, given an image and its paired text, we manage to parse "
        "objects (e.g., cat) and attributes (e.g., black) from the description. For instance, when training Aurora on "
        "the ImageNet 64x64 dataset, we manage to improve FID from 8.87 to 7.11. The source code will be made public."
    )
    sentences = split_sentences(abstract)
    assert len(sentences) == 4
    assert sentences[2].endswith("from 8.87 to 7.11.")
    assert " ".join(sentences) == abstract
