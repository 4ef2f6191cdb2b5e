"""openset: the naming rule calibrated on strangers (generated descriptors; real data when present)."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from vision_lib import classify
from vision_lib.classify import FaceClassifier, PhotoFeatures
from vision_lib.faces import Face
from vision_lib.io import PhotoSet
from vision_lib.openset import OpenSetRule, operating_curve

DIM = 32


def _people(rng, n_people: int, per: int, spread: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Identity centres drawn from one population, faces scattered around them (like descriptors:
    different people ~1 apart, the same person's faces ~0.5 apart)."""
    centres = rng.normal(size=(n_people, DIM)) / np.sqrt(DIM) * 0.75
    X = np.concatenate([c + rng.normal(size=(per, DIM)) / np.sqrt(DIM) * spread for c in centres])
    y = np.repeat([f"p{i}" for i in range(n_people)], per)
    return X, y


@pytest.fixture
def world():
    rng = np.random.default_rng(7)
    X, y = _people(rng, 12, 25)
    # Fresh faces of the known people, and faces of 300 strangers from the same population.
    fresh = np.concatenate([X[y == c].mean(axis=0) + rng.normal(size=(10, DIM)) / np.sqrt(DIM) * 0.6
                            for c in sorted(set(y))])
    fresh_y = np.repeat(sorted(set(y)), 10)
    S, _ = _people(rng, 300, 1)
    return X, y, fresh, fresh_y, S


def _named(rule: OpenSetRule, S: np.ndarray) -> float:
    """Share of stranger faces that would be named: close enough to *any* known person."""
    return float(rule.accept(rule.scores(S).min(axis=1)).mean())


@pytest.mark.parametrize("score", ["centroid", "knn"])
@pytest.mark.parametrize("far", [0.02, 0.1])
def test_strangers_are_named_at_about_the_requested_rate(world, score, far):
    X, y, fresh, fresh_y, S = world
    rule = OpenSetRule(far=far, score=score).fit(X, y)
    assert rule.n_strangers_ == {"other_people": len(X), "supplied": 0, "web": 0}
    assert rule.far_ <= far
    named = _named(rule, S)
    # Calibrated on the other known people only, yet fresh strangers are named at about that rate.
    assert far / 5 <= named <= 2.5 * far + 0.01, named  # neither loose nor needlessly strict
    assert rule.accept(rule.score_for(fresh, fresh_y)).mean() >= 0.6  # and known people still are


def test_a_constant_carried_over_from_another_descriptor_would_fail_the_same_check(world):
    """The check above can fail: a threshold kept as a constant from one descriptor (as dlib's 0.6
    was) and used on another whose distances run 0.7 times as large names far too many strangers;
    re-calibrated on the new descriptor, the rule passes."""
    X, y, _, _, S = world
    old = OpenSetRule(far=0.02).fit(X, y)
    wrong = OpenSetRule(far=0.02).fit(0.7 * X, y)
    wrong.threshold_ = old.threshold_  # the constant carried over
    right = OpenSetRule(far=0.02).fit(0.7 * X, y)
    assert _named(wrong, 0.7 * S) > 2.5 * 0.02 + 0.01 >= _named(right, 0.7 * S)


def test_supplied_strangers_tighten_the_rule_and_are_counted(world):
    X, y, _, _, S = world
    base = OpenSetRule(far=0.05).fit(X, y)
    # Strangers who sit close to the known people (harder than the population): the rule tightens.
    hard = X[::5] + 0.1 * (S[: len(X[::5])] - S[: len(X[::5])].mean(axis=0))
    both = OpenSetRule(far=0.05).fit(X, y, strangers=hard)
    assert both.n_strangers_ == {"other_people": len(X), "supplied": len(hard), "web": 0}
    assert both.threshold_ < base.threshold_
    # One person alone can be calibrated on supplied strangers only; without any it is refused.
    one = y == "p0"
    assert OpenSetRule(far=0.05).fit(X[one], y[one], strangers=S).threshold_ > 0
    with pytest.raises(ValueError, match="strangers"):
        OpenSetRule().fit(X[one], y[one])


def test_the_rule_follows_the_descriptor_not_a_constant(world):
    """Scaled descriptors (another model's units) re-calibrate: same decisions, threshold scaled;
    the cosine metric works as well."""
    X, y, fresh, fresh_y, S = world
    a = OpenSetRule(far=0.05).fit(X, y)
    b = OpenSetRule(far=0.05).fit(10 * X, y)
    assert b.threshold_ == pytest.approx(10 * a.threshold_)
    assert (a.accept(a.score_for(fresh, fresh_y)) == b.accept(b.score_for(10 * fresh, fresh_y))).all()
    cos = OpenSetRule(far=0.05, metric="cosine").fit(X + 1.0, y)
    assert 0 < cos.threshold_ < 1 and _named(cos, S + 1.0) <= 0.2


