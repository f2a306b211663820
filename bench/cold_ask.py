"""Cold `rag ask` from a shell: process start to answer, in fresh processes (quoted in the README).

Ingests seeds/ into a temporary data dir (a fresh process; loading torch there also exports the local model to
ONNX into a temporary cache dir), then runs the same `rag ask` in new processes, alternating the torch query
path (RAG_EMBED_RUNTIME=torch, the baseline: what every ask did before) and ONNX Runtime (the default), and
prints medians of wall time, CPU time (user + sys: what the process itself cost, steadier than wall time on
a busy machine) and peak memory; then one ask on a machine with no export yet (torch, plus the one-time export).
Usage: python bench/cold_ask.py [--runs N] [--question TEXT]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "What FID did SMaRt reach on ImageNet 64x64?"


def run(args: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak memory (MB) and stdout of one `rag` process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "rag.cli", *args], env=env, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (getrusage sums every child)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"rag {' '.join(args)} failed ({proc.returncode}):\n{err.read()[-2000:]}")
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="cold asks per query path (median reported)")
    parser.add_argument("--question", default=QUESTION)
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env.update(HF_HUB_OFFLINE="1", RAG_DATA_DIR=f"{tmp}/data", RAG_CACHE_DIR=f"{tmp}/cache")
        wall, cpu, _, _ = run(["ingest", str(ROOT / "seeds")], env)
        rows.append(("ingest seeds, fresh process (torch; exports the ONNX model once)", f"{wall:.1f} s"))
        ask = ["ask", args.question]
        paths = {"torch (RAG_EMBED_RUNTIME=torch, before)": {**env, "RAG_EMBED_RUNTIME": "torch"},
                 "ONNX Runtime (default)": env}
        results: dict[str, list[tuple[float, float, float, str]]] = {name: [] for name in paths}
        for _ in range(args.runs):  # alternating, so that a busy machine's drift hits both alike
            for name, path_env in paths.items():
                results[name].append(run(ask, path_env))
        for name, runs in results.items():
            walls, cpus, mems = zip(*[(w, c, m) for w, c, m, _ in runs], strict=True)
            rows.append((f"cold `rag ask`, query in {name}",
                         f"median {statistics.median(walls):.2f} s wall (min {min(walls):.2f}), "
                         f"{statistics.median(cpus):.2f} s CPU, {statistics.median(mems):.0f} MB peak"))
        answers = {out for runs in results.values() for *_, out in runs}
        rows.append(("same answer and references on both paths", "yes" if len(answers) == 1 else "NO"))
        wall, cpu, mem, _ = run(ask, {**env, "RAG_CACHE_DIR": f"{tmp}/no-export"})
        rows.append(("first cold ask without an export (torch, then exports it once)",
                     f"{wall:.1f} s wall, {cpu:.1f} s CPU, {mem:.0f} MB peak"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    rows.append(("machine", f"{os.cpu_count()} CPUs, load average {load} at the end"))
    print_table(rows)


def print_table(rows: list[tuple[str, str]]) -> None:
    """Measures and figures, one per line, figures aligned."""
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
