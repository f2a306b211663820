"""The offline MiniLM embedder in torch: bf16 documents stay interchangeable with fp32 ones; queries are always fp32.

(Queries and small batches go to ONNX Runtime when an export is cached: tests/test_query_encoder.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from rag import Assistant, Settings
from rag.ingest.merge import build_papers
from rag.index import embedders
from rag.index.embedders import make_embedder
from rag.ingest.loaders import load
from tests.conftest import ROOT, SEEDS


@pytest.fixture(scope="module")
def abstracts() -> list[str]:
    """Sixteen real abstracts from the seeds."""
    loaded = load([SEEDS], Settings().max_abstract_chars)
    return [p.abstract for p in build_papers(loaded.records)[:16]]


def test_precision_setting_resolves_against_the_cpu(monkeypatch):
    assert embedders.use_bf16("bf16") and not embedders.use_bf16("fp32")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert embedders.use_bf16("auto")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not embedders.use_bf16("auto")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the private probe: fp32
    assert not embedders.use_bf16("auto")


def test_bf16_documents_match_fp32_and_rank_the_same(abstracts):
    fp32 = make_embedder(Settings(embed_precision="fp32"))
    bf16 = make_embedder(Settings(embed_precision="bf16"))
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    fp32, bf16 = fp32.torch_model(), bf16.torch_model()  # documents: torch (16 texts would go to ONNX Runtime)
    a = np.array(fp32.get_text_embedding_batch(abstracts))
    b = np.array(bf16.get_text_embedding_batch(abstracts))
    assert not np.array_equal(a, b)  # autocast really ran: bf16 rounding shows in the last digits
    cosine = (a * b).sum(axis=1)
    assert cosine.min() > 0.999, cosine.min()
    # The same fp32 query ranks both sets of vectors the same way.
    for text in abstracts[:4]:
        query = np.array(fp32.get_query_embedding(" ".join(text.split()[:12])))
        assert np.argsort(-(a @ query))[:3].tolist() == np.argsort(-(b @ query))[:3].tolist()


def test_queries_are_fp32_whatever_the_precision():
    question = "What FID did SMaRt reach on ImageNet 64x64?"
    fp32 = make_embedder(Settings(embed_precision="fp32")).torch_model().get_query_embedding(question)
    assert make_embedder(Settings(embed_precision="bf16")).torch_model().get_query_embedding(question) == fp32


def test_status_reports_the_precision_in_use(tmp_path):
    assistant = Assistant(Settings(data_dir=tmp_path / "d", embed_precision="fp32"))
    assert assistant.status()["embed_precision"] == "fp32"


def test_loading_the_model_turns_hugging_face_offline_in_a_fresh_process():
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: the flag must be set before that import.
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"}}
    code = ("from rag import Settings; from rag.index.embedders import make_embedder; "
            "make_embedder(Settings()).torch_model(); "
            "import huggingface_hub.constants as c; print(c.HF_HUB_OFFLINE)")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("True")
