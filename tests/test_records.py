"""arXiv ids, dates, record validation and the JSONL / JSON / CSV readers."""

from __future__ import annotations

import json

import pytest

from rag.ingest.records import (
    RawRecord,
    RecordError,
    from_mapping,
    normalize_arxiv_id,
    normalize_date,
    parse_csv,
    parse_jsonl,
    validate,
)

ABSTRACT_A = (
    "This work presents two astonishing findings on neural networks learned for large-scale image "
    "classification. Neural dependencies exist not only within a single model, but even between two "
    "independently learned models, regardless of their architectures."
)
ABSTRACT_B = (
    "We propose a lightweight recurrent counter that attends to one object at a time in cluttered scenes, "
    "and show that it generalises to scenes with many more objects than were seen during training."
)
ABSTRACT_C = (
    "Bird song varies across valleys; we record forty hours of audio in three valleys and find that dialects "
    "drift faster where the forest is denser, which suggests that habitat shapes how songs are learned."
)


# --- arXiv ids ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("2211.12339", "2211.12339"),  # 5 digits from 2015
    ("1501.00001", "1501.00001"),
    ("1412.3456", "1412.3456"),  # 4 digits until 2014
    ("0704.0001", "0704.0001"),
    ("arXiv:2211.12339v2", "2211.12339"),
    ("arXiv: 2211.12339", "2211.12339"),
    ("2211.12339v12", "2211.12339"),
    ("https://arxiv.org/abs/2211.12339", "2211.12339"),
    ("https://arxiv.org/abs/2211.12339v3", "2211.12339"),
    ("https://arxiv.org/pdf/2211.12339v3.pdf", "2211.12339"),
    ("hep-th/9901001", "hep-th/9901001"),
    ("hep-th/9901001v2", "hep-th/9901001"),
    ("https://arxiv.org/abs/hep-th/9901001", "hep-th/9901001"),
    ("math.AG/0601001", "math.AG/0601001"),
    ("  2211.12339  ", "2211.12339"),
])
def test_normalize_arxiv_id(value, expected):
    assert normalize_arxiv_id(value) == expected


@pytest.mark.parametrize("value", [None, "", "   "])
def test_normalize_arxiv_id_empty_is_none(value):
    assert normalize_arxiv_id(value) is None


@pytest.mark.parametrize("value", [
    "not-an-id",
    "12345",
    "2211.1233",  # a 2022 id has five digits
    "2211.123456",  # ... not six: never silently cut to 2211.12345
    "1412.34567",  # a 2014 id has four digits
    "hep-th/99010",
])
def test_normalize_arxiv_id_junk_raises_naming_the_value(value):
    with pytest.raises(RecordError, match="not an arXiv id") as info:
        normalize_arxiv_id(value)
    assert repr(value) in str(info.value)


# --- dates ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("2022-11-21", "2022-11-21"),
    ("2024-02-29", "2024-02-29"),
    ("2022-11-21T10:42:00Z", "2022-11-21"),
    (" 2022-11-21 ", "2022-11-21"),
    ("2022-11", "2022-11"),
    ("2022", "2022"),
    (None, None),
    ("", None),
])
def test_normalize_date(value, expected):
    assert normalize_date(value) == expected


@pytest.mark.parametrize("value", ["21/11/2022", "yesterday", "Nov 2022", "22-11-21", "2022-13-45", "2023-02-29",
                                   "2022-00"])
def test_normalize_date_junk_raises_naming_the_value(value):
    with pytest.raises(RecordError, match="not a (calendar )?(date|month)") as info:
        normalize_date(value)
    assert repr(value) in str(info.value)


# --- validate ------------------------------------------------------------------------------------------

def _record(abstract: str, **fields) -> RawRecord:
    return RawRecord(path="f.txt", line=3, layout="test", abstract=abstract, **fields)


def test_validate_collapses_whitespace_and_empty_fields():
    record = validate(_record("  " + ABSTRACT_A.replace(" ", "  \n", 3), title="  A   title ", comment="   "), 5000)
    assert record.abstract == ABSTRACT_A
    assert record.title == "A title"
    assert record.comment is None
    assert record.where == "f.txt:3"


@pytest.mark.parametrize("abstract", ["", "   \n\t "])
def test_validate_rejects_missing_abstract(abstract):
    with pytest.raises(RecordError, match="no abstract"):
        validate(_record(abstract), 5000)


def test_validate_rejects_too_long_abstract_with_its_length():
    with pytest.raises(RecordError, match=r"abstract is 6,000 characters \(limit 5,000\)"):
        validate(_record("word " * 1199 + "words"), 5000)
    # Exactly at the limit is fine.
    assert validate(_record("x" * 4990 + " a b c d e f g h"), 5006).abstract.startswith("xxx")


