"""`rag eval --beir DIR`: retrieval, answers, citations and abstention on a BEIR-format dataset.

A BEIR dataset is ``corpus.jsonl`` (``_id``, ``title``, ``text``, optionally ``sentences``), ``queries.jsonl``
(``_id``, ``text``, optionally ``evidence`` = {doc id: {"sentences": [indices]}}, SciFact's rationales) and
qrels (``qrels/<split>.tsv``, or ``qrels-<split>.tsv`` beside the corpus: ``query-id``, ``corpus-id``,
``score``); any of them may be gzipped. Only queries with a positive qrel are used.

Withheld-evidence protocol: the relevant documents of a fixed random share of the queries (``fraction``,
``seed``) are left out of the ingested corpus. A query none of whose relevant documents remains must be
abstained on; every other query must be answered. With ``fraction`` 0 the whole corpus is ingested and every
abstention is a false one. The corpus is written as JSONL into the data directory and ingested through the
public API; an unchanged rerun embeds nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from eval.metrics import hit_at, mean, ndcg_at, percentile, recall_at, reciprocal_rank
from rag import Answer, Assistant, Settings, split_sentences, word_tokens

K = 10  # retrieval depth for nDCG@10, recall@10, MRR@10
RATIONALE_OVERLAP = 0.6  # share of a rationale sentence's tokens an answer sentence must contain to count as it


@dataclass
class BeirDoc:
    id: str
    title: str
    text: str
    sentences: list[str] | None = None


@dataclass
class BeirQuery:
    id: str
    text: str
    relevant: set[str]
    rationales: dict[str, list[int]] = field(default_factory=dict)  # doc id -> sentence indices


@dataclass
class BeirSet:
    name: str
    corpus: dict[str, BeirDoc]
    queries: list[BeirQuery]
    qrels: dict[str, set[str]]


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def _find(folder: Path, names: list[str]) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with _open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise ValueError(f"{path}:{number}: expected a JSON object with an '_id'")
            yield number, row


def _splits(folder: Path) -> dict[str, Path]:
    found = {p.name.split(".")[0]: p for p in sorted((folder / "qrels").glob("*.tsv*"))} if (folder / "qrels").is_dir() \
        else {}
    found.update({p.name.split(".")[0].removeprefix("qrels-"): p for p in sorted(folder.glob("qrels-*.tsv*"))})
    return found


def load_beir(path: Path, split: str | None = None) -> BeirSet:
    """A BEIR dataset from a folder (plain or gzipped files); bad input raises ValueError naming file:line."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: not a folder holding a BEIR dataset")
    splits = _splits(path)
    if not splits:
        raise ValueError(f"{path}: no qrels (expected qrels/<split>.tsv or qrels-<split>.tsv)")
    if split is None:
        split = next(iter(splits)) if len(splits) == 1 else "test"
    if split not in splits:
        raise ValueError(f"{path}: no qrels for split {split!r} (found: {', '.join(sorted(splits))})")
    corpus_file = _find(path, ["corpus.jsonl"])
    queries_file = _find(path, [f"queries-{split}.jsonl", "queries.jsonl"])
    if corpus_file is None or queries_file is None:
        raise ValueError(f"{path}: needs corpus.jsonl and queries.jsonl (or queries-{split}.jsonl), gzip allowed")
    corpus = {}
    for number, row in _jsonl(corpus_file):
        sentences = row.get("sentences") if isinstance(row.get("sentences"), list) else None
        corpus[str(row["_id"])] = BeirDoc(str(row["_id"]), str(row.get("title") or ""), str(row.get("text") or ""),
                                          [str(s) for s in sentences] if sentences else None)
    qrels: dict[str, set[str]] = {}
    with _open(splits[split]) as f:
        for number, line in enumerate(f, 1):
            cells = line.rstrip("\n").split("\t")
            if number == 1 and cells[0] == "query-id":
                continue
            if len(cells) < 3 or not cells[2].strip().lstrip("-").isdigit():
                raise ValueError(f"{splits[split]}:{number}: expected query-id, corpus-id, score separated by tabs")
            if int(cells[2]) > 0 and cells[1] in corpus:
                qrels.setdefault(cells[0], set()).add(cells[1])
    queries = []
    for _, row in _jsonl(queries_file):
        qid = str(row["_id"])
        if qid not in qrels:
            continue
        evidence = row.get("evidence") if isinstance(row.get("evidence"), dict) else {}
        rationales = {str(d): [int(i) for e in (v if isinstance(v, list) else [v]) for i in e.get("sentences", [])]
                      for d, v in evidence.items() if str(d) in corpus}
        queries.append(BeirQuery(qid, str(row.get("text") or ""), qrels[qid], rationales))
    return BeirSet(path.name, corpus, queries, qrels)


