"""The inter-process writer lock: a real second process holds it; kill -9 frees it; ingest names the holder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from rag import Assistant, Settings
from rag.index.writelock import CollectionBusy, writer_lock
from tests.conftest import stop_process

_HOLDER = """
import sys, time
from pathlib import Path
from rag.index.writelock import writer_lock
with writer_lock(Path(sys.argv[1]), 5):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """A separate process holding the data dir's writer lock (as a long `rag ingest` would)."""
    data = tmp_path / "d"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(data)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"  # type: ignore[union-attr]
    yield data, proc
    stop_process(proc)


def test_a_second_writer_gets_an_error_naming_the_first(holder):
    data, proc = holder
    with pytest.raises(CollectionBusy) as info:
        with writer_lock(data, timeout=0.3):
            pass
    message = str(info.value)
    assert f"pid {proc.pid}" in message and str(data) in message and "RAG_LOCK_TIMEOUT" in message
    assert "-c" in message  # the holder's command line


def test_a_writer_killed_with_sigkill_leaves_the_lock_free(holder):
    data, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with writer_lock(data, timeout=5):  # the kernel released it with the process
        owner = json.loads((data / "write.lock.owner").read_text())
    assert owner["pid"] != proc.pid


def test_ingest_while_another_process_writes_fails_clearly_and_loses_nothing(holder, tmp_path):
    data, proc = holder
    listing = tmp_path / "one.txt"
    listing.write_text("A Title\nAn abstract about tide pools and the snails that live in them, long enough.\n")
    assistant = Assistant(Settings(data_dir=data, lock_timeout=0.3))
    with pytest.raises(CollectionBusy, match=f"pid {proc.pid}"):
        assistant.ingest(listing, progress=False)
    assert assistant.papers() == [] and not (data / "chroma").exists()  # nothing half-written