def test_validate_rejects_too_short_abstract():
    with pytest.raises(RecordError, match="fewer than 8 words"):
        validate(_record("Only seven words are in this abstract"), 5000)
    assert validate(_record("Exactly eight words are in this short abstract"), 5000)


def test_validate_rejects_overlong_title():
    with pytest.raises(RecordError, match="title is 501 characters"):
        validate(_record(ABSTRACT_A, title="t" * 501), 5000)


# --- JSONL / JSON --------------------------------------------------------------------------------------

def _dump_row(**over) -> dict:
    """A record shaped like the arXiv metadata dump (Kaggle arxiv-metadata-oai-snapshot.json)."""
    row = {
        "id": "2211.12339",
        "submitter": "Ruili Feng",
        "authors": "Ruili Feng, Kecheng Zheng, Kai Zhu, Yujun Shen and Zheng-Jun Zha",
        "title": "Neural Dependencies Emerging from\n  Learning Massive Categories",
        "comments": "Code will be released",
        "journal-ref": None,
        "doi": None,
        "categories": "cs.CV cs.LG",
        "abstract": "  " + ABSTRACT_A.replace(" on ", "\n  on ") + "\n",
        "versions": [{"version": "v1", "created": "Mon, 21 Nov 2022 18:59:59 GMT"}],
        "update_date": "2022-11-22",
        "authors_parsed": [["Feng", "Ruili", ""], ["Zheng", "Kecheng", ""], ["Zhu", "Kai", ""],
                           ["Shen", "Yujun", ""], ["Zha", "Zheng-Jun", ""]],
    }
    row.update(over)
    return row


def test_jsonl_with_arxiv_dump_field_names():
    rows = [_dump_row(), _dump_row(id="hep-th/9901001", abstract=ABSTRACT_B, title="Old style", authors="Doe, Jane")]
    records, failed = parse_jsonl("\n".join(json.dumps(r) for r in rows) + "\n", "dump.jsonl")
    assert failed == []
    assert len(records) == 2
    first = validate(records[0], 5000)
    assert first.arxiv_id == "2211.12339"
    assert first.title == "Neural Dependencies Emerging from Learning Massive Categories"
    assert first.abstract == ABSTRACT_A
    assert first.authors == ["Ruili Feng", "Kecheng Zheng", "Kai Zhu", "Yujun Shen", "Zheng-Jun Zha"]
    assert first.date == "2022-11-22"
    assert first.comment == "Code will be released"
    assert (first.path, first.line, first.layout) == ("dump.jsonl", 1, "jsonl")
    second = records[1]
    assert second.arxiv_id == "hep-th/9901001"
    assert second.authors == ["Jane Doe"]
    assert second.line == 2


def test_jsonl_authors_parsed_is_used_when_authors_is_missing():
    row = _dump_row(authors="")
    records, failed = parse_jsonl(json.dumps(row), "dump.jsonl")
    assert failed == []
    assert records[0].authors == ["Ruili Feng", "Kecheng Zheng", "Kai Zhu", "Yujun Shen", "Zheng-Jun Zha"]


def test_jsonl_one_bad_line_among_good_ones_is_reported_with_file_and_line():
    lines = [
        json.dumps({"title": "One", "abstract": ABSTRACT_A}),
        "",
        '{"title": "Broken", "abstract": "unterminated',
        json.dumps({"title": "Two", "abstract": ABSTRACT_B}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"title": "Bad id", "arxiv_id": "nonsense", "abstract": ABSTRACT_C}),
        json.dumps({"title": "Bad date", "date": "someday", "abstract": ABSTRACT_C}),
        json.dumps({"title": {"nested": 1}, "abstract": ABSTRACT_C}),
        json.dumps({"title": "Three", "abstract": ABSTRACT_C}),
    ]
    records, failed = parse_jsonl("\n".join(lines), "data/papers.jsonl")
    assert [r.title for r in records] == ["One", "Two", "Three"]
    assert [r.line for r in records] == [1, 4, 9]
    where = dict(failed)
    assert set(where) == {f"data/papers.jsonl:{n}" for n in (3, 5, 6, 7, 8)}
    assert where["data/papers.jsonl:3"].startswith("invalid JSON")
    assert "expected a JSON object, got list" in where["data/papers.jsonl:5"]
    assert "arxiv_id" in where["data/papers.jsonl:6"] and "'nonsense'" in where["data/papers.jsonl:6"]
    assert "date" in where["data/papers.jsonl:7"] and "'someday'" in where["data/papers.jsonl:7"]
    assert "'title' must be a string" in where["data/papers.jsonl:8"]


