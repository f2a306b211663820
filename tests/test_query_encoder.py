"""The local model's queries in ONNX Runtime: exported from the same weights, checked, and a cold `rag ask`
without torch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.dataset import load_questions
from rag import Assistant, Settings
from rag.index import onnx_encoder
from rag.index.embedders import make_embedder
from tests.conftest import ROOT

QUERIES = [
    "What FID did SMaRt reach on ImageNet 64x64?",
    "score matching for GANs",
    "Who wrote TagAlign?",
    "GeoD",
    "which dataset did they use",
    "  leading and trailing spaces  ",
    "UPPER CASE QUERY ABOUT DIFFUSION MODELS",
    "naïve Bayes über café, 数学 and αβγ",
    "3.5% error at 10^6 parameters; p < 0.05",
    "emoji 😀 and symbols ∑ ∫ ≥",
    "x",
    "a very long question about protein folding benchmarks and learned step sizes " * 12,  # past 256 tokens
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A fresh cache dir into which loading the torch model exported the ONNX file."""
    cache = tmp_path_factory.mktemp("export-cache")
    embedder = make_embedder(Settings(cache_dir=cache))
    assert embedder.runtime == "torch"  # nothing exported yet
    embedder.torch_model()  # loading torch exports (once per cache dir)
    assert embedder.runtime == "onnx"
    return cache


def cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.slow
def test_onnx_vectors_match_torch(cache):
    embedder = make_embedder(Settings(cache_dir=cache))
    torch_model = embedder.torch_model()
    onnx = [embedder.get_query_embedding(q) for q in QUERIES]  # queries: ONNX Runtime whenever it is exported
    assert cosines(onnx, [torch_model.get_query_embedding(q) for q in QUERIES]).min() >= 0.999
    # A small batch (an answer's grounding check) in a process that has not loaded torch: ONNX Runtime too,
    # padded to the batch's longest text.
    fresh = make_embedder(Settings(cache_dir=cache, embed_batch_size=16))  # another embedder: torch not loaded
    batch = fresh.get_text_embedding_batch(QUERIES)
    assert np.allclose(batch, onnx_encoder.open_encoder(cache).encode(QUERIES), atol=1e-6)
    assert cosines(batch, torch_model.get_text_embedding_batch(QUERIES)).min() >= 0.999
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # Once torch is loaded (an ingest), short batches stay there (an ingest's last batch; bf16 on AMX).
    assert embedder.get_text_embedding_batch(QUERIES[:3]) == torch_model.get_text_embedding_batch(QUERIES[:3])


@pytest.mark.slow
def test_export_is_published_whole_and_checked(cache, tmp_path):
    path = onnx_encoder.export_path(cache)
    assert path.is_file() and not list(path.parent.glob(".*partial"))
    # An export whose vectors differ from torch's is refused and leaves nothing behind.
    other = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="differs from torch"):
        onnx_encoder.build(other, lambda target: shutil.copyfile(path, target),
                           lambda texts: np.random.default_rng(0).normal(size=(len(texts), 384)))
    assert not list(onnx_encoder.export_path(other).parent.iterdir())


def test_no_export_or_a_damaged_one_means_torch(tmp_path):
    assert make_embedder(Settings(cache_dir=tmp_path / "empty")).runtime == "torch"
    damaged = onnx_encoder.export_path(tmp_path / "damaged")
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not an onnx model")
    assert onnx_encoder.open_encoder(tmp_path / "damaged") is None
    assert make_embedder(Settings(cache_dir=tmp_path / "damaged")).runtime == "torch"


@pytest.mark.slow
def test_a_failed_export_says_why_and_leaves_queries_in_torch(tmp_path, monkeypatch, caplog):
    from rag.index import local_embedder

    def no_onnx_package(self, path):
        raise ImportError("No module named 'onnx'")

    monkeypatch.setattr(local_embedder.TorchEmbedding, "export_onnx", no_onnx_package)
    embedder = make_embedder(Settings(cache_dir=tmp_path / "cache"))
    assert len(embedder.get_query_embedding("score matching for GANs")) == 384  # torch loads, the export fails
    assert embedder.runtime == "torch" and not onnx_encoder.export_path(tmp_path / "cache").exists()
    assert "queries stay in torch" in caplog.text and "No module named 'onnx'" in caplog.text


@pytest.mark.slow
def test_runtime_torch_ignores_the_export(cache):
    assert make_embedder(Settings(cache_dir=cache, embed_runtime="torch")).runtime == "torch"


@pytest.mark.slow
def test_same_top_hits_on_the_seeds(seeded, cache):
    settings = seeded.settings.model_copy(update={"cache_dir": cache})
    onnx, torch = Assistant(settings), Assistant(settings.model_copy(update={"embed_runtime": "torch"}))
    assert onnx.index.embed_model.runtime == "onnx" and torch.index.embed_model.runtime == "torch"
    for question in [q.question for q in load_questions()][:20]:
        assert [h.paper.id for h in onnx.search(question)] == [h.paper.id for h in torch.search(question)], question


@pytest.mark.slow
def test_cold_ask_never_imports_torch(seeded, cache):
    code = ("import sys; from rag.cli import main; code = main(['ask', '--json', 'What FID did SMaRt reach on "
            "ImageNet 64x64?']); heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', "
            "'sentence_transformers', 'transformers', 'gradio', 'matplotlib', 'nltk'}); "
            "print('HEAVY', heavy, file=sys.stderr); sys.exit(code)")
    env = {**os.environ, "RAG_DATA_DIR": str(seeded.settings.data_dir), "RAG_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HEAVY []" in done.stderr
    assert "SMaRt" in done.stdout and '"abstained": false' in done.stdout


@pytest.mark.slow
def test_a_process_that_exits_while_the_encoder_loads_exits_cleanly(cache):
    # ONNX Runtime aborts a process torn down under a session being built: `rag ask ""` fails fast like that.
    for pause in (0.0, 0.05, 0.1, 0.2):
        code = f"from rag.index import onnx_encoder; onnx_encoder.preload({str(cache)!r}); " \
               f"import time; time.sleep({pause})"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0 and not done.stderr, done.stderr[-2000:]


def test_building_the_cli_parser_imports_no_assistant_modules():
    # The query encoder starts loading before LlamaIndex and Chroma import (rag/cli.py): that needs `rag` and the
    # subcommand plugins to stay light until a command runs.
    code = ("import sys; import rag.cli; rag.cli._parser(); loaded = {m.split('.')[0] for m in sys.modules}; "
            "print(sorted(loaded & {'llama_index', 'chromadb', 'torch', 'onnxruntime'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
