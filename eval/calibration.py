"""Fit the answerability model (rag/answering/answerability.py) and read its trade-off curve.

Examples are (features, answerable) pairs from questions whose answerability is known: our question set
(unanswerable questions are marked) and BEIR claims under the withheld-evidence protocol (a claim whose
papers were withheld is unanswerable). The fit is scikit-learn's logistic regression on standardised
features; the artefact stores the scaler and coefficients as plain numbers, so answering needs no
scikit-learn. Cut points are chosen on out-of-fold confidences, never on the examples a model was fit on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.answering.answerability import FEATURES


@dataclass
class Example:
    """One question with its evidence features and whether the collection answers it."""

    source: str  # which set it came from ("own", "scifact", …): cut-point limits apply per source
    question: str
    features: dict[str, float]
    answerable: bool
    weight: float = 1.0


def _matrix(examples: Sequence[Example]):
    import numpy as np

    return (np.array([[e.features[f] for f in FEATURES] for e in examples], dtype=float),
            np.array([int(e.answerable) for e in examples]), np.array([e.weight for e in examples], dtype=float))


def _model(C: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))


def fit(examples: Sequence[Example], C: float = 1.0) -> dict:
    """The artefact's numbers (features, mean, scale, coef, intercept) of a model fit on all examples."""
    X, y, w = _matrix(examples)
    pipe = _model(C)
    pipe.fit(X, y, logisticregression__sample_weight=w)
    scaler, lr = pipe.named_steps["standardscaler"], pipe.named_steps["logisticregression"]
    return {"features": list(FEATURES), "mean": [float(x) for x in scaler.mean_],
            "scale": [float(x) for x in scaler.scale_], "coef": [float(x) for x in lr.coef_[0]],
            "intercept": float(lr.intercept_[0])}


def out_of_fold(examples: Sequence[Example], folds: int = 5, C: float = 1.0, seed: int = 0) -> list[float]:
    """Each example's confidence from a model fit without it (stratified k-fold by source and label)."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    X, y, w = _matrix(examples)
    strata = np.array([f"{e.source}:{int(e.answerable)}" for e in examples])
    out = np.zeros(len(examples))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, strata):
        pipe = _model(C)
        pipe.fit(X[train], y[train], logisticregression__sample_weight=w[train])
        out[test] = pipe.predict_proba(X[test])[:, 1]
    return [float(p) for p in out]


def curve(examples: Sequence[Example], confidences: Sequence[float], thresholds: Sequence[float]) -> list[dict]:
    """Per abstention threshold and source: false abstention (answerable abstained) and true abstention
    (unanswerable abstained), as rates and counts."""
    rows = []
    for t in thresholds:
        row: dict = {"threshold": round(float(t), 4)}
        for source in sorted({e.source for e in examples}):
            pairs = [(c, e.answerable) for e, c in zip(examples, confidences, strict=True) if e.source == source]
            ans = [c for c, ok in pairs if ok]
            una = [c for c, ok in pairs if not ok]
            row[source] = {
                "false_abstained": sum(c < t for c in ans), "answerable": len(ans),
                "abstained": sum(c < t for c in una), "unanswerable": len(una),
                "false_abstention": sum(c < t for c in ans) / len(ans) if ans else None,
                "true_abstention": sum(c < t for c in una) / len(una) if una else None,
            }
        rows.append(row)
    return rows


def choose_threshold(rows: Sequence[dict], max_false: dict[str, float]) -> dict:
    """The highest threshold whose false-abstention rate stays within ``max_false[source]`` for every source
    (abstaining as much as the budget allows); the lowest row when none does."""
    ok = [r for r in rows if all((r[s]["false_abstention"] or 0.0) <= limit for s, limit in max_false.items())]
    return max(ok, key=lambda r: r["threshold"]) if ok else min(rows, key=lambda r: r["threshold"])
