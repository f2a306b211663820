"""Author lists in either order, and telling them from titles."""

from __future__ import annotations

import pytest

from rag.ingest.authors import normalize_authors, parse_first_last, parse_last_first


def test_last_first_list_from_the_seeds_including_hyphenated_given_name():
    line = "Xia, Mengfei, Shen, Yujun, Yang, Ceyuan, Yi, Ran, Wang, Wenping, Liu, Yong-jin"
    assert parse_last_first(line) == [
        "Mengfei Xia", "Yujun Shen", "Ceyuan Yang", "Ran Yi", "Wenping Wang", "Yong-jin Liu",
    ]
    # A "Last, First" list is not also taken for a "First Last" one.
    assert parse_first_last(line) is None


def test_last_first_single_author_and_trailing_comma():
    assert parse_last_first("Shen, Yujun") == ["Yujun Shen"]
    assert parse_last_first("Shen, Yujun, Liu, Yong-jin,") == ["Yujun Shen", "Yong-jin Liu"]


def test_last_first_with_and_separator_and_particles():
    assert parse_last_first("Gu, Jinjin and Shen, Yujun") == ["Jinjin Gu", "Yujun Shen"]
    assert parse_last_first("Beethoven, Ludwig van, Silva, Carlos da") == ["Ludwig van Beethoven", "Carlos da Silva"]


def test_last_first_rejects_odd_part_count_and_lines_without_commas():
    assert parse_last_first("Shen, Yujun, Liu") is None
    assert parse_last_first("Yujun Shen") is None


def test_first_last_lists():
    assert parse_first_last("Jinjin Gu, Yujun Shen, Bolei Zhou") == ["Jinjin Gu", "Yujun Shen", "Bolei Zhou"]
    assert parse_first_last("Mengya Gao, Yujun Shen, Quanquan Li, Chen Change Loy") == [
        "Mengya Gao", "Yujun Shen", "Quanquan Li", "Chen Change Loy",
    ]
    assert parse_first_last("Ludwig van Beethoven, Carlos da Silva") == ["Ludwig van Beethoven", "Carlos da Silva"]
    assert parse_first_last("Ruili Feng, Zheng-Jun Zha") == ["Ruili Feng", "Zheng-Jun Zha"]
    # "First Last" lists are not read as "Last, First" pairs.
    assert parse_last_first("Jinjin Gu, Yujun Shen, Bolei Zhou, Ceyuan Yang") is None


@pytest.mark.parametrize("line", [
    "Jinjin Gu, Yujun Shen and Bolei Zhou",
    "Jinjin Gu, Yujun Shen, and Bolei Zhou",
    "Jinjin Gu; Yujun Shen & Bolei Zhou",
])
def test_first_last_and_separators(line):
    assert parse_first_last(line) == ["Jinjin Gu", "Yujun Shen", "Bolei Zhou"]


def test_first_last_two_authors_joined_by_and():
    assert parse_first_last("Jinjin Gu and Yujun Shen") == ["Jinjin Gu", "Yujun Shen"]
    assert parse_first_last("Jinjin Gu") is None  # one name is not a list


@pytest.mark.parametrize("title", [
    "Image Generation, Editing, and Synthesis with GANs",
    "GANs, Transformers, and Diffusion Models: A Survey",
    "State-of-the-Art Transformer Models for Image Super-Resolution: Techniques, Challenges, and Applications",
    "TransFusion: Generating Long, High Fidelity Time Series using Diffusion Models with Transformers",
    "UniMuMo: Unified Text, Music and Motion Generation",
    "Progressive Growing of GANs for Improved Quality, Stability, and Variation",
    "A cost-effective method for improving and re-purposing large, pre-trained GANs by fine-tuning",
    "Deep Generative Modelling: A Comparative Review of VAEs, GANs, Normalizing Flows, Energy-Based Models",
    "Scaling to 1024, 2048 and Beyond",
])
def test_titles_with_commas_are_not_author_lists(title):
    assert parse_last_first(title) is None
    assert parse_first_last(title) is None


def test_normalize_authors_from_a_list_collapses_whitespace_and_drops_empties():
    assert normalize_authors(["  Yujun   Shen ", "", "Bolei\tZhou"]) == ["Yujun Shen", "Bolei Zhou"]
    assert normalize_authors([]) == []


def test_normalize_authors_from_strings_in_either_order():
    assert normalize_authors("Xia, Mengfei, Shen,  Yujun") == ["Mengfei Xia", "Yujun Shen"]
    assert normalize_authors(" Jinjin Gu,\nYujun Shen  and Bolei Zhou ") == ["Jinjin Gu", "Yujun Shen", "Bolei Zhou"]
    assert normalize_authors("Shen, Yujun") == ["Yujun Shen"]
    assert normalize_authors("") == []
    assert normalize_authors("   ") == []


def test_normalize_authors_keeps_unrecognised_names_as_given():
    # Neither order fits (a single-word name, an affiliation): the parts are kept, not dropped or reordered.
    assert normalize_authors("Plato") == ["Plato"]
    assert normalize_authors("Yujun Shen (CUHK), Bolei Zhou") == ["Yujun Shen (CUHK)", "Bolei Zhou"]
