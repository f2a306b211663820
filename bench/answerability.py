"""Fit the answerability model and print its trade-off curve (false abstention vs withheld-evidence abstention).

Examples: our question set over seeds/ (84 answerable, 22 unanswerable), SciFact-train claims under the
withheld-evidence protocol (the cited papers of a fixed random 30% of claims are left out of the ingested
corpus: claims left without any cited paper are unanswerable, the rest answerable), and each set's questions
asked of the other collection (off-topic there: unanswerable; "cross"). Confidences on the curve are out-of-fold (5-fold),
so the printed trade-off is what unseen questions get. The chosen cut points: abstain below the highest
threshold whose out-of-fold false abstention stays within 5% on SciFact and 2/84 on our set; a low-confidence
notice below the threshold that would give 15% false abstention on SciFact.

Usage:
  python bench/answerability.py --scifact ../shared/benchmarks/scifact [--data-dir DIR] [--write]
--write stores the model fit on all examples in rag/answering/answerability_v1.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eval.calibration import Example, choose_threshold, curve, fit, out_of_fold  # noqa: E402
from eval.dataset import load_questions  # noqa: E402
from rag import Assistant, Settings  # noqa: E402
from rag.answering.answerability import ARTEFACT  # noqa: E402

OWN_WEIGHT = 3.0  # our set is small; its 22 unanswerable near-topic questions must still count
CROSS_WEIGHT = 0.5
LIMITS = {"scifact": 0.05, "own": 2 / 84}
NOTICE_FALSE = 0.15


def seeds_assistant(data_dir: Path) -> Assistant:
    assistant = Assistant(Settings(data_dir=data_dir))
    if not assistant.papers():
        assistant.ingest(ROOT / "seeds", progress=False)
    return assistant


def own_examples(assistant: Assistant, weight: float) -> list[Example]:
    return [Example("own", q.question, assistant.assess(q.question).features, q.answerable, weight)
            for q in load_questions()]


def cross_examples(assistant: Assistant, questions: list[str], weight: float) -> list[Example]:
    """Questions of one collection asked of the other: off-topic there, so unanswerable. They teach the model
    what a question about something else entirely looks like in each collection."""
    return [Example("cross", q, assistant.assess(q).features, False, weight) for q in questions]


def _beir(path: Path, data_dir: Path, fraction: float, seed: int):
    """(assistant over the corpus minus the withheld claims' papers, [(claim, answerable)])."""
    from eval.beir import load_beir, open_assistant, withheld_docs, withheld_queries

    bset = load_beir(path)
    gone = withheld_docs(bset, withheld_queries(bset, fraction, seed))
    assistant, _ = open_assistant(bset, data_dir, gone)
    return assistant, [(q.text, bool(q.relevant - gone)) for q in bset.queries]


def scifact_examples(path: Path, data_dir: Path, fraction: float, seed: int,
                     seeds: Assistant) -> list[Example]:
    from tqdm import tqdm

    assistant, claims = _beir(path, data_dir, fraction, seed)
    out = [Example("scifact", text, assistant.assess(text).features, answerable)
           for text, answerable in tqdm(claims, desc="SciFact claims", unit="claim")]
    out += cross_examples(assistant, [q.question for q in load_questions()], CROSS_WEIGHT)
    out += cross_examples(seeds, [text for text, _ in claims[::4]], CROSS_WEIGHT)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scifact", type=Path, help="BEIR-format SciFact train split (../shared/benchmarks/scifact)")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/rag-answerability"))
    parser.add_argument("--scifact-data-dir", type=Path,
                        help="where SciFact is ingested (default DATA_DIR/scifact); `rag eval --beir` dirs can be reused")
    parser.add_argument("--withhold", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--own-weight", type=float, default=OWN_WEIGHT, help="weight of our questions in the fit")
    parser.add_argument("--write", action="store_true", help=f"write the fitted model to {ARTEFACT.name}")
    parser.add_argument("--examples", type=Path, help="cache of computed features (JSON): reused when present")
    args = parser.parse_args()

    start = time.perf_counter()
    if args.examples and args.examples.exists():
        examples = [Example(**e) for e in json.loads(args.examples.read_text())]
        for e in examples:
            e.weight = {"own": args.own_weight, "cross": CROSS_WEIGHT}.get(e.source, 1.0)
    else:
        seeds = seeds_assistant(args.data_dir / "seeds")
        examples = own_examples(seeds, args.own_weight)
        if args.scifact:
            examples += scifact_examples(args.scifact, args.scifact_data_dir or args.data_dir / "scifact", args.withhold, args.seed, seeds)
        if args.examples:
            args.examples.write_text(json.dumps([e.__dict__ for e in examples]))
    print(f"{len(examples)} examples in {time.perf_counter() - start:.0f} s", file=sys.stderr)

    oof = out_of_fold(examples, C=args.C, seed=args.seed)
    rows = curve(examples, oof, [i / 100 for i in range(0, 96, 1)])
    sources = sorted({e.source for e in examples})
    print("Out-of-fold trade-off (abstain below threshold): answerable abstained | unanswerable abstained")
    print("threshold | " + " | ".join(sources))

    def cell(c: dict) -> str:
        parts = [f"{c['false_abstained']}/{c['answerable']}" if c["answerable"] else "",
                 f"{c['abstained']}/{c['unanswerable']}" if c["unanswerable"] else ""]
        return " ; ".join(p for p in parts if p)

    for r in rows[::5]:
        print(f"{r['threshold']:.2f} | " + " | ".join(cell(r[s]) for s in sources))
    limits = {s: v for s, v in LIMITS.items() if s in sources}
    chosen = choose_threshold(rows, limits)
    notice = choose_threshold(rows, {s: NOTICE_FALSE for s in sources if s == "scifact"} or {"own": 0.1})
    notice_at = max(notice["threshold"], chosen["threshold"])
    print(f"\nchosen abstain_below {chosen['threshold']:.2f}: " + "; ".join(
        f"{s} false abstention {chosen[s]['false_abstained']}/{chosen[s]['answerable']}, "
        f"unanswerable abstained {chosen[s]['abstained']}/{chosen[s]['unanswerable']}" for s in sources))
    print(f"notice_below {notice_at:.2f}")

    model = fit(examples, C=args.C)
    print("coefficients (standardised features):")
    for name, c in sorted(zip(model["features"], model["coef"], strict=True), key=lambda x: -abs(x[1])):
        print(f"  {name:18s} {c:+.3f}")
    if args.write:
        import sklearn

        artefact = {"version": "v1", **model, "abstain_below": chosen["threshold"], "notice_below": notice_at,
                    "trained_on": {
                        "created": datetime.now(UTC).isoformat(timespec="seconds"),
                        "sets": {s: {"answerable": sum(e.answerable for e in examples if e.source == s),
                                     "unanswerable": sum(not e.answerable for e in examples if e.source == s)}
                                 for s in sources},
                        "protocol": f"SciFact-train, cited papers of {args.withhold:.0%} of claims withheld "
                                    f"(seed {args.seed}); own set weight {args.own_weight}",
                        "fit": f"scikit-learn {sklearn.__version__} LogisticRegression(C={args.C}) on standardised "
                               "features",
                        "out_of_fold_at_cut": {s: chosen[s] for s in sources},
                    }}
        ARTEFACT.write_text(json.dumps(artefact, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {ARTEFACT}")


if __name__ == "__main__":
    main()
