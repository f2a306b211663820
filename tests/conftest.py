"""Shared fixtures. All data lives under tmp_path; no test reads a key or a server from the environment."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import Assistant, Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory) -> Iterator[Path]:
    """One cache dir for the session (the local model's ONNX export, made by the first test that loads torch),
    set before any session fixture builds an Assistant; never the developer's ~/.cache."""
    cache = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAG_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch, model_cache):
    """Keep every data dir under tmp_path and drop any LLM / store configuration of the developer."""
    for name in list(os.environ):
        if name.startswith("RAG_") or name in {"OPENAI_API_KEY", "OPENAI_BASE_URL"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / ".rag"))
    monkeypatch.setenv("RAG_CACHE_DIR", str(model_cache))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def seeded_dir(tmp_path_factory) -> Path:
    """A data dir with the real seeds ingested by the real default embedder (built once per session)."""
    data = tmp_path_factory.mktemp("seeded") / ".rag"
    report = Assistant(Settings(data_dir=data)).ingest(SEEDS, progress=False)
    assert report.failed == [] and report.papers > 200
    return data


@pytest.fixture
def seeded(seeded_dir, tmp_path) -> Assistant:
    """An Assistant over a private copy of the seeded data dir (tests may change it)."""
    data = tmp_path / "seeded"
    shutil.copytree(seeded_dir, data)
    return Assistant(Settings(data_dir=data))


def missing(reason: str) -> None:
    """A part this machine lacks: skip on a developer's machine, fail in CI (where `make test` installs it)."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a server started by a test, killing it if it does not exit."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)