def test_match_score_and_verdict_mean_what_they_say(world):
    X, y, fresh, fresh_y, S = world
    rule = OpenSetRule(far=0.05).fit(X, y)
    d = np.sort(rule.impostor_scores_)
    rates = rule.far_at(d)
    assert np.all(np.diff(rates) >= 0) and 0 < rates.min() and rates.max() <= 1
    # The estimate is the share of calibration strangers at least this close (never 0).
    assert rule.far_at(d[9]) == pytest.approx(11 / (len(d) + 1))
    assert rule.verdict(0.0) == "named" and rule.verdict(0.0, named=False) == "unsure"
    assert rule.verdict(10 * d.max()) == "stranger"
    curve = operating_curve(rule, np.quantile(d, [0.01, 0.1, 0.5]), rule.score_for(fresh, fresh_y),
                            rule.scores(S).min(axis=1))
    assert [c["strangers_named"] for c in curve] == sorted(c["strangers_named"] for c in curve)
    assert curve[-1]["known_named_right"] > curve[0]["known_named_right"]
    with pytest.raises(ValueError):
        OpenSetRule(far=1.5).fit(X, y)


# --------------------------------------------------------------------------- inside FaceClassifier
def _photos(X, y) -> list[PhotoFeatures]:
    out = []
    for k, x in enumerate(X):
        D = np.asarray(x, np.float32)[None]
        out.append(PhotoFeatures(Path(f"{y[k]}_{k}.jpg"), [Face((0, 0, 80, 80), 0.99)], D, D))
    return out


def test_classifier_names_known_people_and_never_a_stranger(world, tmp_path):
    X, y, fresh, fresh_y, S = world
    keep = np.isin(y, ["p0", "p1", "p2", "p3"])
    photos = _photos(X[keep], y[keep])
    model = classify.train(PhotoSet(Path("."), [p.path for p in photos], list(y[keep])), photos=photos,
                           progress=False, n_jobs=1, threshold=0.9, far=0.05, max_distance=float("inf"))
    assert model.openset_ is not None and model.info_["openset"]["far"] == 0.05
    faces = [Face((0, 0, 80, 80), 0.99)]
    strangers = [model.predict_features(faces, s[None], s[None])[0] for s in S[:100]]
    assert np.mean([p.known for p in strangers]) <= 0.15
    unknown = next(p for p in strangers if not p.known)
    d = unknown.as_dict()
    assert d["label"] == "unknown" and d["probability"] is None  # no percentage on a stranger
    assert d["verdict"] in ("unsure", "stranger") and 0 < d["stranger_rate"] <= 1
    ok = [model.predict_features(faces, f[None], f[None])[0] for f, c in zip(fresh, fresh_y) if c in ("p0", "p1")]
    assert np.mean([p.label == "p0" or p.label == "p1" for p in ok]) >= 0.6
    named = next(p for p in ok if p.known).as_dict()
    assert named["verdict"] == "named" and 0 <= named["probability"] <= 1
    # Bundles keep the calibration; a bundle saved before it is refused with the fix named.
    path = classify.save_model(model, tmp_path / "m.pkl")
    again = classify.load_model(path)
    assert again.openset_.threshold_ == model.openset_.threshold_
    outer = pickle.loads(path.read_bytes())
    del outer["header"]["openset"]
    old = tmp_path / "old.pkl"
    old.write_bytes(pickle.dumps(outer))
    with pytest.raises(classify.ModelBundleError, match="open-set.*vision-lib train"):
        classify.load_model(old)


# --------------------------------------------------------------------------- real descriptors
def test_footballers_rule_rejects_lfw_strangers_on_real_descriptors(footballers_dir, lfw_dir):
    """Footballers' training faces calibrate the rule (leave one person out); LFW photos (never seen)
    are named rarely, while most held-out footballer photos are still named right."""
    from vision_lib.io import photo_set

    fb = photo_set(footballers_dir, labelled=True).limit(per_label=40, seed=0)
    lfw = photo_set(lfw_dir).limit(total=150, seed=0)
    train_set, test_set = classify.split(fb, 0.3, 0)
    model = classify.train(train_set, progress=False)
    res = model.predict_paths(lfw.paths, progress=False)
    with_face = [r for r in res if r.get("faces")]
    named = np.mean([r["label"] is not None for r in with_face])
    assert named <= 0.05, named
    assert all(f["probability"] is None for r in with_face for f in r["faces"] if f["label"] == "unknown")
    ev = classify.evaluate(model, test_set, progress=False).scores()
    assert ev["accuracy_named"] >= 0.9 and ev["coverage"] >= 0.6, ev


