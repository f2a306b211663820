"""Offline evaluation of the assistant over a question set (see eval/dataset.py and docs/eval-format.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["run_eval"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `rag` loads eval.cli to build its parser, and the runner imports the whole assistant.
    if name == "run_eval":
        from eval.runner import run_eval

        return run_eval
    raise AttributeError(f"module 'eval' has no attribute {name!r}")


if TYPE_CHECKING:
    from eval.runner import run_eval
