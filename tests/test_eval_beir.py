"""eval/beir.py: BEIR datasets in both layouts, the withheld-evidence protocol, and `rag eval --beir` end to end."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from eval.beir import _auc, load_beir, rationale_hit, withheld_docs, withheld_queries
from rag.cli import main

TOPICS = [
    ("Kelp forests under marine heat waves", "Marine heat waves reduced kelp canopy cover by 60% at warm sites.",
     "Marine heat waves reduce kelp canopy cover."),
    ("Sourdough fermentation microbes", "Lactic acid bacteria dominate sourdough starters after ten days.",
     "Lactic acid bacteria dominate mature sourdough starters."),
    ("Glacier retreat in the Alps", "Alpine glaciers lost a third of their ice volume between 2000 and 2020.",
     "Alpine glaciers lost a third of their ice since 2000."),
    ("Honeybee navigation by polarised light", "Honeybees navigate with polarised skylight on cloudy days.",
     "Honeybees use polarised light to navigate."),
    ("Graphene battery anodes", "Graphene anodes doubled lithium battery charging speed in our cells.",
     "Graphene anodes speed up lithium battery charging."),
    ("Coral bleaching thresholds", "Corals bleached after four weeks above the summer maximum temperature.",
     "Corals bleach after weeks of heat above the summer maximum."),
    ("Deep sea vent bacteria", "Chemosynthetic bacteria at hydrothermal vents fix carbon without sunlight.",
     "Vent bacteria fix carbon without sunlight."),
    ("Urban heat islands and trees", "Street trees cooled city blocks by two degrees on summer afternoons.",
     "Street trees cool city blocks in summer."),
]


def write_dataset(folder: Path, layout: str = "beir", gz: bool = False) -> Path:
    folder.mkdir(parents=True)
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for i, (title, sentence, claim) in enumerate(TOPICS):
        sentences = [sentence, f"We studied this over {i + 3} seasons with field surveys."]
        corpus.append({"_id": f"d{i}", "title": title, "text": " ".join(sentences), "sentences": sentences})
        queries.append({"_id": f"q{i}", "text": claim, "evidence": {f"d{i}": [{"label": "SUPPORT", "sentences": [0]}]}})
        qrels.append(f"q{i}\td{i}\t1")
    corpus.append({"_id": "d-extra", "title": "An unrelated note", "text": "Nothing relevant to any claim here at all."})

    def put(name: str, text: str) -> None:
        path = folder / (name + (".gz" if gz else ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        if gz:
            with gzip.open(path, "wt", encoding="utf-8") as f:
                f.write(text)
        else:
            path.write_text(text, encoding="utf-8")

    put("corpus.jsonl", "".join(json.dumps(r) + "\n" for r in corpus))
    if layout == "beir":
        put("queries.jsonl", "".join(json.dumps(r) + "\n" for r in queries))
        (folder / "qrels").mkdir()
        (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    else:  # SciFact's variant: queries-<split>.jsonl and qrels-<split>.tsv beside the corpus
        put("queries-train.jsonl", "".join(json.dumps(r) + "\n" for r in queries))
        (folder / "qrels-train.tsv").write_text("\n".join(qrels) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("layout,gz", [("beir", False), ("beir", True), ("scifact", True)])
def test_load_beir_in_both_layouts(tmp_path, layout, gz):
    bset = load_beir(write_dataset(tmp_path / "ds", layout, gz))
    assert len(bset.corpus) == len(TOPICS) + 1 and len(bset.queries) == len(TOPICS)
    first = bset.queries[0]
    assert first.relevant == {"d0"} and first.rationales == {"d0": [0]}
    assert bset.corpus["d0"].sentences[0].startswith("Marine heat waves")


def test_bad_input_names_file_and_line(tmp_path):
    folder = write_dataset(tmp_path / "ds")
    lines = (folder / "corpus.jsonl").read_text().splitlines()
    lines[2] = "{not json"
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"corpus.jsonl:3: invalid JSON"):
        load_beir(folder)
    with pytest.raises(ValueError, match="no qrels for split 'dev'"):
        load_beir(write_dataset(tmp_path / "ds2"), "dev")
    with pytest.raises(ValueError, match="not a folder"):
        load_beir(tmp_path / "missing")


def test_withheld_subset_is_fixed_and_sized(tmp_path):
    bset = load_beir(write_dataset(tmp_path / "ds"))
    chosen = withheld_queries(bset, 0.25, seed=0)
    assert chosen == withheld_queries(bset, 0.25, seed=0) and len(chosen) == 2
    assert withheld_queries(bset, 0.25, seed=1) != chosen or len(TOPICS) < 4
    assert withheld_docs(bset, chosen) == {f"d{q[1:]}" for q in chosen}
    assert withheld_queries(bset, 0.0) == set()


def test_rationale_hit_and_auc():
    rationale = ["Marine heat waves reduced kelp canopy cover by 60% at warm sites."]
    assert rationale_hit("Heat waves reduced kelp canopy cover by 60% at warm sites [1].", rationale)
    assert not rationale_hit("Kelp is a brown alga [1].", rationale)
    assert _auc([0.9, 0.8], [0.1, 0.2]) == 1.0 and _auc([0.1], [0.9]) == 0.0 and _auc([0.5], [0.5]) == 0.5
    assert _auc([], [0.1]) is None


@pytest.mark.slow
def test_rag_eval_beir_end_to_end(tmp_path, capsys):
    folder = write_dataset(tmp_path / "ds", "scifact", gz=True)
    out = tmp_path / "report"
    args = ["--data-dir", str(tmp_path / "data"), "eval", "--beir", str(folder), "--withhold", "0.25",
            "--report", str(out), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    records = {r["id"]: r for r in report["queries"]}
    withheld = {i for i, r in records.items() if r["withheld"]}
    assert len(withheld) == 2 and all(not records[i]["answerable"] for i in withheld)
    assert report["setup"]["ingested_papers"] == len(TOPICS) + 1 - 2  # two claims' papers left out
    ours = report["retrieval"]["ours"]
    assert ours["queries"] == len(TOPICS) - 2 and ours["hit@1"] == 1.0  # distinct topics: found first
    assert set(report["retrieval"]) == {"ours", "bm25", "dense"}
    assert report["answers"]["answerable"] == len(TOPICS) - 2
    answered = [r for r in records.values() if r["answerable"] and not r["abstained"]]
    assert answered and all(r["cited_relevant"] for r in answered)  # answers cite the paper the claim is from
    assert report["citations"]["precision"] > 0.5
    assert all(r["confidence"] is not None for r in records.values())
    assert {p.name for p in out.iterdir()} >= {"report.json", "report.md", "retrieval.png", "confidence.png"}
    # A rerun reuses the same data dir (the unchanged corpus is not ingested again).
    assert main(args) == 0
    index = tmp_path / "data" / "beir"
    assert len(list(index.iterdir())) == 1
