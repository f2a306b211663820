"""Write an eval report: report.json, report.md, and PNG plots; compare with an earlier report."""

from __future__ import annotations

import json
from pathlib import Path

PLOT_METRICS = ("hit@5", "mrr", "citation_recall", "key_fact_recall", "supported_rate", "abstention_rate")


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    """{"retrieval.hit@5": 0.95, …} for every numeric leaf."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    return out


def compare(old: dict, new: dict) -> dict:
    """Metric deltas (new - old) and the questions that started or stopped failing."""
    before, after = flatten(old.get("metrics", {})), flatten(new.get("metrics", {}))
    deltas = {k: {"old": before[k], "new": after[k], "delta": after[k] - before[k]}
              for k in after if k in before}
    old_failed, new_failed = set(old.get("failures", [])), set(new.get("failures", []))
    return {
        "old_created": old.get("created"),
        "metrics": deltas,
        "newly_failing": sorted(new_failed - old_failed),
        "fixed": sorted(old_failed - new_failed),
        "only_in_old": sorted(set(before) - set(after)),
    }


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _ms(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(report: dict) -> str:
    """A human summary of the report."""
    m, s = report["metrics"], report["setup"]
    r, c, g, a, ab, lat = (m["retrieval"], m["citations"], m["grounding"], m["answers"], m["abstention"],
                           m["latency_ms"])
    lines = [
        "# Evaluation report", "",
        f"{s['questions']} questions ({s['answerable']} answerable, {s['unanswerable']} unanswerable) over "
        f"{s['papers']} papers; answerer `{s['answerer']}`, embedder `{s['embedder']}`, top-k {s['top_k']}, "
        f"grounding `{s['grounding']}`. {report['created']}, {s['machine']}.", "",
        "## Summary", "",
        "| area | figures |", "|---|---|",
        f"| retrieval (paper level, {r['questions']} answerable) | hit@1 {_fmt(r['hit@1'])}, hit@3 {_fmt(r['hit@3'])}, "
        f"hit@5 {_fmt(r['hit@5'])}, MRR {_fmt(r['mrr'])}, nDCG@5 {_fmt(r['ndcg@5'])} |",
        f"| multi-paper recall ({r['multi_questions']} questions) | recall@5 {_fmt(r['recall@5_multi'])}, "
        f"recall@10 {_fmt(r['recall@10_multi'])} |",
        f"| citations | recall {_fmt(c['recall'])}, precision {_fmt(c['precision'])} (gold only "
        f"{_fmt(c['precision_gold_only'])}), dangling {c['dangling']} |",
        f"| grounding ({g['sentences']} sentences) | supported {g['supported']} ({_fmt(g['supported_rate'])}), "
        f"partial {g['partial']}, unsupported {g['unsupported']} |",
        f"| answers | key-fact recall {_fmt(a['key_fact_recall'])}, all key facts {_fmt(a['all_key_facts'])}, "
        f"answerer errors {a['errors']} |",
        f"| abstention | precision {_fmt(ab['precision'])}, recall {_fmt(ab['recall'])}; answerable abstained "
        f"{_fmt(ab['answerable_abstention_rate'])}, unanswerable abstained {_fmt(ab['unanswerable_abstention_rate'])} |",
        f"| latency | search p50 {_ms(lat['search_p50'])} ms, p95 {_ms(lat['search_p95'])} ms; ask p50 "
        f"{_ms(lat['ask_p50'])} ms, p95 {_ms(lat['ask_p95'])} ms |", "",
        "## Gates", "", "| gate | value | needs | |", "|---|---|---|---|",
    ]
    for name, gate in report["gates"].items():
        lines.append(f"| {name} | {_fmt(gate['value'])} | {gate['op']} {gate['threshold']} | "
                     f"{'pass' if gate['passed'] else '**FAIL**'} |")
    lines += ["", "## By question kind", "",
              "| kind | n | hit@5 | MRR | citation recall | key-fact recall | supported | abstained | failed |",
              "|---|---|---|---|---|---|---|---|---|"]
    for kind, k in report["by_kind"].items():
        lines.append(f"| {kind} | {k['questions']} | {_fmt(k['hit@5'])} | {_fmt(k['mrr'])} | "
                     f"{_fmt(k['citation_recall'])} | {_fmt(k['key_fact_recall'])} | {_fmt(k['supported_rate'])} | "
                     f"{_fmt(k['abstention_rate'])} | {k['failed']} |")
    if "baselines" in report:
        lines += _baselines_md(report)
    if "comparison" in report:
        lines += _comparison_md(report["comparison"])
    plots = ["by_kind.png", "latency.png"] + (["baselines.png"] if "baselines" in report else [])
    lines += ["", "## Plots", ""] + [f"![{p[:-4]}]({p})" for p in plots]
    lines += ["", f"## Failed questions ({len(report['failures'])})", "",
              "| id | kind | question | why | retrieved (top 5, * = gold) | cited |", "|---|---|---|---|---|---|"]
    for q in report["questions"]:
        if q["failures"]:
            retrieved = "; ".join(("*" if h["gold"] else "") + h["label"] for h in q["retrieved"])
            cited = "; ".join(f"[{x['number']}] " + ("*" if x["gold"] else "") + x["label"] for x in q["cited"])
            lines.append(f"| {q['id']} | {q['kind']} | {_cell(q['question'])} | {_cell('; '.join(q['failures']))} | "
                         f"{_cell(retrieved)} | {_cell(cited or ('abstained' if q['abstained'] else '–'))} |")
    lines += ["", "## Limits", "", report["limits"]["grounding"], ""]
    return "\n".join(lines)


def _baselines_md(report: dict) -> list[str]:
    b = report["baselines"]
    ours = report["metrics"]
    lines = ["", f"## Baselines (same {b['questions']} answerable questions, same machine)", "",
             "| recipe | hit@1 | hit@5 | MRR | nDCG@5 | recall@5 multi | search p50 ms |", "|---|---|---|---|---|---|---|"]
    rows = [("this project (hybrid)", ours)] + [(n, b[n]) for n in ("llamaindex-starter", "bm25") if n in b]
    for name, data in rows:
        x = data["retrieval"]
        lines.append(f"| {name} | {_fmt(x['hit@1'])} | {_fmt(x['hit@5'])} | {_fmt(x['mrr'])} | {_fmt(x['ndcg@5'])} | "
                     f"{_fmt(x['recall@5_multi'])} | {_ms(data['latency_ms']['search_p50'])} |")
    lines += ["", "Ours / theirs (quality: above 1 is better for us; search p50: below 1 is faster for us):", "", "| recipe | hit@1 | hit@5 | MRR | nDCG@5 | recall@5 multi | search p50 |",
              "|---|---|---|---|---|---|---|"]
    for name in ("llamaindex-starter", "bm25"):
        if name in b:
            ratio = b[name]["ratio"]
            lines.append(f"| {name} | " + " | ".join(_fmt(ratio.get(k)) for k in
                                                     ("hit@1", "hit@5", "mrr", "ndcg@5", "recall@5_multi",
                                                      "search_p50")) + " |")
    lines += ["", "Notes: " + " ".join(b["notes"].split())]
    return lines


def _comparison_md(comparison: dict) -> list[str]:
    lines = ["", f"## Compared with the report of {comparison.get('old_created')}", "",
             "| metric | old | new | delta |", "|---|---|---|---|"]
    for name, d in comparison["metrics"].items():
        if d["delta"]:
            lines.append(f"| {name} | {_fmt(d['old'])} | {_fmt(d['new'])} | {d['delta']:+.3f} |")
    lines += ["", f"Newly failing: {', '.join(comparison['newly_failing']) or 'none'}. "
                  f"Fixed: {', '.join(comparison['fixed']) or 'none'}."]
    return lines


def plot(report: dict, folder: Path) -> list[Path]:
    """by_kind.png (metric bars per question kind), latency.png (distributions), baselines.png if any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    kinds = list(report["by_kind"])
    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(kinds)), 4.5))
    width = 0.8 / len(PLOT_METRICS)
    for i, metric in enumerate(PLOT_METRICS):
        values = [report["by_kind"][k][metric] or 0.0 for k in kinds]
        ax.bar([x + i * width for x in range(len(kinds))], values, width, label=metric)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(kinds))], kinds)
    ax.set_ylim(0, 1.05)
    ax.set_title("Metrics by question kind")
    ax.legend(fontsize=8, ncol=len(PLOT_METRICS), loc="upper center", bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    paths.append(folder / "by_kind.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    search = [q["search_ms"] for q in report["questions"]]
    ask = [q["ask_ms"] for q in report["questions"]]
    top = max(search + ask + [1.0])
    bins = [top * i / 40 for i in range(41)]
    ax.hist(search, bins=bins, alpha=0.6, label=f"search (p50 {_ms(report['metrics']['latency_ms']['search_p50'])} ms)")
    ax.hist(ask, bins=bins, alpha=0.6, label=f"ask (p50 {_ms(report['metrics']['latency_ms']['ask_p50'])} ms)")
    ax.set_xlabel("ms per question")
    ax.set_ylabel("questions")
    ax.set_title("Latency distribution")
    ax.legend()
    fig.tight_layout()
    paths.append(folder / "latency.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    if "baselines" in report:
        names = ["this project"] + [n for n in ("llamaindex-starter", "bm25") if n in report["baselines"]]
        data = [report["metrics"]] + [report["baselines"][n] for n in names[1:]]
        keys = ("hit@1", "hit@5", "mrr", "ndcg@5")
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.8 / len(names)
        for i, (name, d) in enumerate(zip(names, data, strict=True)):
            ax.bar([x + i * width for x in range(len(keys))], [d["retrieval"][k] or 0.0 for k in keys], width,
                   label=name)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(keys))], keys)
        ax.set_ylim(0, 1.05)
        ax.set_title("Retrieval: this project vs baselines")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(folder / "baselines.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def write_report(report: dict, folder: str | Path) -> list[Path]:
    """report.json, report.md and the plots into ``folder`` (created); returns the paths written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "report.json", folder / "report.md"]
    paths[0].write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    paths[1].write_text(markdown(report), encoding="utf-8")
    return paths + plot(report, folder)
