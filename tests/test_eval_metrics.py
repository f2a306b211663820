"""Metric functions, the report and its comparison, on hand-made inputs (no model, no index)."""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import pytest

from eval import run_eval
from eval.dataset import Question
from eval.gates import GATES, check_gates
from eval.judge import Judge
from eval.metrics import (
    abstention_scores,
    citation_precision,
    citation_recall,
    dangling_citations,
    first_rank,
    hit_at,
    key_facts_found,
    ndcg_at,
    percentile,
    recall_at,
    reciprocal_rank,
)
from eval.report import compare, markdown, write_report
from rag import Settings
from rag.answering.grounding import check_answer, check_sentence
from rag.models import Answer, Citation, Hit, Paper

GOLD = [{"a"}]
MULTI = [{"a"}, {"b", "b2"}, {"c"}]  # "b2": the same paper listed twice in the collection


def test_hit_rank_and_reciprocal_rank():
    ranked = ["x", "y", "a", "z"]
    assert first_rank(ranked, GOLD) == 3
    assert [hit_at(ranked, GOLD, k) for k in (1, 3, 5)] == [0.0, 1.0, 1.0]
    assert reciprocal_rank(ranked, GOLD) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranked, GOLD, k=2) == 0.0
    assert first_rank(["x"], GOLD) is None and hit_at([], GOLD, 5) == 0.0


def test_ndcg_counts_each_gold_entry_once():
    assert ndcg_at(["a", "x"], GOLD, 5) == 1.0
    assert ndcg_at(["x", "a"], GOLD, 5) == pytest.approx(1 / math.log2(3))
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    # b and b2 are one entry: the second copy earns nothing.
    assert ndcg_at(["b", "b2", "x", "a"], MULTI, 5) == pytest.approx((1 + 1 / math.log2(5)) / ideal)
    assert ndcg_at(["a"], [], 5) == 0.0


def test_recall_for_multi_paper_questions():
    assert recall_at(["b2", "x", "a", "y", "z", "c"], MULTI, 5) == pytest.approx(2 / 3)
    assert recall_at(["b2", "x", "a", "y", "z", "c"], MULTI, 10) == 1.0


def test_citation_recall_and_precision():
    assert citation_recall(["a", "b"], MULTI) == pytest.approx(2 / 3)
    assert citation_recall([], MULTI) == 0.0
    assert citation_precision(["a", "x"], MULTI) == 0.5
    assert citation_precision(["a", "x"], MULTI, supporting={"x"}) == 1.0  # x backs the sentence citing it
    assert citation_precision([], MULTI) is None


def test_dangling_citations_adds_dropped_numbers_and_out_of_range_marks():
    assert dangling_citations("A [1]. B [2][7]. C [1-3].", sources=5, dropped=[9]) == [9, 7]
    assert dangling_citations("A [0] and [6, 2].", sources=5) == [0, 6]
    assert dangling_citations("A [1]. B [5].", sources=5) == []


def test_key_facts_ignore_case_and_spacing():
    assert key_facts_found(["NeurIPS 2022", "1,890", "missing"], "Accepted by  neurips\n2022; cost $1,890.") == [
        True, True, False]


def test_abstention_precision_and_recall():
    scores = abstention_scores(abstained=[True, True, False, False, True], answerable=[False, True, True, False, False])
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["answerable_abstention_rate"] == 0.5
    assert scores["unanswerable_abstention_rate"] == pytest.approx(2 / 3)
    assert abstention_scores([False], [True])["precision"] is None


def test_percentile_is_nearest_rank():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 0.5) == 3.0 and percentile(values, 0.95) == 5.0 and percentile([], 0.5) is None


def test_grounding_verdicts():
    passage = "Our model reaches an FID of 7.11 on ImageNet 64x64."
    paper = Paper(id="p", title="T", abstract=passage)
    assert check_sentence(passage, [1], [passage], [paper]).verdict == "supported"
    assert check_sentence("Our model reaches an FID of 6.50 on ImageNet 64x64.", [1], [passage], [paper]).verdict == \
        "unsupported"
    assert check_sentence("Our model reaches an FID on ImageNet 64x64 for Imagen.", [1], [passage], [paper]).verdict == \
        "partial"


