"""Quality gates: the offline defaults, evaluated on the real seeds with the bundled question set.

One eval run per module (over a copy of the session's seeded index); each gate is its own test so a
failure names the metric, its value and the threshold. `rag eval` itself (report files, baselines,
comparison) runs once on a small subset.
"""

from __future__ import annotations

import json
import shutil

import pytest

from eval import run_eval
from eval.dataset import DEFAULT_SET, load_questions
from eval.gates import GATES
from rag import Assistant, Settings
from rag.cli import main


@pytest.fixture(scope="module")
def report(seeded_dir, tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:  # the autouse isolation is per test; this runs once per module
        import os

        for name in list(os.environ):
            if name.startswith("RAG_") or name in {"OPENAI_API_KEY", "OPENAI_BASE_URL"}:
                env.delenv(name)
        data = tmp_path_factory.mktemp("eval") / ".rag"
        shutil.copytree(seeded_dir, data)
        return run_eval(Assistant(Settings(data_dir=data)), load_questions(), answerer="extractive")


def test_the_bundled_set_is_complete(report):
    setup = report["setup"]
    assert setup["questions"] >= 80 and setup["unanswerable"] >= 15
    assert set(setup["kinds"]) >= {"fact", "paraphrase", "metadata", "author", "date", "venue", "multi", "unanswerable"}
    assert setup["unmatched_gold"] == []  # every gold entry names a paper of the seeds
    assert setup["answerer"] == "extractive" and setup["grounding"] == "offline"


@pytest.mark.parametrize("gate", list(GATES))
def test_gate(report, gate):
    result = report["gates"][gate]
    assert result["passed"], f"{gate}: {result['metric']} = {result['value']}, needs {result['op']} {result['threshold']}"


def test_every_answer_sentence_is_checked(report):
    answered = [q for q in report["questions"] if not q["abstained"]]
    assert answered and all(q["support"] for q in answered)
    assert report["metrics"]["grounding"]["sentences"] == sum(len(q["support"]) for q in answered)


def test_rag_eval_writes_the_report_with_baselines_and_a_comparison(seeded, tmp_path, capsys):
    subset = tmp_path / "subset.jsonl"
    lines = DEFAULT_SET.read_text(encoding="utf-8").splitlines()
    subset.write_text("\n".join(lines[:6] + lines[-3:]) + "\n", encoding="utf-8")
    data = str(seeded.settings.data_dir)
    first = tmp_path / "first"
    assert main(["--data-dir", data, "eval", str(subset), "--report", str(first)]) == 0
    capsys.readouterr()
    second = tmp_path / "second"
    code = main(["--data-dir", data, "eval", str(subset), "--report", str(second), "--baselines",
                 "--compare", str(first / "report.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert {p.name for p in second.iterdir()} == {"report.json", "report.md", "by_kind.png", "latency.png",
                                                  "baselines.png"}
    report = json.loads((second / "report.json").read_text())
    assert report["setup"]["questions"] == 9 and "comparison" in report
    assert report["comparison"]["metrics"]["retrieval.hit@5"]["delta"] == 0
    starter, bm25 = report["baselines"]["llamaindex-starter"], report["baselines"]["bm25"]
    assert starter["retrieval"]["questions"] == bm25["retrieval"]["questions"] == 6
    assert bm25["retrieval"]["hit@5"] > 0.5
    ours = report["metrics"]["retrieval"]
    for peer in (starter, bm25):  # ours / theirs, as printed
        if peer["retrieval"]["mrr"]:
            assert peer["ratio"]["mrr"] == pytest.approx(ours["mrr"] / peer["retrieval"]["mrr"])
    assert set(starter["ratio"]) >= {"hit@1", "hit@5", "mrr", "ndcg@5", "search_p50"}
    assert "## Baselines" in out and "## Compared with the report of" in out and "## Gates" in out


def test_rag_eval_on_an_empty_collection_is_a_clear_error(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path / "empty"), "eval"]) == 2
    assert "collection is empty" in capsys.readouterr().err
