"""eval/calibration.py: the fit exported as plain numbers predicts what scikit-learn predicts; curves and cut points."""

from __future__ import annotations

import random

import pytest

from eval.calibration import Example, choose_threshold, curve, fit, out_of_fold
from rag.answering.answerability import FEATURES, AnswerabilityModel

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is in the test extra (pip install -e '.[test]')")


def examples(n: int = 200, seed: int = 1) -> list[Example]:
    """Answerable questions have high coverage; unanswerable ones low; the rest is noise."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ok = i % 3 != 0
        features = {f: rng.random() for f in FEATURES}
        features["sentence_coverage"] = rng.uniform(0.5, 1.0) if ok else rng.uniform(0.0, 0.6)
        out.append(Example("own" if i % 2 else "scifact", f"q{i}", features, ok))
    return out


def test_exported_model_matches_sklearn_probabilities():
    data = examples()
    numbers = fit(data)
    model = AnswerabilityModel(version="t", features=tuple(numbers["features"]), mean=tuple(numbers["mean"]),
                               scale=tuple(numbers["scale"]), coef=tuple(numbers["coef"]),
                               intercept=numbers["intercept"], abstain_below=0.5, notice_below=0.6)
    from eval.calibration import _matrix, _model

    X, y, w = _matrix(data)
    pipe = _model(1.0).fit(X, y, logisticregression__sample_weight=w)
    expected = pipe.predict_proba(X)[:, 1]
    ours = [model.confidence(e.features) for e in data]
    assert max(abs(a - b) for a, b in zip(ours, expected, strict=True)) < 1e-9
    coverage = FEATURES.index("sentence_coverage")
    assert numbers["coef"][coverage] > 1.0  # the one informative feature carries the weight


def test_out_of_fold_curve_and_threshold_choice():
    data = examples()
    oof = out_of_fold(data, folds=4)
    assert len(oof) == len(data) and all(0.0 <= p <= 1.0 for p in oof)
    rows = curve(data, oof, [i / 20 for i in range(20)])
    assert rows[0]["own"]["false_abstained"] == 0  # threshold 0 abstains on nothing
    assert all(a["scifact"]["abstained"] <= b["scifact"]["abstained"] for a, b in zip(rows, rows[1:]))
    chosen = choose_threshold(rows, {"own": 0.05, "scifact": 0.05})
    assert chosen["own"]["false_abstention"] <= 0.05 and chosen["scifact"]["false_abstention"] <= 0.05
    higher = [r for r in rows if r["threshold"] > chosen["threshold"]]
    assert all(r["own"]["false_abstention"] > 0.05 or r["scifact"]["false_abstention"] > 0.05 for r in higher)
    assert chosen["scifact"]["true_abstention"] > 0.5  # separable data: most unanswerable ones abstained