# -- run_eval and the report over a scripted assistant -------------------------------------------------
PAPERS = {pid: Paper(id=pid, title=f"Paper {pid.upper()}", arxiv_id=f"2401.0000{i}",
                     abstract=f"Paper {pid} reaches a score of {i}0.5 on the benchmark. It is about topic {pid}.")
          for i, pid in enumerate(["a", "b", "c", "d"], 1)}
QUESTIONS = [
    Question(id="f1", question="What score does paper a reach?", kind="fact", gold=[{"arxiv_id": "2401.00001"}],
             key_facts=["10.5"], answer="10.5"),
    Question(id="m1", question="Which papers are about topics b and c?", kind="multi",
             gold=[{"arxiv_id": "2401.00002"}, {"arxiv_id": "2401.00003"}], key_facts=["topic b", "topic c"]),
    Question(id="u1", question="What is the capital of Australia?", kind="unanswerable"),
    Question(id="u2", question="What FID does paper d reach?", kind="unanswerable"),
]


class ScriptedAssistant:
    """The parts of Assistant run_eval uses, answering from a script."""

    def __init__(self, tmp_path) -> None:
        self.settings = Settings(data_dir=tmp_path / "unused")
        self.script = {
            QUESTIONS[0].question: (["a", "b"], "Paper a reaches a score of 10.5 on the benchmark [1].", []),
            QUESTIONS[1].question: (["c", "d", "b"], ("It is about topic c [1]. It is about topic b [3]. "
                                                      "Paper d reaches a score of 99 [2]."), [6]),
            QUESTIONS[2].question: (["d"], None, []),
            QUESTIONS[3].question: (["d"], "Paper d reaches a score of 40.5 on the benchmark [1].", []),
        }

    def papers(self):
        return list(PAPERS.values())

    def answerer(self, name=None):
        return SimpleNamespace(name=name or "extractive")

    def _hits(self, question):
        return [Hit(paper=PAPERS[p], passage=PAPERS[p].abstract, score=1.0) for p in self.script[question][0]]

    def search(self, question, k=5):
        return self._hits(question)[:k]

    def ask(self, question, answerer=None):
        hits = self._hits(question)
        _, text, dropped = self.script[question]
        if text is None:
            return Answer(question=question, text="no", hits=hits, abstained=True, answerer="extractive")
        numbers = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text)})
        citations = [Citation(number=n, paper=hits[n - 1].paper, passage=hits[n - 1].passage) for n in numbers]
        return Answer(question=question, text=text, citations=citations, hits=hits, answerer="extractive",
                      dropped_citations=dropped, support=check_answer(text, citations))


@pytest.fixture
def report(tmp_path):
    return run_eval(ScriptedAssistant(tmp_path), QUESTIONS)


