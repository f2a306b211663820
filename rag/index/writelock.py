"""One writer at a time on a data directory, across processes (the chat, CLI ingests, scripts).

An embedded Chroma is not safe for two processes writing at once, and a catalog written by one would be
overwritten by another that read it earlier. Writers therefore take an inter-process lock (filelock: an OS
lock, released by the kernel even when its holder is killed with kill -9) and say who they are beside it, so
a writer that cannot get the lock in time gets an error naming the one that holds it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


class CollectionBusy(RuntimeError):
    """Another process is writing to the same data directory and did not finish in time."""


def _holder(owner: Path) -> str:
    try:
        info = json.loads(owner.read_text(encoding="utf-8"))
        since = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
        return f"pid {int(info['pid'])} ({str(info['command'])[:200]}), writing since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def writer_lock(data_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the data directory's writer lock; raise CollectionBusy naming the holder after ``timeout`` s."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock, owner = FileLock(str(data_dir / "write.lock")), data_dir / "write.lock.owner"
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise CollectionBusy(
            f"{data_dir} is being written by {_holder(owner)}; waited {timeout:g} s. Try again when it has "
            f"finished (RAG_LOCK_TIMEOUT sets the wait), or share one Chroma server (RAG_CHROMA_URL)."
        ) from None
    try:
        owner.write_text(json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv) or sys.executable,
                                     "since": time.time()}), encoding="utf-8")
        yield
    finally:
        lock.release()
