"""Offline evaluation of the assistant over a question set (see eval/dataset.py for the format)."""