def test_json_array_file():
    rows = [
        {"title": "One", "abstract": ABSTRACT_A, "arxiv_id": "arXiv:2211.12339v1", "authors": ["Ruili Feng"]},
        {"title": "Two", "summary": ABSTRACT_B, "published": "2021-03-04", "venue": "CVPR 2021"},
        "a string, not a paper",
    ]
    records, failed = parse_jsonl("\n  " + json.dumps(rows, indent=2), "papers.json")
    assert [r.title for r in records] == ["One", "Two"]
    assert records[0].arxiv_id == "2211.12339" and records[0].authors == ["Ruili Feng"]
    assert records[1].abstract == ABSTRACT_B and records[1].date == "2021-03-04" and records[1].comment == "CVPR 2021"
    assert len(failed) == 1
    assert failed[0][0].startswith("papers.json:") and "expected a JSON object, got str" in failed[0][1]


def test_broken_json_array_is_reported_not_raised():
    records, failed = parse_jsonl('[{"title": "x",\n "abstract": ]', "broken.json")
    assert records == []
    assert failed == [("broken.json:2", "invalid JSON: Expecting value")]


# --- CSV -----------------------------------------------------------------------------------------------

def test_csv_with_header_and_a_row_with_an_extra_cell():
    text = (
        "title,authors,abstract,arxiv_id,date\n"
        f'One,"Shen, Yujun, Zhou, Bolei","{ABSTRACT_A}",2211.12339,2022-11-21\n'
        f'Two,"Jinjin Gu, Yujun Shen","{ABSTRACT_B}",,,surplus\n'
        f'Three,,"{ABSTRACT_C}",,\n'
    )
    records, failed = parse_csv(text, "papers.csv")
    assert [r.title for r in records] == ["One", "Three"]
    assert records[0].authors == ["Yujun Shen", "Bolei Zhou"]
    assert records[0].arxiv_id == "2211.12339" and records[0].date == "2022-11-21"
    assert records[0].abstract == ABSTRACT_A and records[0].layout == "csv"
    assert records[1].authors == [] and records[1].arxiv_id is None and records[1].line == 4
    assert failed == [("papers.csv:3", "more cells than header columns")]


def test_csv_with_multiline_quoted_abstract():
    head, tail = ABSTRACT_A.split(" classification. ")
    text = f'Title,Abstract\n"One","{head}\nclassification.\n{tail}"\n"Two","{ABSTRACT_B}"\n'
    records, failed = parse_csv(text, "papers.csv")
    assert failed == []
    assert [validate(r, 5000).abstract for r in records] == [ABSTRACT_A, ABSTRACT_B]


def test_csv_without_abstract_column():
    records, failed = parse_csv(f"title,text\nOne,{ABSTRACT_A}\n", "notes.csv")
    assert records == []
    assert failed == [("notes.csv:1", "CSV header has no 'abstract' column")]


def test_tsv_is_read_with_tabs():
    text = f"id\ttitle\tabstract\n1\tOne\t{ABSTRACT_A}\n2\tTwo\t{ABSTRACT_B}\n"
    records, failed = parse_csv(text, "papers.tsv")
    assert failed == []
    assert [(r.title, r.arxiv_id) for r in records] == [("One", None), ("Two", None)]


def test_generic_id_column_is_ignored_not_rejected():
    text = (
        "id,title,abstract\n"
        f'1,One,"{ABSTRACT_A}"\n'
        f'paper-2,Two,"{ABSTRACT_B}"\n'
        f'2211.12339,Three,"{ABSTRACT_C}"\n'
    )
    records, failed = parse_csv(text, "mine.csv")
    assert failed == []
    assert [(r.title, r.arxiv_id) for r in records] == [("One", None), ("Two", None), ("Three", "2211.12339")]
    # The same in JSON, where the id may be a number.
    rows = [{"id": 17, "title": "Four", "abstract": ABSTRACT_A}, {"id": "abc", "title": "Five", "abstract": ABSTRACT_B}]
    records, failed = parse_jsonl("\n".join(json.dumps(r) for r in rows), "mine.jsonl")
    assert failed == []
    assert [(r.title, r.arxiv_id) for r in records] == [("Four", None), ("Five", None)]


def test_explicit_arxiv_column_with_junk_is_rejected_naming_the_field():
    with pytest.raises(RecordError, match="field 'arxiv_id'.*'paper-2'"):
        from_mapping({"arxiv_id": "paper-2", "abstract": ABSTRACT_A}, "x.csv", 2, "csv")