def test_verdict_words_read_out_the_answer():
    """``vision-lib predict`` and the web page say the same sentence (vision_lib.plotting)."""
    from vision_lib.plotting import closeness_words, verdict_words
    from vision_lib.serve import prediction_record

    named = {"label": "leo_messi", "faces": [{"label": "leo_messi", "verdict": "named", "stranger_rate": 1 / 300}]}
    assert verdict_words(named, 6) == "Leo Messi — about 1 in 300 strangers look this close"
    assert closeness_words(0.0004) == "fewer than 1 in 1,000 strangers look this close"
    assert closeness_words(None) is None
    unsure = {"label": None, "faces": [{"label": "unknown", "verdict": "unsure", "stranger_rate": 0.1}]}
    assert verdict_words(unsure, 6).startswith("Not sure who this is")
    stranger = {"label": None, "faces": [{"label": "unknown", "verdict": "stranger", "stranger_rate": 0.9}]}
    assert verdict_words(stranger, 6) == "Not one of the 6 people this model knows"
    assert verdict_words({"label": None, "faces": []}) == "No face found in this photo"
    record = prediction_record("a.jpg", named, 6)
    assert record["answer"] == verdict_words(named, 6)
    assert record["faces"][0]["closeness"] == "about 1 in 300 strangers look this close"


# --------------------------------------------------------------------------- web-stranger curves (issue 34)
def _web(rng, n_people: int = 80, per: int = 6):
    """A 'web' population: many people, a few photos each, every photo one face (as LFW's)."""
    X, y = _people(rng, n_people, per)
    return [x[None] for x in X], y, [0] * len(X)


def test_web_curve_states_the_rate_strangers_are_named_at():
    """A curve measured on one population (the calibration half) states how often strangers of
    *other* people of that population are named, for any number of known people: within 0.5x-2x."""
    from vision_lib.stranger_curves import measure_curve

    rng = np.random.default_rng(3)
    photos, people, subject = _web(rng)
    curve = measure_curve(photos, people, subject)
    assert curve["pairs"] == len(photos) * 79 and curve["people"] == 80
    assert np.all(np.diff(curve["rates"]) > 0) and np.all(np.diff(curve["scores"]) >= 0)
    S, _ = _people(rng, 3000, 1)  # strangers: people the curve never saw
    for n_known in (3, 6, 20):
        for far in (0.01, 0.05):
            named = []
            for _ in range(6):  # galleries differ: the rate is a promise on average over them
                X, y = _people(rng, n_known, 30)
                rule = _with_curve(OpenSetRule(far=far, score="cohort", descriptor="test"), curve).fit(X, y)
                assert rule.population_ == "web" and rule.n_strangers_["web"] == curve["pairs"]
                assert rule.far_at(rule.threshold_) == pytest.approx(far, rel=0.05)
                named.append(_named(rule, S))
            assert 0.5 * far <= np.mean(named) <= 2 * far, (n_known, far, named)
    # A looser rate means a looser threshold; an unmeasurably small one stops at the curve's end.
    assert _with_curve(OpenSetRule(far=0.1, score="cohort", descriptor="test"), curve).fit(X, y).threshold_ > \
        rule.threshold_
    tiny = _with_curve(OpenSetRule(far=1e-9, score="cohort", descriptor="test"), curve).fit(X, y)
    assert tiny.threshold_ == pytest.approx(curve["scores"][0]) and tiny.far_ > 1e-9


def _with_curve(rule: OpenSetRule, curve: dict) -> OpenSetRule:
    """``rule`` whose descriptor's shipped curve is ``curve`` (as if in stranger_curves.json)."""
    import vision_lib.stranger_curves as sc

    real = sc.curve_for
    fit = rule.fit

    def fit_with(*a, **k):
        sc.curve_for = lambda d, s: curve if (d, s) == ("test", "cohort") else real(d, s)
        try:
            return fit(*a, **k)
        finally:
            sc.curve_for = real
    rule.fit = fit_with
    return rule


