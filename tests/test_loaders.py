"""load() over files and folders, with hostile inputs next to a good listing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from conftest import SEEDS
from rag.ingest.loaders import decode, load
from rag.ingest.records import RecordError
from rag.settings import Settings

LIMIT = Settings().max_abstract_chars

GOOD = [
    ("Counting Birds by Their Songs with Tiny Recurrent Networks",
     "We estimate how many birds sing in a field recording without separating their voices. A tiny recurrent "
     "network listens to overlapping songs and predicts a count, trained only on synthetic mixtures. On forty "
     "hours of real dawn choruses it halves the error of clustering baselines."),
    ("Sparse Attention for Long Legal Documents",
     "Contracts and court rulings often run to hundreds of pages, far beyond the context of standard "
     "transformers. We introduce a sparse attention pattern that follows the section structure of legal text, "
     "so that clauses attend to the definitions they use, and match dense attention with a tenth of the memory."),
    ("Predicting Glacier Retreat from Satellite Time Series",
     "We forecast the retreat of mountain glaciers from two decades of satellite images. A convolutional "
     "recurrent model learns seasonal melt patterns and predicts the ice front five years ahead, improving on "
     "physical models by thirty percent on held-out glaciers in the Alps and the Andes."),
]


def _listing(pairs) -> str:
    return "".join(f"{title}\n{abstract}\n" for title, abstract in pairs)


@pytest.fixture
def folder(tmp_path):
    """A folder with one good listing; tests add hostile files next to it."""
    root = tmp_path / "in"
    root.mkdir()
    (root / "good.txt").write_text(_listing(GOOD), encoding="utf-8")
    return root


def _good_present(loaded, folder):
    good = [r for r in loaded.records if r.path == str(folder / "good.txt")]
    assert [r.title for r in good] == [t for t, _ in GOOD]
    assert [r.abstract for r in good] == [a for _, a in GOOD]


def test_good_listing_alone(folder):
    loaded = load([folder], LIMIT)
    assert loaded.failed == [] and loaded.warnings == []
    assert loaded.files == [str(folder / "good.txt")]
    _good_present(loaded, folder)


def test_hostile_files_are_reported_by_name_and_the_good_listing_is_kept(folder):
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.txt").write_text("  \n\n\t\n")
    rng = random.Random(1234)
    junk = bytes(rng.randrange(256) for _ in range(4096)) + b"\x00\x00" + bytes(rng.randrange(256) for _ in range(512))
    (folder / "junk.bin.txt").write_bytes(junk)
    (folder / "poem.txt").write_text("Roses are red,\nViolets are blue,\nThis is no listing,\nAnd neither are you.\n")
    loaded = load([folder], LIMIT)
    _good_present(loaded, folder)
    assert len(loaded.records) == len(GOOD)
    why = dict(loaded.failed)
    assert set(why) == {f"{folder / name}:1" for name in ("empty.txt", "blank.txt", "junk.bin.txt", "poem.txt")}
    assert why[f"{folder / 'empty.txt'}:1"] == "empty file"
    assert why[f"{folder / 'blank.txt'}:1"] == "empty file"
    assert "binary" in why[f"{folder / 'junk.bin.txt'}:1"]
    assert "not in any known listing layout" in why[f"{folder / 'poem.txt'}:1"]
    assert len(loaded.files) == 5


def test_binary_junk_without_nul_is_reported_not_parsed(folder):
    # Control bytes but no NUL: whatever encoding is guessed, it is not text.
    rng = random.Random(7)
    junk = bytes(rng.choice(list(range(1, 9)) + list(range(14, 32)) + [0x80, 0xFF, 0xFE]) for _ in range(4000))
    (folder / "junk.txt").write_bytes(junk)
    loaded = load([folder], LIMIT)
    _good_present(loaded, folder)
    assert [w for w, _ in loaded.failed] == [f"{folder / 'junk.txt'}:1"]


def test_five_megabyte_line_is_reported_as_too_long_and_other_records_kept(folder):
    huge = ("All work and no play makes a very long abstract. " * 110_000)[:5_000_000]
    pairs = [GOOD[0], ("A Suspiciously Long Paper", huge), GOOD[1], GOOD[2]]
    (folder / "big.txt").write_text(_listing(pairs), encoding="utf-8")
    loaded = load([folder], LIMIT)
    _good_present(loaded, folder)
    big = [r for r in loaded.records if r.path == str(folder / "big.txt")]
    assert [r.title for r in big] == [GOOD[0][0], GOOD[1][0], GOOD[2][0]]
    assert len(loaded.failed) == 1
    where, why = loaded.failed[0]
    assert where == f"{folder / 'big.txt'}:3"
    assert "abstract is 5,000,000 characters" in why and f"limit {LIMIT:,}" in why


def test_five_megabyte_single_line_file_is_reported(folder):
    (folder / "oneline.txt").write_text("no sentence ends here " * 230_000, encoding="utf-8")
    loaded = load([folder], LIMIT)
    _good_present(loaded, folder)
    assert [w for w, _ in loaded.failed] == [f"{folder / 'oneline.txt'}:1"]


def test_five_megabyte_abstract_in_jsonl_is_reported_with_its_line(folder):
    rows = [{"title": GOOD[0][0], "abstract": GOOD[0][1]}, {"title": "Huge", "abstract": "word " * 1_000_000},
            {"title": GOOD[1][0], "abstract": GOOD[1][1]}]
    (folder / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    loaded = load([folder / "rows.jsonl"], LIMIT)
    assert [r.title for r in loaded.records] == [GOOD[0][0], GOOD[1][0]]
    assert [w for w, _ in loaded.failed] == [f"{folder / 'rows.jsonl'}:2"]
    assert "characters (limit" in loaded.failed[0][1]


def test_cp1252_listing_is_decoded_with_a_warning(folder):
    authors = ["Zoë Müller, José Álvarez", "Renée Dubois, François Lefèvre", "Jürgen Weiß, Åsa Öberg"]
    text = "".join(f"{who}\n{abstract} Déjà vu — naïve café.\n" for who, (_, abstract) in zip(authors, GOOD))
    (folder / "legacy.txt").write_bytes(text.encode("cp1252"))
    loaded = load([folder], LIMIT)
    _good_present(loaded, folder)
    assert loaded.failed == []
    assert len(loaded.warnings) == 1
    where, what = loaded.warnings[0]
    assert where == f"{folder / 'legacy.txt'}:1"
    assert "not UTF-8" in what and "cp1252" in what
    legacy = [r for r in loaded.records if r.path == str(folder / "legacy.txt")]
    assert [r.authors for r in legacy] == [
        ["Zoë Müller", "José Álvarez"], ["Renée Dubois", "François Lefèvre"], ["Jürgen Weiß", "Åsa Öberg"],
    ]
    assert all(r.abstract.endswith("Déjà vu — naïve café.") for r in legacy)


@pytest.mark.parametrize(("encoding", "names"), [
    ("cp1250", ["Jiří Dvořák, Petr Novák", "Tomáš Černý, Zuzana Šťastná", "Přemysl Šťáva, Věra Čáslavská"]),
    ("cp1251", ["Иван Петров, Мария Смирнова", "Олег Соколов, Анна Кузнецова", "Пётр Лебедев, Ирина Волкова"]),
])
def test_other_legacy_encodings_are_not_forced_to_cp1252(encoding, names):
    text = "".join(f"{who}\n{abstract}\n" for who, (_, abstract) in zip(names, GOOD))
    decoded, warning = decode(text.encode(encoding), "x.txt")
    assert decoded == text
    assert warning is not None and warning.endswith(f"decoded as {encoding}")


def test_utf8_with_bom_is_not_a_warning(folder):
    (folder / "bom.txt").write_bytes("\ufeff".encode() + _listing(GOOD).encode("utf-8"))
    loaded = load([folder / "bom.txt"], LIMIT)
    assert loaded.warnings == [] and loaded.failed == []
    assert [r.title for r in loaded.records] == [t for t, _ in GOOD]


def test_decode_rejects_nul_bytes():
    with pytest.raises(RecordError, match="binary"):
        decode(b"title\n\x00abstract", "x.txt")
    assert decode("Ærø".encode(), "x.txt") == ("Ærø", None)


def test_missing_path_raises_before_reading_anything(folder):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load([folder, folder / "nope.txt"], LIMIT)


def test_hidden_files_and_folders_and_other_suffixes_are_skipped(folder):
    (folder / ".hidden.txt").write_bytes(b"\x00junk")
    (folder / ".git").mkdir()
    (folder / ".git" / "notes.txt").write_text("not a listing")
    (folder / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    sub = folder / "sub"
    sub.mkdir()
    (sub / "more.txt").write_text(_listing(GOOD[:2] + GOOD[:1]), encoding="utf-8")
    loaded = load([folder], LIMIT)
    assert loaded.failed == []
    assert loaded.files == [str(folder / "good.txt"), str(sub / "more.txt")]
    assert len(loaded.records) == 6


def test_a_hidden_file_named_explicitly_is_read(folder):
    (folder / ".mine.txt").write_text(_listing(GOOD), encoding="utf-8")
    loaded = load([folder / ".mine.txt"], LIMIT)
    assert len(loaded.records) == 3


def test_mixed_formats_in_one_folder(folder):
    (folder / "a.jsonl").write_text(json.dumps({"title": "J", "abstract": GOOD[0][1], "id": "2401.01234"}))
    (folder / "b.csv").write_text(f'title,abstract,id\nC,"{GOOD[1][1]}",7\n')
    (folder / "c.json").write_text(json.dumps([{"title": "A", "abstract": GOOD[2][1]}]))
    loaded = load([folder], LIMIT)
    assert loaded.failed == []
    assert sorted(r.layout for r in loaded.records if r.title in {"J", "C", "A"}) == ["csv", "jsonl", "jsonl"]
    assert {r.title for r in loaded.records if r.layout in {"jsonl", "csv"}} == {"J", "C", "A"}
    assert [r.arxiv_id for r in loaded.records if r.title == "J"] == ["2401.01234"]
    assert [r.arxiv_id for r in loaded.records if r.title == "C"] == [None]


def test_real_seeds_load_without_failures():
    loaded = load([SEEDS], LIMIT)
    assert loaded.failed == [] and loaded.warnings == []
    assert len(loaded.records) == 232
    assert len(loaded.files) == 5


def test_a_listing_date_off_the_calendar_rejects_that_record_only(tmp_path):
    text = ("We study {} with a new method that is simple and fast. Our experiments on three benchmarks show "
            "that the method improves the baseline by a large margin, reaching 80% on the standard test split. "
            "We release the code and models to support further research in this direction.")
    blocks = [f"{text.format(topic)}\n\narXiv:2301.0000{n}\nCreated: {day}"
              for n, (topic, day) in enumerate([("graph search", "2023-01-01"), ("protein folding", "2023-02-30"),
                                                 ("speech recognition", "2023-01-03")])]
    path = tmp_path / "listing.txt"
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    loaded = load([path], 30_000)
    assert [r.date for r in loaded.records] == ["2023-01-01", "2023-01-03"]
    assert len(loaded.failed) == 1
    where, why = loaded.failed[0]
    assert where.startswith(f"{path}:") and "field 'date': not a calendar date: '2023-02-30'" in why


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_decoded(folder, codec):
    rows = "".join(json.dumps({"title": t, "abstract": a}, ensure_ascii=False) + "\n" for t, a in GOOD)
    bom = "" if codec in {"utf-16", "utf-32"} else "\ufeff"  # the bare codecs write their own mark
    (folder / "windows.jsonl").write_bytes((bom + rows).encode(codec))
    loaded = load([folder], LIMIT)
    assert loaded.failed == [] and loaded.warnings == []
    assert [r.title for r in loaded.records if r.path.endswith("windows.jsonl")] == [t for t, _ in GOOD]
    _good_present(loaded, folder)


def test_a_byte_order_mark_over_broken_data_is_that_files_error(folder):
    (folder / "broken.jsonl").write_bytes(b"\xff\xfe" + "{}".encode("utf-16-le") + b"\x00\xd8")  # lone surrogate
    loaded = load([folder], LIMIT)
    assert [(where, msg.split(" (")[0]) for where, msg in loaded.failed] == [
        (f"{folder / 'broken.jsonl'}:1", "starts with a UTF-16 byte-order mark but is not valid UTF-16")]
    _good_present(loaded, folder)


@pytest.mark.parametrize("bomb", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_nested_json_bombs_are_rejected_by_line_and_the_rest_is_kept(folder, bomb):
    good = json.dumps({"title": "Tidal Energy Forecasts", "abstract": GOOD[0][1]})
    (folder / "bomb.json").write_text(bomb, encoding="utf-8")
    (folder / "mixed.jsonl").write_text(good + "\n" + bomb + "\n" + good.replace("Tidal", "Wave") + "\n",
                                        encoding="utf-8")
    loaded = load([folder], LIMIT)
    failed = dict(loaded.failed)
    assert set(failed) == {f"{folder / 'bomb.json'}:1", f"{folder / 'mixed.jsonl'}:2"}
    assert all("nested deeper" in message for message in failed.values())
    assert [r.title for r in loaded.records if r.path.endswith("mixed.jsonl")] == [
        "Tidal Energy Forecasts", "Wave Energy Forecasts"]
    _good_present(loaded, folder)


def test_any_exception_reading_one_file_is_that_files_rejection(folder, monkeypatch):
    import rag.ingest.loaders as loaders

    real = loaders.parse_text

    def explode_on_one(text, path):
        if path.endswith("cursed.txt"):
            raise MemoryError("parser ran out of memory")
        return real(text, path)

    (folder / "cursed.txt").write_text(_listing(GOOD), encoding="utf-8")
    monkeypatch.setattr(loaders, "parse_text", explode_on_one)
    loaded = load([folder], LIMIT)
    assert loaded.failed == [(f"{folder / 'cursed.txt'}:1", "could not be read (MemoryError: parser ran out of memory)")]
    _good_present(loaded, folder)


def test_one_file_named_in_two_spellings_is_one_source(folder, monkeypatch):
    monkeypatch.chdir(folder)
    (folder / "sub").mkdir()
    plain = load([folder / "good.txt"], LIMIT)
    dotted = load([Path("./sub/../good.txt")], LIMIT)
    assert dotted.files == ["good.txt"] and {r.path for r in dotted.records} == {"good.txt"}
    assert load([Path("good.txt")], LIMIT).files == dotted.files
    assert [r.abstract for r in plain.records] == [r.abstract for r in dotted.records]
