"""The `rag` command as users run it: a subprocess, human and --json output, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import SEEDS


def rag(*args: str, data_dir=None, stdin: str | None = None, env: dict | None = None):
    command = [sys.executable, "-m", "rag.cli"] + (["--data-dir", str(data_dir)] if data_dir else []) + list(args)
    return subprocess.run(command, capture_output=True, text=True, input=stdin, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def data(seeded):
    return seeded.settings.data_dir


def test_ask_prints_answer_and_references(data):
    result = rag("ask", "What FID did SMaRt reach on ImageNet 64x64?", data_dir=data)
    assert result.returncode == 0, result.stderr
    assert "improve FID from 8.87 to 7.11" in result.stdout and "7.11, on par" in result.stdout
    assert "(confidence that the collection answers this: 0." in result.stdout
    assert "References:\n[1] SMaRt: Improving GANs with Score Matching Regularity. Mengfei Xia" in result.stdout


def test_ask_prints_the_cited_papers_as_bibtex_and_ris(data):
    result = rag("ask", "Who wrote TagAlign?", "--bib", "--ris", data_dir=data)
    assert result.returncode == 0, result.stderr
    answer, _, exports = result.stdout.partition("\n@misc{")
    assert "References:\n[1] TagAlign" in answer
    assert exports.startswith("liu") and "title = {{TagAlign: " in exports and "author = {Liu, Qinying and " in exports
    assert "\nTY  - JOUR\nID  - liu" in exports and "AU  - Liu, Qinying" in exports and "ER  - " in exports
    both = rag("ask", "Who wrote TagAlign?", "--bib", "--json", data_dir=data)
    assert both.returncode == 2 and "--json already gives every cited paper" in both.stderr


def test_ask_json_is_a_full_answer(data):
    result = rag("ask", "Who wrote TagAlign?", "--json", data_dir=data)
    answer = json.loads(result.stdout)
    assert answer["answerer"] == "extractive" and answer["abstained"] is False
    assert answer["citations"][0]["paper"]["title"].startswith("TagAlign")


def test_search_and_papers(data):
    hits = json.loads(rag("search", "neural dependencies", "-k", "3", "--json", data_dir=data).stdout)
    assert hits[0]["paper"]["arxiv_id"] == "2211.12339" and len(hits) == 3
    papers = json.loads(rag("papers", "--json", data_dir=data).stdout)
    assert len(papers) == 221
    human = rag("search", "neural dependencies", "--year-from", "2022", data_dir=data).stdout
    assert human.startswith("[1] Neural Dependencies Emerging from Learning Massive Categories.")
    assert "https://arxiv.org/abs/2211.12339" in human


def test_chat_keeps_history_from_stdin(data):
    result = rag("chat", data_dir=data,
                 stdin="What is GeoD, the geometry-aware discriminator?\nWhat does it ask the discriminator to derive?\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("References:") == 2
    assert result.stdout.count("arxiv.org/abs/2209.15637") == 2


def test_ingest_reports_rejections(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"\x00\x01\x02binary")
    result = rag("ingest", str(SEEDS / "000_5005df3c1c9c486a.txt"), str(junk), data_dir=tmp_path / "d")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("7 records -> 7 papers: 7 added")
    assert f"rejected: {junk}:1: binary file" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("ingest", "/no/such/dir"), {}, "no such file or folder: /no/such/dir"),
        (("papers",), {"RAG_TOP_K": "many"}, "bad setting top_k (env RAG_TOP_K)"),
        (("ask", "x", "--answerer", "llm"), {}, "needs an LLM: set OPENAI_API_KEY"),
        (("search", "x"), {"RAG_CHROMA_URL": "ftp://nowhere"}, "RAG_CHROMA_URL must look like"),
    ],
)
def test_user_errors_are_one_line(tmp_path, args, env, message):
    result = rag(*args, data_dir=tmp_path / "d", env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("rag: error:")]) == 1


def test_answer_tail_flags_unsupported_sentences(capsys):
    from rag.cli import _print_answer_tail
    from rag.models import Answer, Citation, Paper, SentenceSupport

    paper = Paper(id="p", title="GeoD", abstract="We propose GeoD, a geometry-aware discriminator.")
    answer = Answer(question="q", text="GeoD reaches FID 3.1 [1]", answerer="llm",
                    citations=[Citation(number=1, paper=paper, passage=paper.abstract)],
                    support=[SentenceSupport(sentence="GeoD reaches FID 3.1", citations=[1], verdict="unsupported",
                                             missing=["3.1"])])
    _print_answer_tail(answer)
    out = capsys.readouterr().out
    assert "(⚠ unsupported: “GeoD reaches FID 3.1”; not in the cited sources: 3.1)" in out
    assert "References:\n[1] GeoD\n" in out