def test_population_falls_back_and_supplied_strangers_come_first(world):
    X, y, _, _, S = world
    # No curve for this descriptor (or score): the training people, as before.
    assert OpenSetRule(far=0.05, descriptor="none/1").fit(X, y).population_ == "training"
    # Without a curve the cohort score is the plain direction (cosine) score.
    plain = OpenSetRule(far=0.05, score="cohort", descriptor="none/1").fit(X, y)
    assert plain.score_ == "direction" and plain.population_ == "training" and plain.cohort_ is None
    # A descriptor with a shipped curve, but another score: no curve either.
    from vision_lib.stranger_curves import load_curves

    shipped = next(iter(load_curves()))
    X, S = X / np.linalg.norm(X, axis=1, keepdims=True), S / np.linalg.norm(S, axis=1, keepdims=True)
    X, S = np.pad(X, ((0, 0), (0, 96))), np.pad(S, ((0, 0), (0, 96)))  # the shipped curve's 128 dimensions
    assert OpenSetRule(far=0.05, score="centroid", descriptor=shipped).fit(X, y).population_ == "training"
    web = OpenSetRule(far=0.05, score="cohort", descriptor=shipped).fit(X, y)
    assert web.population_ == "web" and web.curve_ is not None and web.score_ == "cohort"
    lopo = OpenSetRule(far=0.05, score="cohort", descriptor=shipped, population="training").fit(X, y)
    assert lopo.population_ == "training" and lopo.score_ == "cohort" and lopo.curve_ is None
    own = OpenSetRule(far=0.05, score="cohort", descriptor=shipped).fit(X, y, strangers=S)
    assert own.population_ == "supplied" and own.curve_ is None and own.n_strangers_["supplied"] == len(S)
    with pytest.raises(ValueError, match="population"):
        OpenSetRule(population="nope").fit(X, y)
    # A rule pickled before the web curves (no population, descriptor, curve_) still answers.
    old = OpenSetRule(far=0.05).fit(X, y)
    for name in ("population", "descriptor", "population_", "curve_", "cohort_", "_score_used"):
        old.__dict__.pop(name, None)
    again = pickle.loads(pickle.dumps(old))
    assert again.population_ == "training" and again.far_at(0.0) > 0 and "population" in repr(again)


def test_shipped_curves_are_numbers_only():
    """The package ships quantiles of distances per descriptor: no faces, descriptors or names."""
    from vision_lib.models import get_descriptor
    from vision_lib.stranger_curves import CURVES_FILE, load_curves

    curves = load_curves()
    assert get_descriptor("facenet").id in curves  # the default descriptor has its curve
    assert CURVES_FILE.stat().st_size < 300_000
    for per_score in curves.values():
        for c in per_score.values():
            assert len(c["rates"]) == len(c["scores"]) <= 100
            assert all(isinstance(v, (int, float)) for v in c["rates"] + c["scores"])
            assert np.all(np.diff(c["scores"]) >= 0) and c["rates"][-1] == 1.0
            # Population statistics over many people, not anyone's descriptor: the mean of unit
            # descriptors of many people is far shorter than one descriptor.
            assert c["people"] >= 20 and c["photos"] >= 500
            assert np.linalg.norm(c["mean"]) < 0.9 and np.shape(c["cov"]) == (len(c["mean"]),) * 2


def test_lfw_halves_are_fixed_and_both_used(lfw_dir):
    from vision_lib.openset import lfw_half

    assert lfw_half("Tony_Blair") == lfw_half("Tony_Blair")
    people = sorted(p.name for p in lfw_dir.iterdir() if p.is_dir())
    halves = [lfw_half(p) for p in people]
    assert 0.3 < halves.count("calibrate") / len(people) < 0.7


def test_knn_scores_against_every_gallery_at_once_are_those_of_one_gallery_at_a_time():
    # one distance matrix for all the galleries, in blocks of rows: the same scores as a call per
    # person (galleries of unequal sizes, one smaller than k, a face copied into another gallery)
    from vision_lib.openset import pairwise

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 8))
    y = np.repeat(list("abcdefg"), [9, 7, 3, 6, 5, 8, 2]).astype(str)
    X[30] = X[0]
    rule = OpenSetRule(score="knn", k=5, population="training").fit(X, y)
    Q = np.vstack([rng.normal(size=(25, 8)), X[:3]])
    got = rule.scores(Q)
    want = np.array([[np.sort(pairwise(q[None], rule.galleries_[c])[0])[:min(5, len(rule.galleries_[c]))].mean()
                      for c in rule.classes_] for q in Q])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert got[-3, 0] == pytest.approx(np.sort(pairwise(X[:1], X[1:9])[0])[:4].sum() / 5)  # itself at 0 counts
    assert rule.scores(Q[:0]).shape == (0, len(rule.classes_))
