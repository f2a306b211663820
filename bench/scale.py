"""How ingest, re-ingest, search and answering grow with the collection, without the model's cost.

Embeddings come from a tiny OpenAI-compatible /v1/embeddings server this script starts on loopback (hashed
bag-of-words vectors, float or base64), so only our own overhead is measured; the model's own cost is
`bench/benchmark.py`'s papers/s. Abstracts are synthetic: recombined SciFact sentences under made-up titles,
authors and arXiv ids (the SciFact folder is read, never copied). Every step runs in a fresh process, so
peak memory (RSS) is that step's own.

Per size N, one row: ingest of N papers (papers/s, peak RSS), adding 100 new papers (a file of its own),
re-ingesting everything
unchanged, the first answer in a fresh process (seconds after the Assistant is constructed), search p50/p95
over 50 queries, serving RSS after them, and disk (total and per paper).

Usage:
  python bench/scale.py --scifact ../shared/benchmarks/scifact --sizes 2000 10000
  python bench/scale.py --scifact ../shared/benchmarks/scifact --sizes 100000 1000000   # long runs
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import http.server
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIM = 384
_WORD = re.compile(r"[a-z0-9]+")


# -- the embeddings server (child mode) ------------------------------------------------------------------

def hashed_vector(text: str) -> list[float]:
    """A unit bag-of-words vector: each word adds 1 at a hashed position (stable across processes)."""
    vector = [0.0] * DIM
    for word in _WORD.findall(text.lower()):
        vector[int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % DIM] += 1.0
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


def _encode(vector: list[float], fmt: str):
    if fmt == "base64":
        import array

        return base64.b64encode(array.array("f", vector).tobytes()).decode()
    return vector


class _Embeddings(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        fmt = body.get("encoding_format") or "float"
        data = [{"object": "embedding", "index": i, "embedding": _encode(hashed_vector(str(t)), fmt)}
                for i, t in enumerate(texts)]
        out = json.dumps({"object": "list", "data": data, "model": body.get("model", "hashed-bow"),
                          "usage": {"prompt_tokens": 0, "total_tokens": 0}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args) -> None:  # quiet
        pass


def serve(port: int) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Embeddings)
    print("ready", flush=True)
    server.serve_forever()


# -- the synthetic collection ------------------------------------------------------------------------------

def sentences_of(scifact: Path) -> tuple[list[str], list[str]]:
    path = next(p for p in (scifact / "corpus.jsonl.gz", scifact / "corpus.jsonl") if p.exists())
    opener = gzip.open if path.suffix == ".gz" else open
    sentences, titles = [], []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            titles.append(row.get("title") or "Untitled")
            sentences += [s.strip() + "." for s in row["text"].split(". ") if len(s.split()) >= 6]
    return sentences, titles


def write_papers(path: Path, start: int, count: int, sentences: list[str], titles: list[str]) -> None:
    """``count`` synthetic papers numbered from ``start`` (the same number always gives the same paper)."""
    with path.open("w", encoding="utf-8") as out:
        for n in range(start, start + count):
            rng = random.Random(n)
            abstract = " ".join(rng.sample(sentences, rng.randint(5, 9)))
            month = 1 + n // 99_999 % 12
            out.write(json.dumps({
                "title": f"{rng.choice(titles)} ({n})", "abstract": abstract,
                "authors": [f"Author {rng.randint(1, 5000)}", f"Author {rng.randint(1, 5000)}"],
                "arxiv_id": f"{20 + n // 1_199_988:02d}{month:02d}.{n % 99_999 + 1:05d}",
                "date": f"20{20 + n // 1_199_988:02d}-{month:02d}-15",
            }) + "\n")


# -- measured steps (child mode: one fresh process each) -------------------------------------------------------

def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(step: str, data: str, args: list[str]) -> None:
    from rag import Assistant, Settings

    t0 = time.perf_counter()
    assistant = Assistant(Settings(data_dir=Path(data)))
    opened = time.perf_counter()
    out: dict = {"open_s": opened - t0}
    if step == "ingest":
        report = assistant.ingest(*args, progress=False)
        out.update(seconds=time.perf_counter() - opened, added=report.added, unchanged=report.unchanged,
                   papers=report.papers, failed=len(report.failed))
    elif step == "serve":
        queries = json.loads(args[0])
        t = time.perf_counter()
        answer = assistant.ask(queries[0])
        out["first_answer_s"] = time.perf_counter() - t
        out["abstained"] = answer.abstained
        times = []
        for q in queries[1:]:
            t = time.perf_counter()
            assistant.search(q)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out.update(search_p50=statistics.median(times), search_p95=times[int(0.95 * (len(times) - 1))])
    out["rss_mb"] = _rss_mb()
    print(json.dumps(out), flush=True)


def run_child(step: str, data: Path, env: dict, *args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", step, str(data), *args], env=env,
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{step} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scifact", type=Path, default=ROOT.parent / "shared" / "benchmarks" / "scifact")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--work", type=Path, help="where data dirs go (default: a temporary folder, removed)")
    parser.add_argument("--reuse", action="store_true",
                        help="with --work and --port: keep a size's data dir from an earlier run (skip its first "
                             "ingest) and add 100 papers never seen before")
    parser.add_argument("--port", type=int, help="embeddings server port (an index remembers its embedder's URL)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--serve-embeddings", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_embeddings:
        return serve(args.serve_embeddings)
    if args.child:
        return child(args.child[0], args.child[1], args.child[2:])

    port = args.port
    if not port:
        with socket.socket() as probe:  # a free loopback port
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, __file__, "--serve-embeddings", str(port)], stdout=subprocess.PIPE,
                              text=True)
    assert server.stdout and server.stdout.readline().strip() == "ready"
    env = {**os.environ, "RAG_EMBEDDER": "openai", "RAG_EMBED_BASE_URL": f"http://127.0.0.1:{port}/v1",
           "RAG_EMBED_MODEL": "hashed-bow", "RAG_EMBED_BATCH_SIZE": "256", "HF_HUB_OFFLINE": "1"}
    env.pop("RAG_CHROMA_URL", None)
    work = args.work or Path(tempfile.mkdtemp(prefix="rag-scale-"))
    sentences, titles = sentences_of(args.scifact)
    rows = []
    try:
        for size in args.sizes:
            folder = work / f"n{size}"
            base, extra, data = folder / "papers.jsonl", folder / "extra.jsonl", folder / "data"
            reuse = args.reuse and data.exists()
            if not reuse:
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                write_papers(base, 0, size, sentences, titles)
            # Reused: 100 papers with ids no earlier run gave (each run adds its own).
            start = size + (10**6 + int(time.time()) % 10**6 if reuse else 0)
            write_papers(extra, start, 100, sentences, titles)
            print(f"n={size}: ingest …", file=sys.stderr, flush=True)
            first = ({"seconds": float("nan"), "rss_mb": float("nan"), "failed": 0} if reuse
                     else run_child("ingest", data, env, str(base)))
            added = run_child("ingest", data, env, str(extra))  # a new file of 100 papers, as a user adds them
            again = run_child("ingest", data, env, str(base), str(extra))
            queries = [" ".join(random.Random(i).sample(sentences, 1)[0].split()[:12]) for i in range(51)]
            served = run_child("serve", data, env, json.dumps(queries))
            disk = disk_mb(data)
            row = {"papers": size, "ingest_per_s": size / first["seconds"], "ingest_rss_mb": first["rss_mb"],
                   "add_100_s": added["seconds"], "reingest_s": again["seconds"],
                   "first_answer_s": served["first_answer_s"], "open_s": served["open_s"],
                   "search_p50_ms": served["search_p50"], "search_p95_ms": served["search_p95"],
                   "serving_rss_mb": served["rss_mb"], "disk_mb": disk, "disk_kb_per_paper": disk * 1024 / size,
                   "checks": {"added": added["added"], "unchanged": again["unchanged"], "failed": first["failed"]}}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            if not args.work:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        server.terminate()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print("| papers | ingest/s (no model) | add 100 papers | unchanged re-ingest | first answer, fresh process "
          "| search p50 / p95 | ingest RSS | serving RSS | disk (per paper) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['papers']:,} | {r['ingest_per_s']:.0f} | {r['add_100_s']:.1f} s | {r['reingest_s']:.1f} s | "
              f"{r['first_answer_s']:.2f} s (+{r['open_s']:.1f} s open) | {r['search_p50_ms']:.1f} / "
              f"{r['search_p95_ms']:.1f} ms | {r['ingest_rss_mb'] / 1024:.2f} GB | {r['serving_rss_mb'] / 1024:.2f} GB | "
              f"{r['disk_mb']:.0f} MB ({r['disk_kb_per_paper']:.1f} KB) |")


if __name__ == "__main__":
    main()