def test_report_figures_on_a_scripted_assistant(report):
    m = report["metrics"]
    assert m["retrieval"]["hit@1"] == 1.0 and m["retrieval"]["questions"] == 2
    assert m["retrieval"]["recall@5_multi"] == 1.0 and m["retrieval"]["multi_questions"] == 1
    assert m["citations"]["recall"] == 1.0
    assert m["citations"]["precision_gold_only"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["citations"]["dangling"] == 1  # the dropped [6]
    assert m["grounding"]["sentences"] == 5 and m["grounding"]["unsupported"] == 1  # "score of 99"
    assert m["answers"]["key_fact_recall"] == 1.0
    assert m["abstention"]["precision"] == 1.0 and m["abstention"]["recall"] == 0.5
    assert m["latency_ms"]["ask_p50"] is not None
    failures = {q["id"]: q["failures"] for q in report["questions"]}
    assert failures["f1"] == [] and failures["u1"] == []
    assert "answered an unanswerable question" in failures["u2"]
    assert "unsupported sentence" in failures["m1"] and "dangling citations [6]" in failures["m1"]
    assert report["failures"] == ["m1", "u2"]


def test_report_json_keys_are_stable(report, tmp_path):
    assert set(report) >= {"schema", "created", "setup", "metrics", "by_kind", "gates", "failures", "questions",
                           "limits"}
    assert report["schema"] == "rag-eval/1"
    assert set(report["metrics"]) == {"retrieval", "citations", "grounding", "answers", "abstention", "latency_ms"}
    assert set(report["metrics"]["retrieval"]) == {"questions", "hit@1", "hit@3", "hit@5", "mrr", "ndcg@5",
                                                   "multi_questions", "recall@5_multi", "recall@10_multi"}
    assert set(report["metrics"]["citations"]) >= {"recall", "precision", "precision_gold_only", "dangling"}
    assert set(report["metrics"]["grounding"]) >= {"sentences", "supported", "partial", "unsupported",
                                                   "supported_rate", "method"}
    assert set(report["metrics"]["abstention"]) >= {"precision", "recall", "answerable_abstention_rate",
                                                    "unanswerable_abstention_rate"}
    assert set(report["metrics"]["latency_ms"]) >= {"search_p50", "search_p95", "ask_p50", "ask_p95"}
    assert set(report["questions"][0]) >= {"id", "kind", "retrieved", "cited", "rank", "abstained", "support",
                                           "key_facts_missing", "dangling", "failures", "search_ms", "ask_ms"}
    assert set(report["gates"]) == set(GATES)
    written = write_report(report, tmp_path / "out")
    assert [p.name for p in written] == ["report.json", "report.md", "by_kind.png", "latency.png"]
    assert json.loads(written[0].read_text())["metrics"] == json.loads(json.dumps(report["metrics"]))
    assert all(p.stat().st_size > 1000 for p in written[2:])
    md = written[1].read_text()
    assert "| m1 | multi |" in md and "answered an unanswerable question" in md and "## Gates" in md


def test_compare_reports_deltas_and_changed_failures(report):
    old = json.loads(json.dumps(report))
    old["metrics"]["retrieval"]["hit@1"] = 0.5
    old["metrics"]["citations"]["dangling"] = 3
    old["failures"] = ["f1", "m1"]
    diff = compare(old, report)
    assert diff["metrics"]["retrieval.hit@1"] == {"old": 0.5, "new": 1.0, "delta": 0.5}
    assert diff["metrics"]["citations.dangling"]["delta"] == -2
    assert diff["newly_failing"] == ["u2"] and diff["fixed"] == ["f1"]
    report["comparison"] = diff
    assert "| retrieval.hit@1 | 0.500 | 1.000 | +0.500 |" in markdown(report)


def test_gates_pass_and_fail_on_thresholds():
    metrics = {"retrieval": {"hit@5": 0.96, "mrr": 0.5}, "citations": {"dangling": 1},
               "abstention": {"answerable_abstention_rate": 0.05, "unanswerable_abstention_rate": 0.79}}
    gates = check_gates(metrics)
    assert gates["hit@5"]["passed"] and gates["answerable abstention"]["passed"]
    assert not gates["dangling citations"]["passed"] and not gates["unanswerable abstention"]["passed"]
    assert not gates["key-fact recall"]["passed"]  # missing metric fails


def test_judge_verdicts_from_a_chat_model():
    replies = iter(["Supported.", "partial - the year is missing", "I cannot tell"])
    sent = []

    def create(**kwargs):
        sent.append(kwargs)
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=next(replies)))])

    judge = Judge("judge-model", SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create))))
    paper = PAPERS["a"]
    citations = [Citation(number=1, paper=paper, passage=paper.abstract)]
    support = check_answer("A [1]. B [1]. C [1]. D.", citations)
    judged = judge.check(support, citations)
    assert [s.verdict for s in judged] == ["supported", "partial", "unsupported", "unsupported"]
    assert all(s.method == "judge" for s in judged) and len(sent) == 3  # the uncited sentence needs no call
    assert "Paper a reaches a score of 10.5" in sent[0]["messages"][0]["content"]


def test_eval_is_a_rag_subcommand():
    from rag.cli import _parser

    args = _parser().parse_args(["eval", "my.jsonl", "--answerer", "extractive", "--report", "out", "--baselines",
                                 "--compare", "old.json"])
    assert args.file == "my.jsonl" and args.baselines and args.report == "out" and args.compare == "old.json"
    assert callable(args.run)
