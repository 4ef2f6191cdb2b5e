"""openset: the calibrated naming rule on generated descriptors (known clusters + strangers)."""
from __future__ import annotations

import numpy as np
import pytest

from vision_lib.openset import OpenSetRule


def _people(rng, n_people: int, n_faces: int, dim: int = 32, spread: float = 0.35):
    """Unit-norm-ish identity centres, faces scattered around them (like face descriptors)."""
    centres = rng.normal(size=(n_people, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    X = np.concatenate([c + rng.normal(scale=spread / np.sqrt(dim), size=(n_faces, dim)) for c in centres])
    y = np.repeat([f"p{i}" for i in range(n_people)], n_faces)
    return X, y


def _named(rule: OpenSetRule, X: np.ndarray) -> np.ndarray:
    """Faces the rule lets a classifier name (each as its closest known person)."""
    return rule.accept(rule.scores(X).min(axis=1))


@pytest.mark.parametrize("score", ["centroid", "knn"])
def test_strangers_are_named_at_about_the_requested_rate(rng, score):
    # Many known people: the leave-one-person-out strangers sample how close two identities come.
    X, y = _people(rng, 40, 20)
    # Strangers: people the rule never saw, drawn like the known ones.
    S, _ = _people(np.random.default_rng(7), 400, 5)
    rule = OpenSetRule(far=0.05, score=score).fit(X, y)
    assert rule.n_strangers_ == {"other_people": len(X), "supplied": 0}
    assert rule.far_ <= 0.05 and rule.far_at(rule.threshold_ - 1e-9) <= 0.05
    rate = _named(rule, S).mean()
    assert 0.01 <= rate <= 0.10, rate  # roughly the requested 5%, on strangers it never saw
    fresh = np.concatenate([c + rng.normal(scale=0.35 / np.sqrt(32), size=(20, 32))
                            for c in [X[y == f"p{i}"].mean(axis=0) for i in range(40)]])
    assert _named(rule, fresh).mean() > 0.5  # known people are still named
    strict = OpenSetRule(far=0.01, score=score).fit(X, y)
    assert strict.threshold_ < rule.threshold_ and _named(strict, S).mean() <= rate


def test_a_rule_calibrated_without_strangers_would_fail():
    """A deliberately wrong rule (threshold from the known people's own faces, as a fixed
    'same-person distance' is) names far more strangers than the requested rate."""
    rng = np.random.default_rng(3)
    # Loose identities (as web photos are): the own faces' spread reaches towards other people.
    X, y = _people(rng, 40, 20, spread=0.9)
    S, _ = _people(np.random.default_rng(8), 400, 5, spread=0.9)
    rule = OpenSetRule(far=0.02).fit(X, y)
    wrong = OpenSetRule(far=0.02).fit(X, y)
    wrong.threshold_ = float(np.quantile(wrong.genuine_scores_, 0.98))  # "accept 98% of the own faces"
    assert _named(rule, S).mean() <= 0.06
    assert _named(wrong, S).mean() > 3 * max(_named(rule, S).mean(), 0.02)


def test_supplied_strangers_tighten_the_rule_when_they_come_closer():
    rng = np.random.default_rng(4)
    X, y = _people(rng, 4, 40, spread=0.3)
    # Look-alikes: strangers near person p0 (the other known people are far from each other).
    lookalikes = X[y == "p0"][:30] + rng.normal(scale=0.25 / np.sqrt(32), size=(30, 32)) + 0.15 / np.sqrt(32)
    alone = OpenSetRule(far=0.05).fit(X, y)
    both = OpenSetRule(far=0.05).fit(X, y, strangers=lookalikes)
    assert both.n_strangers_ == {"other_people": len(X), "supplied": 30}
    assert both.threshold_ < alone.threshold_
    assert _named(both, lookalikes).mean() < _named(alone, lookalikes).mean()


def test_far_at_is_the_conservative_share_of_strangers_as_close():
    X, y = _people(np.random.default_rng(5), 3, 10)
    rule = OpenSetRule(far=0.5).fit(X, y)
    n = len(rule.impostor_scores_)
    assert rule.far_at(-1.0) == pytest.approx(1 / (n + 1))  # never 0
    assert rule.far_at(rule.impostor_scores_[-1] + 1) == pytest.approx(1.0)
    assert rule.far_at(rule.impostor_scores_[4]) == pytest.approx(6 / (n + 1))
    # Too few strangers for 1%: the closest stranger is the threshold and far_ says what is promised.
    tiny = OpenSetRule(far=0.01).fit(X, y)
    assert tiny.threshold_ == rule.impostor_scores_[0] and tiny.far_ == pytest.approx(1 / (n + 1))
    assert not tiny.accept(tiny.impostor_scores_).any()


def test_bad_parameters_are_refused():
    X, y = _people(np.random.default_rng(6), 2, 5)
    for kw in ({"far": 0}, {"far": 1.5}, {"score": "median"}, {"metric": "manhattan"}):
        with pytest.raises(ValueError):
            OpenSetRule(**kw).fit(X, y)
    with pytest.raises(ValueError, match="strangers"):
        OpenSetRule().fit(X[y == "p0"], y[y == "p0"])


def test_cosine_metric_is_scale_free():
    X, y = _people(np.random.default_rng(9), 5, 30)
    a = OpenSetRule(far=0.05, metric="cosine").fit(X, y)
    b = OpenSetRule(far=0.05, metric="cosine").fit(3 * X, y)
    assert a.threshold_ == pytest.approx(b.threshold_)