def withheld_queries(bset: BeirSet, fraction: float = 0.3, seed: int = 0) -> set[str]:
    """A fixed random share of the query ids (same on every run and machine for the same ids and seed)."""
    ids = sorted(q.id for q in bset.queries)
    return set(random.Random(seed).sample(ids, round(fraction * len(ids))))


def withheld_docs(bset: BeirSet, queries: set[str]) -> set[str]:
    """The relevant documents of the withheld queries: what the ingested corpus leaves out."""
    return {d for q in bset.queries if q.id in queries for d in q.relevant}


def default_data_dir(bset: BeirSet, settings: Settings, gone: set[str]) -> Path:
    """``<data_dir>/beir/<name>-<hash of what is withheld>``: the full and the withheld corpus get their own."""
    digest = hashlib.sha1(",".join(sorted(gone)).encode()).hexdigest()[:8]
    return settings.data_dir / "beir" / f"{bset.name}-{digest}"


def open_assistant(bset: BeirSet, data_dir: Path, gone: set[str] = frozenset(), settings: Settings | None = None,
                   progress: bool | None = None) -> tuple[Assistant, dict[str, str]]:
    """An Assistant over the corpus minus ``gone``, ingested into ``data_dir`` (reused when unchanged), and the
    map from BEIR doc id to catalog paper id (near-duplicate docs merged into one paper share it)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    kept = [d for d in bset.corpus.values() if d.id not in gone and d.text.strip()]
    corpus = data_dir / "corpus.jsonl"
    text = "".join(json.dumps({"title": d.title, "abstract": d.text}, ensure_ascii=False) + "\n" for d in kept)
    if not corpus.is_file() or corpus.read_text(encoding="utf-8") != text:
        corpus.write_text(text, encoding="utf-8")
    base = settings or Settings()
    assistant = Assistant(base.model_copy(update={"data_dir": data_dir / "index"}))
    report = assistant.ingest(corpus, progress=progress)
    if report.failed:
        raise ValueError(f"{len(report.failed)} corpus records rejected, first: {report.failed[0]}")
    where = str(corpus)
    doc_to_paper = {kept[s.line - 1].id: p.id for p in assistant.papers() for s in p.sources if s.path == where}
    return assistant, doc_to_paper


def rationale_hit(answer_text: str, rationales: list[str]) -> bool:
    """Whether some sentence of the answer contains at least RATIONALE_OVERLAP of some rationale sentence's
    word tokens (the answer states the evidence sentence, copied or lightly reworded)."""
    said = [set(word_tokens(s)) for s in split_sentences(answer_text)]
    for rationale in rationales:
        tokens = set(word_tokens(rationale))
        if tokens and any(len(tokens & s) / len(tokens) >= RATIONALE_OVERLAP for s in said):
            return True
    return False


def _auc(positive: list[float], negative: list[float]) -> float | None:
    """P(a random positive scores above a random negative), ties half."""
    if not positive or not negative:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def _record(q: BeirQuery, bset: BeirSet, gold: list[set[str]], withheld: bool, ranked: list[str],
            answer: Answer, ask_ms: float) -> dict:
    relevant = set().union(*gold) if gold else set()
    cited = [c.paper.id for c in answer.citations]
    rationale = None
    if gold and not answer.abstained:
        texts = [bset.corpus[d].sentences[i] for d, idx in q.rationales.items() if bset.corpus[d].sentences
                 for i in idx if i < len(bset.corpus[d].sentences)]
        rationale = rationale_hit(answer.text, texts) if texts else None
    return {
        "id": q.id, "text": q.text, "answerable": bool(gold), "withheld": withheld,
        "rank": next((i for i, pid in enumerate(ranked, 1) if pid in relevant), None) if gold else None,
        "abstained": answer.abstained, "outcome": answer.outcome, "confidence": answer.confidence,
        "cited": cited, "cited_relevant": sorted(set(cited) & relevant), "relevant": sorted(relevant),
        "rationale_hit": rationale, "ask_ms": round(ask_ms, 2),
        "ndcg@10": ndcg_at(ranked, gold, K) if gold else None, "recall@10": recall_at(ranked, gold, K) if gold else None,
        "mrr@10": reciprocal_rank(ranked, gold, K) if gold else None, "hit@1": hit_at(ranked, gold, 1) if gold else None,
        "hit@5": hit_at(ranked, gold, 5) if gold else None,
    }


def _retrieval(records: list[dict]) -> dict:
    rows = [r for r in records if r["answerable"]]
    return {"queries": len(rows), **{k: mean([r[k] for r in rows]) for k in ("ndcg@10", "recall@10", "mrr@10",
                                                                               "hit@1", "hit@5")}}


def _summary(records: list[dict]) -> dict:
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    answered = [r for r in answerable if not r["abstained"]]
    cited_all = [pid for r in answered for pid in r["cited"]]
    rationale = [r["rationale_hit"] for r in answered if r["rationale_hit"] is not None]
    conf_a = [r["confidence"] for r in answerable if r["confidence"] is not None]
    conf_u = [r["confidence"] for r in unanswerable if r["confidence"] is not None]
    return {
        "answers": {
            "answerable": len(answerable), "answered": len(answered),
            "answer_rate": len(answered) / len(answerable) if answerable else None,
            "false_abstention": 1 - len(answered) / len(answerable) if answerable else None,
            "low_confidence": sum(r["outcome"] == "low_confidence" for r in answered),
            "cites_relevant": sum(bool(r["cited_relevant"]) for r in answerable) / len(answerable) if answerable else None,
            "rationale_hit": sum(rationale) / len(rationale) if rationale else None, "rationale_checked": len(rationale),
            "ask_p50_ms": percentile([r["ask_ms"] for r in records], 0.5),
        },
        "citations": {
            "precision": sum(pid in set(r["relevant"]) for r in answered for pid in r["cited"]) / len(cited_all)
            if cited_all else None,
            "recall": mean([len(r["cited_relevant"]) / len(r["relevant"]) for r in answered]),
            "per_answer": statistics.fmean(len(r["cited"]) for r in answered) if answered else None,
        },
        "abstention": {
            "unanswerable": len(unanswerable), "abstained": sum(r["abstained"] for r in unanswerable),
            "rate": mean([float(r["abstained"]) for r in unanswerable]),
            "withheld_queries": sum(r["withheld"] for r in records),
            "withheld_rate": mean([float(r["abstained"]) for r in unanswerable if r["withheld"]]),
            "confidence_auc": _auc(conf_a, conf_u),
        },
    }


def _peers(assistant: Assistant, bset: BeirSet, golds: dict[str, list[set[str]]], limit: int | None) -> dict:
    from eval.baselines import bm25_per_paper, dense_per_paper

    out = {}
    queries = [q for q in bset.queries if golds.get(q.id)][:limit]
    for name, build in (("bm25", bm25_per_paper), ("dense", dense_per_paper)):
        rank = build(assistant, K)
        rows = []
        for q in queries:
            ranked = rank(q.text)
            gold = golds[q.id]
            rows.append({"answerable": True, "ndcg@10": ndcg_at(ranked, gold, K), "recall@10": recall_at(ranked, gold, K),
                         "mrr@10": reciprocal_rank(ranked, gold, K), "hit@1": hit_at(ranked, gold, 1),
                         "hit@5": hit_at(ranked, gold, 5)})
        out[name] = _retrieval(rows)
    return out


def run_beir_eval(bset: BeirSet, assistant: Assistant, doc_to_paper: dict[str, str], withheld: set[str], *,
                  answerer: str | None = None, limit: int | None = None, baselines: bool = True,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """The report (JSON-ready): setup, retrieval (ours and peers), answers, citations, abstention, per query."""
    engine = assistant.answerer(answerer).name
    queries = bset.queries[:limit] if limit else bset.queries
    golds = {q.id: [{doc_to_paper[d]} for d in sorted(q.relevant) if d in doc_to_paper] for q in bset.queries}
    records = []
    for number, q in enumerate(queries, 1):
        ranked = [h.paper.id for h in assistant.search(q.text, k=K)]
        start = time.perf_counter()
        answer = assistant.ask(q.text, answerer=engine)
        records.append(_record(q, bset, golds[q.id], q.id in withheld, ranked, answer,
                               (time.perf_counter() - start) * 1000))
        if progress:
            progress(number, len(queries))
    report = {
        "schema": "rag-eval-beir/1",
        "setup": {"dataset": bset.name, "corpus": len(bset.corpus), "ingested_papers": len(assistant.papers()),
                  "queries": len(records), "withheld_fraction_of_queries": round(len(withheld) / len(bset.queries), 3)
                  if bset.queries else 0, "answerer": engine, "k": K,
                  "protocol": (__doc__ or "").split("Withheld-evidence protocol: ")[-1].split("\n\n")[0]},
        "retrieval": {"ours": _retrieval(records)},
        **_summary(records),
        "queries": records,
    }
    if baselines:
        report["retrieval"].update(_peers(assistant, bset, golds, limit))
    return report


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(report: dict) -> str:
    """The BEIR report as a Markdown summary."""
    s, a, c, ab = report["setup"], report["answers"], report["citations"], report["abstention"]
    lines = [f"# rag eval --beir: {s['dataset']}", "",
             f"{s['queries']} queries over {s['ingested_papers']} ingested papers (corpus {s['corpus']}; "
             f"{s['withheld_fraction_of_queries']:.0%} of the queries had their papers withheld); "
             f"answerer {s['answerer']}.", "",
             "| retrieval (answerable queries) | nDCG@10 | recall@10 | MRR@10 | hit@1 | hit@5 |", "|---|---|---|---|---|---|"]
    for name, r in report["retrieval"].items():
        lines.append(f"| {name} | {_num(r['ndcg@10'])} | {_num(r['recall@10'])} | {_num(r['mrr@10'])} | "
                     f"{_num(r['hit@1'])} | {_num(r['hit@5'])} |")
    lines += ["", "| answers | |", "|---|---|",
              f"| answer rate (answerable) | {_pct(a['answer_rate'])} ({a['answered']}/{a['answerable']}; "
              f"{a['low_confidence']} with the low-confidence notice) |",
              f"| false abstention | {_pct(a['false_abstention'])} |",
              f"| answerable queries whose answer cites a relevant paper | {_pct(a['cites_relevant'])} |",
              f"| citation precision / recall (answered) | {_num(c['precision'])} / {_num(c['recall'])} "
              f"({_num(c['per_answer'])} papers cited per answer) |",
              f"| rationale sentence stated (answered, {a['rationale_checked']} with rationales) | "
              f"{_pct(a['rationale_hit'])} |",
              f"| unanswerable queries abstained | {_pct(ab['rate'])} ({ab['abstained']}/{ab['unanswerable']}); "
              f"withheld queries {_pct(ab['withheld_rate'])} |",
              f"| confidence AUC, answerable vs unanswerable | {_num(ab['confidence_auc'])} |",
              f"| ask p50 | {a['ask_p50_ms']:.0f} ms |" if a["ask_p50_ms"] is not None else "| ask p50 | – |"]
    return "\n".join(lines) + "\n"


def write_report(report: dict, folder: str | Path) -> list[Path]:
    """report.json, report.md, retrieval.png and (with unanswerable queries) confidence.png into ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "report.json", folder / "report.md", folder / "retrieval.png"]
    paths[0].write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    names, keys = list(report["retrieval"]), ("ndcg@10", "recall@10", "mrr@10", "hit@1")
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        ax.bar([x + i * width for x in range(len(keys))], [report["retrieval"][name][k] or 0.0 for k in keys], width,
               label=name)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(keys))], keys)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Retrieval on {report['setup']['dataset']}: hybrid vs peers")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    answerable = [q["confidence"] for q in report["queries"] if q["answerable"] and q["confidence"] is not None]
    unanswerable = [q["confidence"] for q in report["queries"] if not q["answerable"] and q["confidence"] is not None]
    if answerable or unanswerable:
        fig, ax = plt.subplots(figsize=(8, 4))
        bins = [i / 40 for i in range(41)]
        ax.hist(answerable, bins=bins, alpha=0.6, label=f"answerable ({len(answerable)})")
        if unanswerable:
            ax.hist(unanswerable, bins=bins, alpha=0.6, label=f"evidence withheld ({len(unanswerable)})")
        ax.set_xlabel("answerability confidence")
        ax.set_ylabel("queries")
        ax.set_title("Confidence by query")
        ax.legend()
        fig.tight_layout()
        paths.append(folder / "confidence.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
