"""Offline evaluation of the assistant over a question set (see eval/dataset.py and docs/eval-format.md)."""

from eval.runner import run_eval

__all__ = ["run_eval"]
