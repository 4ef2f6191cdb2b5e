"""classify: cleaning uncurated folders, unknown faces, subject choice, bundles, CLI, notebook 03."""
from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from vision_lib import cache, classify
from vision_lib import extraction
from vision_lib.classify import FaceClassifier, PhotoFeatures, Recipe
from vision_lib.faces import Face
from vision_lib.io import PhotoSet

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- synthetic identities
# The generated descriptors are at dlib's scale (same person within 0.6): the tests that use them
# pin descriptor="dlib", whose same-person distance every threshold then follows.
def _identities(rng, n: int = 3, dim: int = 128) -> np.ndarray:
    # Unit-ish centres ~0.9 apart, like dlib descriptors of different people.
    c = rng.normal(size=(n, dim))
    return c / np.linalg.norm(c, axis=1, keepdims=True) * 0.65


def _face(rng, centre: np.ndarray, spread: float = 0.25) -> np.ndarray:
    noise = rng.normal(size=centre.shape)
    return (centre + noise / np.linalg.norm(noise) * spread * rng.uniform(0.5, 1.0)).astype(np.float32)


def _photo(name: str, descs: list[np.ndarray], sizes: list[int]) -> PhotoFeatures:
    faces = [Face((10 * k, 10, s, s), 0.99) for k, s in enumerate(sizes)]
    D = np.asarray(descs, np.float32).reshape(len(descs), 128)
    return PhotoFeatures(Path(name), faces, D, D)


def _folders(rng, centres, n_per: int = 12):
    """Folders per person; some photos also show a larger stranger, one holds only a stranger,
    and one is another known person filed in the wrong folder."""
    stranger = _identities(np.random.default_rng(99), 1)[0]
    photos, labels, truth = [], [], []
    for p in range(len(centres)):
        for k in range(n_per):
            own = _face(rng, centres[p])
            if k % 4 == 1:  # a larger stranger first (faces are ordered largest first)
                photos.append(_photo(f"p{p}_{k}", [_face(rng, stranger), own], [120, 60]))
                truth.append(1)
            elif k == 2:  # only a stranger
                photos.append(_photo(f"p{p}_{k}", [_face(rng, stranger)], [80]))
                truth.append(-1)
            elif k == 3:  # another known person, filed here by mistake
                photos.append(_photo(f"p{p}_{k}", [_face(rng, centres[(p + 1) % len(centres)], 0.15)], [80]))
                truth.append(-1)
            else:
                photos.append(_photo(f"p{p}_{k}", [own], [90]))
                truth.append(0)
            labels.append(f"person{p}")
    return photos, labels, truth


def test_select_faces_picks_the_folders_person_not_the_largest_face(rng):
    centres = _identities(rng)
    photos, labels, truth = _folders(rng, centres)
    idx = [i for i, lab in enumerate(labels) if lab == "person0"]
    chosen, dist, centroid = classify.select_faces([photos[i].descriptors for i in idx], descriptor="dlib")
    want = [truth[i] for i in idx]
    # The misfiled photo (k == 3) is a single face of someone else: agreement alone must reject it.
    assert list(chosen) == want
    assert np.linalg.norm(centroid - centres[0]) < 0.15
    assert np.all(dist[chosen >= 0] <= 0.6)


def test_clean_training_set_reports_what_was_left_out_and_why(rng):
    centres = _identities(rng)
    photos, labels, truth = _folders(rng, centres)
    photos.append(PhotoFeatures(Path("broken.jpg"), [], np.zeros((0, 128)), None, "cannot decode: junk"))
    labels.append("person0")
    photos.append(PhotoFeatures(Path("empty.jpg"), [], np.zeros((0, 128)), np.zeros((0, 128))))
    labels.append("person1")
    picked, report, centroids = classify.clean_training_set(photos, labels, descriptor="dlib")
    assert sorted(centroids) == ["person0", "person1", "person2"]
    assert {(i, j) for i, j in picked} == {(i, t) for i, t in enumerate(truth) if t >= 0}
    reasons = report.counts()
    assert reasons["unreadable"] == 1 and reasons["no face found"] == 1
    assert reasons["no face matches the folder's person"] == 6  # one stranger-only + one misfiled per folder
    assert reasons["another face in the photo"] == 9  # the strangers beside the person (k = 1, 5, 9)
    misfiled = [e for e in report.excluded if e.path == "p0_3"]
    assert misfiled and misfiled[0].looks_like == "person1"
    assert len(report.excluded_for("no face matches", "unreadable")) == 7
    assert {e.reason for e in report.excluded_for("no face found")} == {"no face found"}
    # "largest" keeps the stranger of k % 4 == 1 photos: that is the classic recipe's weakness.
    picked_l, report_l, _ = classify.clean_training_set(photos, labels, "largest", descriptor="dlib")
    assert (1, 0) in picked_l and report_l.counts()["not the largest face in the photo"] == 9


def _fit(photos, labels, **kw) -> FaceClassifier:
    return classify.train(PhotoSet(Path("."), [p.path for p in photos], labels),
                          photos=photos, progress=False, n_jobs=1, **{"descriptor": "dlib", **kw})


def test_prediction_chooses_the_known_face_and_marks_strangers_unknown(rng):
    centres = _identities(rng)
    photos, labels, _ = _folders(rng, centres, n_per=16)
    model = _fit(photos, labels)
    assert model.classes_ == ["person0", "person1", "person2"]
    assert 0.3 < model.unknown_below < 1.0 and model.max_distance == 0.6
    assert model.training_report_.summary()["faces_kept"] == len(model.training_report_.kept)
    stranger = _identities(np.random.default_rng(99), 1)[0]
    # A photo with a big stranger and a small person2: the subject is person2, the stranger unknown.
    faces = [Face((0, 0, 200, 200), 0.99), Face((300, 0, 50, 50), 0.99)]
    X = np.asarray([_face(rng, stranger), _face(rng, centres[2])])
    preds = model.predict_features(faces, X, X)
    assert [p.label for p in preds] == ["person2", "unknown"]
    assert preds[0].box == (300, 0, 50, 50) and 0 <= preds[1].probability <= 1
    assert model.subject(preds) == "person2"
    listed = model._result(preds)
    assert listed["label"] == "person2"
    first = listed["faces"][0]
    assert {k: first[k] for k in ("box", "label", "probability")} == \
        {"box": [300, 0, 50, 50], "label": "person2", "probability": round(preds[0].probability, 4)}
    assert first["verdict"] == "named" and listed["faces"][1]["verdict"] == "stranger"
    assert listed["faces"][1]["label"] == "unknown" and listed["faces"][1]["probability"] is None
    # Only strangers: no label. No faces: no label and an empty list.
    only = model.predict_features(faces[:1], X[:1], X[:1])
    assert only[0].label == "unknown" and model.subject(only) is None
    assert model._result(model.predict_features([], np.zeros((0, 128)))) == {"label": None, "faces": []}
    # With the largest-face rule the same photo has no label (its largest face is a stranger).
    model.choose = "largest"
    assert model.subject(preds) is None


def test_a_hesitant_probability_does_not_reject_a_face_close_to_its_person(rng):
    centres = _identities(rng)
    photos, labels, _ = _folders(rng, centres, n_per=16)
    model = _fit(photos, labels)
    X, y, D, _ = classify.training_faces(photos, labels, descriptor="dlib")
    own = np.linalg.norm(D - np.asarray([model.centroids_[c] for c in y]), axis=1)
    # The 95% quantile of the training faces' distances to their own person's centroid.
    assert model.sure_distance == pytest.approx(np.quantile(own, 0.95))
    assert 0 < model.sure_distance < model.max_distance
    f = [Face((0, 0, 50, 50), 1.0)]
    # Points shifted equally along every axis: their distance to the centroid is the shift's size.
    close = model.centroids_["person1"][None] + 0.5 * model.sure_distance / np.sqrt(128)
    far = model.centroids_["person1"][None] + (model.sure_distance + model.max_distance) / 2 / np.sqrt(128)
    assert np.linalg.norm(close - model.centroids_["person1"]) < model.sure_distance
    assert model.sure_distance < np.linalg.norm(far - model.centroids_["person1"]) < model.max_distance
    model.unknown_below = 1.01  # every probability is now "hesitant"
    assert model.predict_features(f, close, close)[0].label == "person1"
    assert model.predict_features(f, far, far)[0].label == "unknown"
    model.sure_distance = None  # the rule switched off: the probability alone decides
    assert model.predict_features(f, close, close)[0].label == "unknown"
    assert _fit(photos, labels, sure_quantile=None).sure_distance is None


def test_a_larger_known_face_as_close_as_the_closest_is_the_subject(rng):
    centres = _identities(rng)
    photos, labels, _ = _folders(rng, centres, n_per=16)
    model = _fit(photos, labels)
    assert model.subject_tie == classify.SUBJECT_TIE
    # Two known people side by side: person1 slightly closer to its centroid, person2 much larger.
    def at(person: str, dist: float) -> np.ndarray:
        return model.centroids_[person] + dist / np.sqrt(128)  # equal shift on every axis
    small, big = Face((0, 0, 40, 40), 1.0), Face((100, 0, 90, 90), 1.0)
    near_tie = np.asarray([at("person1", 0.30), at("person2", 0.30 + model.subject_tie / 2)])
    preds = model.predict_features([small, big], near_tie, near_tie)
    assert [q.label for q in preds] == ["person2", "person1"] and model.subject(preds) == "person2"
    # Clearly closer (more than the tie apart): the closer face stays the subject, however small.
    clear = np.asarray([at("person1", 0.30), at("person2", 0.30 + 2 * model.subject_tie)])
    assert model.subject(model.predict_features([small, big], clear, clear)) == "person1"
    # A larger *unknown* face never becomes the subject.
    stranger = np.asarray([at("person1", 0.30), at("person2", 0.30) + 0.5])
    preds = model.predict_features([small, big], stranger, stranger)
    assert [q.label for q in preds] == ["person1", "unknown"] and model.subject(preds) == "person1"
    model.subject_tie = None  # the rule switched off: the closest known face
    assert model.subject(model.predict_features([small, big], near_tie, near_tie)) == "person1"
    # The JSON lists faces most probable first; the label stays the subject, wherever it is listed.
    subject = classify.FacePrediction((0, 0, 40, 40), "person2", 0.61, "person2", 0.31)
    likelier = classify.FacePrediction((100, 0, 90, 90), "person1", 0.93, "person1", 0.45)
    out = model._result([subject, likelier])
    assert out["label"] == "person2" and [f["label"] for f in out["faces"]] == ["person1", "person2"]


def test_adaptive_max_distance_tightens_the_open_set_rule_for_tight_identities(rng):
    centres = _identities(rng)
    photos, labels, _ = _folders(rng, centres, n_per=16)
    fixed, adaptive = _fit(photos, labels), _fit(photos, labels, max_distance="adaptive")
    _, y, D, _ = classify.training_faces(photos, labels, descriptor="dlib")
    own = np.linalg.norm(D - np.asarray([adaptive.centroids_[c] for c in y]), axis=1)
    assert fixed.max_distance == 0.6
    # These generated faces lie <= 0.25 from their centre: 1.3 x their 95% quantile is well under 0.6.
    assert adaptive.max_distance == pytest.approx(classify.ADAPTIVE_FACTOR * np.quantile(own, 0.95))
    assert adaptive.max_distance < 0.45
    f = [Face((0, 0, 50, 50), 1.0)]
    between = adaptive.centroids_["person0"][None] + (adaptive.max_distance + 0.6) / 2 / np.sqrt(128)
    assert fixed.predict_features(f, between, between)[0].label == "person0"
    assert adaptive.predict_features(f, between, between)[0].label == "unknown"
    # Loose identities (spread 0.5) keep dlib's 0.6 as the cap.
    loose_photos = [_photo(f"l{k}", [_face(rng, centres[k % 3], spread=0.55)], [90]) for k in range(48)]
    loose = _fit(loose_photos, [f"person{k % 3}" for k in range(48)], max_distance="adaptive")
    assert loose.max_distance == 0.6
    with pytest.raises(ValueError, match="adaptive"):
        _fit(photos, labels, max_distance="tight")


# --------------------------------------------------------------------------- the face table (issue 21)
def _as_table(photos, labels):
    """The per-photo records as the descriptor table ``tables.face_table`` would build of them."""
    from vision_lib.io import Rejected
    from vision_lib.models import get_descriptor
    from vision_lib.tables import NO_FACE, FaceTable

    rows = [(str(ph.path), j, f, ph.descriptors[j]) for ph in photos for j, f in enumerate(ph.faces)]
    return FaceTable("descriptor", np.asarray([r[3] for r in rows], np.float32), [r[0] for r in rows],
                     [r[0].split("/")[0] for r in rows], [r[1] for r in rows], [r[2].box for r in rows],
                     [Rejected(str(ph.path), NO_FACE) for ph in photos if not ph.faces],
                     {"descriptor": get_descriptor("dlib").id, "detector": "yunet"},
                     scores=[r[2].score for r in rows], photos=[str(ph.path) for ph in photos], photo_labels=labels)


def _labelled_folders(rng, centres):
    photos, labels, _ = _folders(rng, centres, n_per=10)
    photos = [PhotoFeatures(Path(lab) / f"{ph.path}.jpg", ph.faces, ph.features, ph.descriptors)
              for ph, lab in zip(photos, labels)]
    empty = np.zeros((0, 128), np.float32)
    return photos + [PhotoFeatures(Path("person0/blank.jpg"), [], empty, empty)], labels + ["person0"]


def test_training_from_the_face_table_gives_the_model_of_its_photos(rng, tmp_path):
    from vision_lib.tables import FaceTable

    centres = _identities(rng)
    photos, labels = _labelled_folders(rng, centres)
    table = _as_table(photos, labels)
    table.save(tmp_path / "faces.npz")
    by_photos = _fit(photos, labels)
    by_table = classify.train(FaceTable.load(tmp_path / "faces.npz"), progress=False, n_jobs=1)
    assert by_table.recipe == by_photos.recipe == Recipe("embedding", "yunet", descriptor="dlib")
    assert by_table.training_report_.excluded == by_photos.training_report_.excluded
    assert by_table.training_report_.kept == by_photos.training_report_.kept
    assert "no face found" in by_table.training_report_.counts()
    X = np.asarray([_face(rng, centres[k % 3]) for k in range(9)] + [_face(rng, np.zeros(128), 0.65)])
    faces = [Face((0, 0, 50, 50), 0.99)]
    for x in X:
        a, b = (m.predict_features(faces, x[None], x[None])[0] for m in (by_photos, by_table))
        assert (a.label, a.verdict) == (b.label, b.verdict) and abs(a.probability - b.probability) <= 1e-6
    np.testing.assert_allclose(by_table.estimator.predict_proba(X), by_photos.estimator.predict_proba(X), atol=1e-6)
    # Another descriptor or detector than the table's, or a table of another kind: refused, clearly.
    with pytest.raises(ValueError, match="holds dlib descriptors .* not facenet"):
        classify.train(table, descriptor="facenet", progress=False)
    with pytest.raises(ValueError, match="found by yunet, not haar"):
        classify.train(table, detector="haar", progress=False)
    table.kind = "wavelet"
    with pytest.raises(ValueError, match="kind 'wavelet' cannot train"):
        classify.train(table, progress=False)


def test_cli_trains_from_a_descriptor_table_and_refuses_others(rng, tmp_path, capsys):
    from vision_lib.cli import main

    photos, labels = _labelled_folders(rng, _identities(rng))
    table = _as_table(photos, labels)
    table.save(tmp_path / "faces.npz")
    args = ["train", str(tmp_path / "faces.npz"), "--quiet", "--jobs", "1", "--out"]
    assert main(args + [str(tmp_path / "m.pkl")]) == 0
    assert classify.load_model(tmp_path / "m.pkl").recipe == Recipe("embedding", "yunet", descriptor="dlib")
    capsys.readouterr()
    assert main(args + [str(tmp_path / "x.pkl"), "--descriptor", "facenet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds dlib descriptors" in err
    table.kind = "histogram"
    table.save(tmp_path / "hist.npz")
    assert main(["train", str(tmp_path / "hist.npz"), "--out", str(tmp_path / "x.pkl"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kind 'histogram'; training needs face descriptors" in err
    assert not (tmp_path / "x.pkl").exists()


def test_compare_models_ranks_all_five(rng):
    centres = _identities(rng)
    X = np.asarray([_face(rng, centres[k % 3]) for k in range(60)])
    y = np.array([f"p{k % 3}" for k in range(60)])
    rows = classify.compare_models(X, y, cv=3, n_jobs=1)
    assert {r["model"] for r in rows} == set(classify.MODELS)
    assert rows[0]["accuracy"] >= rows[-1]["accuracy"] and rows[0]["accuracy"] > 0.9


def test_mcnemar_counts_only_the_items_one_classifier_alone_got_right():
    a = np.array([True] * 90 + [False] * 10)
    assert classify.mcnemar_p(a, a) == 1.0
    b = a.copy()
    b[:10] = False  # a alone right on 10 items, b alone right on none
    assert classify.mcnemar_p(a, b) == pytest.approx(2 * 0.5 ** 10)
    b[90:92] = True  # now 10 against 2
    assert classify.mcnemar_p(a, b) == pytest.approx(0.0386, abs=1e-4)
    assert classify.mcnemar_p(a, b) == classify.mcnemar_p(b, a)


def test_choose_model_keeps_the_preferred_model_unless_clearly_beaten():
    rows = [{"model": "logistic_regression", "accuracy": 0.997, "p_vs_best": 1.0},
            {"model": "svm_rbf", "accuracy": 0.993, "p_vs_best": 0.25},
            {"model": "knn", "accuracy": 0.984, "p_vs_best": 0.01}]
    assert classify.choose_model(rows) == "svm_rbf"  # 3 faces in 680: noise
    rows[1]["p_vs_best"] = 0.001
    assert classify.choose_model(rows) == "logistic_regression"  # the next preferred, the best itself
    assert classify.choose_model(rows, preference=("knn",)) == "logistic_regression"


def test_compare_models_tests_each_model_against_the_best(rng):
    # Each person's faces sit in two opposite clusters: no linear model can separate them, kNN can.
    centres = _identities(rng, 2)
    X = np.asarray([_face(rng, (-1) ** (k // 2) * centres[k % 2], 0.2) for k in range(80)])
    y = np.array([f"p{k % 2}" for k in range(80)])
    rows = classify.compare_models(X, y, ("svm_linear", "knn"), n_jobs=1)
    by = {r["model"]: r for r in rows}
    assert rows[0]["model"] == "knn" and by["knn"]["p_vs_best"] == 1.0 and by["knn"]["accuracy"] > 0.95
    assert by["svm_linear"]["accuracy"] < 0.75 and by["svm_linear"]["p_vs_best"] < 0.001
    assert classify.choose_model(rows, preference=("svm_linear", "knn")) == "knn"


def test_tiny_training_sets_score_every_model(rng):
    # 2 people x 3 faces: folds train on 4 faces, fewer than kNN's usual 5 neighbours.
    import warnings

    centres = _identities(rng)
    X = np.asarray([_face(rng, centres[k % 2]) for k in range(6)])
    y = np.array([f"p{k % 2}" for k in range(6)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn reports a failed fold as a warning and a NaN score
        rows = classify.compare_models(X, y, n_jobs=1)
    assert sorted(r["model"] for r in rows) == sorted(classify.MODELS)  # every model, each once
    assert all(np.isfinite(r["accuracy"]) for r in rows)
    assert classify.make_estimator("knn", n_train=4).fit(X[:4], y[:4]).predict(X[4:]).shape == (2,)


def test_evaluation_scores_count_no_answer_as_wrong():
    ev = classify.Evaluation(["a", "b", "c", "d"], ["x", "x", "y", "y"], ["x", None, "x", "y"],
                             [{"faces": [1]}, {"faces": []}, {"faces": [1]}, {"faces": [1]}])
    s = ev.scores()
    assert s["coverage"] == 0.75 and s["accuracy_all"] == 0.5 and abs(s["accuracy_named"] - 2 / 3) < 1e-9
    assert s["face_coverage"] == 0.75 and abs(s["accuracy_with_face"] - 2 / 3) < 1e-9
    # An "unknown" answer on a photo with a face lowers accuracy on photos with a face, not the named one.
    s2 = classify.Evaluation(["a", "b"], ["x", "y"], ["x", None], [{"faces": [1]}, {"faces": [1]}]).scores()
    assert s2["accuracy_named"] == 1.0 and s2["accuracy_with_face"] == 0.5 and s2["face_coverage"] == 1.0
    cm, cols = ev.confusion()
    assert cols == ["x", "y", "(none)"] and cm.tolist() == [[1, 0, 1], [1, 1, 0]]
    assert len(ev.mistakes()) == 2
    # The report's micro average: precision = accuracy_named, recall = accuracy_with_face (an unknown
    # answer on a photo with a face is a miss, not left out).
    ev3 = classify.Evaluation(list("abcde"), ["x", "x", "y", "y", "y"], ["x", None, "x", "y", None],
                              [{"faces": [1]}] * 4 + [{"faces": []}])
    micro = next(line.split() for line in ev3.report().splitlines() if line.strip().startswith("micro avg"))
    s3 = ev3.scores()
    assert float(micro[2]) == round(s3["accuracy_named"], 3) == 0.667
    assert float(micro[3]) == round(s3["accuracy_with_face"], 3) == 0.5 and micro[5] == "4"


# --------------------------------------------------------------------------- bundles
def test_bundle_round_trip_and_refusals(rng, tmp_path):
    centres = _identities(rng)
    photos, labels, _ = _folders(rng, centres)
    model = _fit(photos, labels)
    path = classify.save_model(model, tmp_path / "m.pkl")
    with pytest.raises(FileExistsError):
        classify.save_model(model, path)
    back = classify.load_model(path)
    assert back.classes_ == model.classes_ and back.recipe == model.recipe
    assert back.sure_distance == model.sure_distance is not None
    assert back.subject_tie == model.subject_tie is not None
    X = np.asarray([_face(rng, centres[1])])
    f = [Face((0, 0, 50, 50), 1.0)]
    assert back.predict_features(f, X, X)[0].label == "person1"
    assert back.training_report_.counts() == model.training_report_.counts()

    outer = pickle.loads(path.read_bytes())
    outer["header"]["versions"]["scikit-learn"] = "0.0.1"
    (tmp_path / "old.pkl").write_bytes(pickle.dumps(outer))
    with pytest.raises(classify.ModelBundleError, match=r"scikit-learn 0\.0\.1 \(bundle\)"):
        classify.load_model(tmp_path / "old.pkl")
    assert classify.load_model(tmp_path / "old.pkl", check_versions=False).classes_ == model.classes_

    outer = pickle.loads(path.read_bytes())
    outer["header"]["recipe"]["features"] = "hog"
    (tmp_path / "recipe.pkl").write_bytes(pickle.dumps(outer))
    with pytest.raises(classify.ModelBundleError, match="unknown feature recipe"):
        classify.load_model(tmp_path / "recipe.pkl")

    # Descriptors of another alignment live in another space: always refused, even without version checks.
    outer = pickle.loads(path.read_bytes())
    from vision_lib.embeddings import descriptor_id

    assert outer["header"]["descriptor"] == descriptor_id() != "dlib_resnet_v1/shape"
    outer["header"]["descriptor"] = "dlib_resnet_v1/shape"
    (tmp_path / "desc.pkl").write_bytes(pickle.dumps(outer))
    with pytest.raises(classify.ModelBundleError, match="dlib_resnet_v1/shape"):
        classify.load_model(tmp_path / "desc.pkl", check_versions=False)

    # A bundle from before the descriptor registry (no descriptor in its recipe) names it by id only:
    # it loads with that descriptor, whatever today's default is.
    outer = pickle.loads(path.read_bytes())
    del outer["header"]["recipe"]["descriptor"]
    (tmp_path / "old_recipe.pkl").write_bytes(pickle.dumps(outer))
    assert classify.load_model(tmp_path / "old_recipe.pkl", check_versions=False).recipe.descriptor == "dlib"
    # Another registered descriptor's id in the header: refused, naming the retraining command.
    from vision_lib.models import get_descriptor

    outer = pickle.loads(path.read_bytes())
    outer["header"]["descriptor"] = get_descriptor("facenet").id
    (tmp_path / "other.pkl").write_bytes(pickle.dumps(outer))
    with pytest.raises(classify.ModelBundleError, match="train --descriptor dlib"):
        classify.load_model(tmp_path / "other.pkl", check_versions=False)


def test_damaged_bundles_are_refused_with_one_clear_error(rng, tmp_path):
    photos, labels, _ = _folders(rng, _identities(rng))
    path = classify.save_model(_fit(photos, labels), tmp_path / "m.pkl")
    data = path.read_bytes()
    # Zeroed bytes anywhere: refused as a damaged bundle (the body's checksum catches those that
    # still unpickle), never another exception and never a model that silently predicts otherwise.
    for pos in range(0, len(data) - 64, max(1, len(data) // 40)):
        hurt = bytearray(data)
        hurt[pos:pos + 64] = bytes(64)
        (tmp_path / "hurt.pkl").write_bytes(bytes(hurt))
        with pytest.raises(classify.ModelBundleError):
            classify.load_model(tmp_path / "hurt.pkl")
    # Header fields of the wrong type, or missing.
    for field, value in (("versions", "1.0"), ("recipe", "embedding"), ("labels", None), ("max_distance", "far"),
                         ("unknown_below", None), ("choose", "biggest")):
        outer = pickle.loads(data)
        outer["header"][field] = value
        (tmp_path / "bad.pkl").write_bytes(pickle.dumps(outer))
        with pytest.raises(classify.ModelBundleError, match=f"damaged model bundle.*{field}"):
            classify.load_model(tmp_path / "bad.pkl")


def test_model_paths_are_checked_before_training(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(FileExistsError, match="not a regular file"):
        classify.check_model_path(tmp_path / "folder", overwrite=True)
    (tmp_path / "m.pkl").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="overwrite"):
        classify.check_model_path(tmp_path / "m.pkl")
    assert classify.check_model_path(tmp_path / "m.pkl", overwrite=True) == tmp_path / "m.pkl"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is not a folder"):
        classify.check_model_path(tmp_path / "file" / "m.pkl")
    assert classify.check_model_path(tmp_path / "new" / "sub" / "m.pkl").parent.is_dir()
    assert (tmp_path / "m.pkl").read_bytes() == b"old" and not list(tmp_path.rglob("*.part"))


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path(_Evil.target),))


def test_load_refuses_foreign_pickles_before_running_them(tmp_path):
    _Evil.target = str(tmp_path / "pwned")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"header": {}, "body": _Evil()}))
    with pytest.raises(classify.ModelBundleError, match="not a vision_lib model bundle"):
        classify.load_model(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "text.pkl").write_text("hello")
    with pytest.raises(classify.ModelBundleError):
        classify.load_model(tmp_path / "text.pkl")


def test_cache_keys_of_the_wavelet_recipe_hold_every_default():
    from vision_lib.faces import get_detector

    # Defaults are spelt out in the key, so a release that changes one misses the old entries.
    assert extraction._wavelet_key(()) == extraction._wavelet_key((("level", 5), ("size", 32), ("wavelet", "haar")))
    assert dict(extraction._wavelet_key((("size", 16),))) == {"level": 5, "size": 16, "wavelet": "haar"}
    assert extraction._detector_key("haar", ()) == get_detector("haar").params()
    assert dict(extraction._detector_key("haar", (("min_neighbors", 3),)))["min_neighbors"] == 3
    assert extraction._detector_key("mtcnn", (("threads", 1),)) == extraction._detector_key("mtcnn", ())  # speed only


def test_recipe_rejects_unknown_names():
    with pytest.raises(ValueError, match="features"):
        Recipe("hog")
    with pytest.raises(ValueError, match="detector"):
        Recipe("embedding", "yolo")


# --------------------------------------------------------------------------- real photos (small)
PER_PLAYER = 6


@pytest.fixture(scope="module")
def small_sets(footballers_dir, tmp_path_factory):
    """A few photos per player copied into train/ and test/ folders (copies hit the same cache)."""
    from vision_lib.io import photo_set

    ps = photo_set(footballers_dir, labelled=True).limit(per_label=PER_PLAYER + 2, seed=0)
    root = tmp_path_factory.mktemp("footballers_small")
    seen: dict[str, int] = {}
    for p, lab in zip(ps.paths, ps.labels):
        k = seen[lab] = seen.get(lab, 0) + 1
        dest = root / ("train" if k <= PER_PLAYER else "test") / lab / p.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
    return root / "train", root / "test"


def test_train_and_predict_on_real_photos(small_sets, tmp_path):
    from vision_lib.io import load_image, photo_set

    train_dir, test_dir = small_sets
    model = classify.train(train_dir, progress=False)
    assert len(model.classes_) == 6
    rep = model.training_report_
    assert len(rep.kept) >= 6 * PER_PLAYER * 0.6
    test = photo_set(test_dir, labelled=True)
    ev = classify.evaluate(model, test, progress=False)
    s = ev.scores()
    # Even 8 raw photos per player name most held-out players right (the full benchmark does better).
    assert s["accuracy_all"] >= 0.6, s
    res = model.predict_image(load_image(test.paths[0]))
    assert set(res) == {"label", "faces"}
    probs = [f["probability"] for f in res["faces"] if f["label"] != "unknown"]
    assert probs == sorted(probs, reverse=True)
    blank = np.full((200, 200, 3), 127, np.uint8)
    assert model.predict_image(blank) == {"label": None, "faces": []}


def test_a_folder_and_its_face_table_train_the_same_model(small_sets, tmp_path):
    from vision_lib.tables import FaceTable, face_table

    train_dir, test_dir = small_sets
    by_folder = classify.train(train_dir, progress=False)
    face_table(train_dir, retry=True, progress=False).save(tmp_path / "faces.npz")  # as `vision-lib features`
    by_table = classify.train(FaceTable.load(tmp_path / "faces.npz"), progress=False)
    assert by_table.recipe == by_folder.recipe and by_table.info_["model"] == by_folder.info_["model"]
    assert by_table.training_report_.excluded == by_folder.training_report_.excluded
    tests = sorted(test_dir.rglob("*.jpg"))
    a, b = by_folder.predict_paths(tests, progress=False), by_table.predict_paths(tests, progress=False)
    assert sum(len(r.get("faces", [])) for r in a) >= len(tests) // 2
    for ra, rb in zip(a, b):
        assert ra["label"] == rb["label"] and len(ra["faces"]) == len(rb["faces"])
        for fa, fb in zip(ra["faces"], rb["faces"]):
            assert (fa["label"], fa["verdict"], fa["box"]) == (fb["label"], fb["verdict"], fb["box"])
            assert (fa["probability"] is None) == (fb["probability"] is None)
            assert fa["probability"] is None or abs(fa["probability"] - fb["probability"]) <= 1e-6
    D = np.concatenate([ph.descriptors for ph in extraction.extract(tests, by_folder.recipe, progress=False)
                        if ph.descriptors is not None and len(ph.descriptors)])
    np.testing.assert_allclose(by_table.estimator.predict_proba(D), by_folder.estimator.predict_proba(D), atol=1e-6)


def test_wavelet_recipe_trains_on_haar_faces(small_sets):
    train_dir, _ = small_sets
    model = classify.train(train_dir, features="wavelet", progress=False)
    assert model.recipe == Recipe("wavelet", "haar")
    assert model.max_distance is None and model.training_report_.summary()["faces_kept"] >= 6
    X = np.zeros((1, 4096), np.float32)
    pred = model.predict_features([Face((0, 0, 40, 40), 1.0)], X)[0]
    assert pred.best in model.classes_


# --------------------------------------------------------------------------- CLI
def _cli(*args) -> tuple[int, str, str]:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "vision_lib", *map(str, args)], capture_output=True, text=True,
                          timeout=900)
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_train_report_lists_every_training_face(rng, tmp_path, capsys):
    import csv

    from vision_lib.cli import main

    photos, labels = _labelled_folders(rng, _identities(rng))
    _as_table(photos, labels).save(tmp_path / "faces.npz")
    report = tmp_path / "out" / "report.csv"  # its folder is created
    args = ["train", str(tmp_path / "faces.npz"), "--quiet", "--jobs", "1", "--out", str(tmp_path / "m.pkl")]
    assert main(args + ["--report", str(report)]) == 0
    rep = classify.load_model(tmp_path / "m.pkl").training_report_
    with open(report, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == rep.COLUMNS and len(rows) - 1 == len(rep.kept) + len(rep.excluded) > 0
    kept = [r for r in rows[1:] if r[3] == "kept"]
    assert sorted((r[0], int(r[2])) for r in kept) == sorted((k[0], k[2]) for k in rep.kept)
    left = [r for r in rows[1:] if r[3] != "kept"]
    assert left and all(r[3] == "left out" and r[4] for r in left), left
    assert f"wrote {report} ({len(rep.kept)} faces kept" in capsys.readouterr().out
    # A second run refuses the existing report before any training, and writes no model either.
    before = report.read_bytes()
    assert main(["train", str(tmp_path / "faces.npz"), "--quiet", "--out", str(tmp_path / "n.pkl"),
                 "--report", str(report)]) == 2
    assert "--overwrite" in capsys.readouterr().err and not (tmp_path / "n.pkl").exists()
    assert report.read_bytes() == before
    assert main(["train", str(tmp_path / "faces.npz"), "--quiet", "--out", str(tmp_path / "n.pkl"),
                 "--report", str(tmp_path / "n.pkl")]) == 2
    assert "another file than the model" in capsys.readouterr().err


def test_cli_train_then_predict_json(small_sets, tmp_path):
    train_dir, test_dir = small_sets
    model = tmp_path / "model.pkl"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(train_dir / "loose.png")  # a photo without a person folder
    (train_dir / "Nobody").mkdir()  # a person folder with nothing in it: said, not silently missing
    rc, out, err = _cli("train", train_dir, "--out", model, "--quiet")
    (train_dir / "loose.png").unlink()
    (train_dir / "Nobody").rmdir()
    assert rc == 0, err
    assert "       1  empty folder: no photos" in out  # counts by reason, not a line per photo
    assert str(train_dir / "Nobody") not in out and "--report FILE.csv lists every photo" in out
    assert "training faces" in out and "left out:" in out and model.is_file()
    assert "note: 1 photos lie directly in" in out and "loose.png" in out
    loaded = classify.load_model(model)
    info = loaded.info_
    assert f"  classifier: {info['model']} (5-fold CV accuracy " in out and "svm_rbf 0." in out
    assert f"descriptor, {info['model']}, unknown below p=" in out  # the bundle's repr names it too
    # The counts add up to the exclusions the bundle's training report holds; the list itself is --report's.
    report = loaded.training_report_
    assert report.excluded and sum(report.counts().values()) == len(report.excluded)
    for reason, n in report.counts().items():
        assert f"  {n:6d}  {reason}\n" in out
    assert not any(e.path in out for e in report.excluded if e.path != str(train_dir / "Nobody"))
    rc, _, err = _cli("train", train_dir, "--out", model, "--quiet")
    assert rc == 2 and "--overwrite" in err
    rc, out, err = _cli("train", train_dir, "--out", tmp_path, "--overwrite", "--quiet")  # a folder: refused first
    assert rc == 2 and "not a regular file" in err and "training faces" not in out
    rc, _, err = _cli("train", train_dir, "--out", tmp_path / "x.pkl", "--max-distance", "tight")
    assert rc == 2 and "adaptive" in err and not (tmp_path / "x.pkl").exists()
    for bad, says in ((["--far", "0"], "--far must be 'off' or a positive"), (["--far", "1.5"], "below 1"),
                      (["--strangers", tmp_path / "nowhere"], "no such folder")):
        rc, _, err = _cli("train", train_dir, "--out", tmp_path / "x.pkl", *bad)
        assert rc == 2 and says in err and not (tmp_path / "x.pkl").exists(), err
    rc, _, err = _cli("train", train_dir, "--out", tmp_path / "open.pkl", "--max-distance", "adaptive", "--quiet")
    assert rc == 0, err
    # Adaptive is capped at the (default) descriptor's same-person distance.
    from vision_lib.models import same_person_distance

    assert 0 < classify.read_header(tmp_path / "open.pkl")["header"]["max_distance"] <= same_person_distance()

    # Inputs: a folder with a nested folder, an unreadable file, a photo without a face, one file.
    inbox = tmp_path / "inbox"
    nested = inbox / "a" / "b"
    nested.mkdir(parents=True)
    photos = sorted(test_dir.rglob("*.jpg"))
    shutil.copy(photos[0], nested / "deep.jpg")
    (inbox / "broken.jpg").write_bytes(b"not a jpeg")
    os.mkfifo(inbox / "pipe.jpg")  # read, it would wait for a writer for ever
    Image.fromarray(np.full((120, 160, 3), 200, np.uint8)).save(inbox / "blank.png")
    rc, out, err = _cli("predict", "--model", model, inbox, photos[1], "--json")  # the older form below
    assert rc == 1, err  # every photo answered, but broken.jpg failed: the exit code says so
    lines = [json.loads(line) for line in out.splitlines()]
    by_name = {Path(r["path"]).name: r for r in lines}
    assert set(by_name) == {"deep.jpg", "broken.jpg", "pipe.jpg", "blank.png", photos[1].name}
    assert set(by_name["broken.jpg"]) == {"path", "error"}
    assert by_name["pipe.jpg"]["error"] == "cannot read: not a regular file"
    assert by_name["blank.png"] == {"path": str(inbox / "blank.png"), "label": None, "faces": [],
                                    "answer": "No face found in this photo"}
    for r in (by_name["deep.jpg"], by_name[photos[1].name]):
        assert set(r) == {"path", "label", "faces", "answer"}
        assert r["faces"], r  # held-out player photos: their faces are found and answered
        for f in r["faces"]:
            assert set(f) == {"box", "label", "probability", "verdict", "stranger_rate", "closeness"}
            assert len(f["box"]) == 4
            assert f["label"] in model_labels(model) + ["unknown"]
            assert (f["probability"] is None) == (f["label"] == "unknown")  # no percentage on an unknown face
        assert r["label"] is None or r["label"] in [f["label"] for f in r["faces"]]
        probabilities = [f["probability"] for f in r["faces"] if f["probability"] is not None]
        assert probabilities == sorted(probabilities, reverse=True)  # most confident first, unknown last
        assert [f["label"] == "unknown" for f in r["faces"]] == sorted(f["label"] == "unknown" for f in r["faces"])
    # The same photos as text: a tab-separated line each, probabilities as the web page shows them.
    from vision_lib.plotting import percent

    rc, text, _ = _cli("predict", model, inbox, photos[1])
    rows = {Path(line.split("\t")[0]).name: line.split("\t") for line in text.splitlines()}
    assert rc == 1 and set(rows) == set(by_name) and rows["broken.jpg"][1].startswith("error:")
    for name in ("deep.jpg", photos[1].name):
        assert rows[name][1] == (by_name[name]["label"] or "-")
        for f in by_name[name]["faces"]:
            assert (f"{f['label']} {percent(f['probability'])}" if f["probability"] is not None
                    else f"{f['label']} ({f['verdict']})") in rows[name][2]
        # Last, the answer a presenter can read out, in the web page's words (one shared function).
        from vision_lib.plotting import verdict_words

        assert rows[name][3] == verdict_words(by_name[name], len(model_labels(model))) == by_name[name]["answer"]
    rc, _, err = _cli("predict", model, nested, "--json")
    assert rc == 0, err
    (tmp_path / "empty").mkdir()
    rc, out, err = _cli("predict", model, tmp_path / "empty", "--json")
    assert rc == 1 and "no photos in" in err
    assert [json.loads(x) for x in out.splitlines()] == [{"path": str(tmp_path / "empty"),
                                                          "skipped": "empty folder: no photos"}]


def test_cli_predict_says_error_for_a_file_it_could_not_read_wherever_it_is(tmp_path, monkeypatch, capsys):
    # A photo behind a broken link was "skipped" in a folder when it had no extension (IMG_0002) but an
    # "error" with .jpg or named on the command line, and then read "No such file or directory".
    from vision_lib.cli import main

    class Model:  # predict_paths as FaceClassifier's for files that cannot be read (no model needed)
        def predict_paths(self, paths, **kw):
            return [{"path": str(ph.path), "error": ph.error} for ph in extraction.extract(paths, progress=False)]

    monkeypatch.setattr(classify, "load_model", lambda path: Model())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.symlink(tmp_path / "gone" / "IMG_0002", inbox / "IMG_0002")  # a phone export: no extension
    os.symlink(tmp_path / "gone" / "IMG_0003.jpg", inbox / "IMG_0003.jpg")
    (inbox / "notes.txt").write_text("not a photo")
    broken = "cannot read: broken link (its target does not exist)"
    assert main(["predict", "--model", "m.pkl", str(inbox), str(inbox / "IMG_0002"), "--json"]) == 1
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines == [{"path": str(inbox / "IMG_0002"), "error": broken}, {"path": str(inbox / "IMG_0003.jpg"), "error": broken},
                     {"path": str(inbox / "notes.txt"), "skipped": "not a photo: text file"},
                     {"path": str(inbox / "IMG_0002"), "error": broken}]
    assert main(["predict", "--model", "m.pkl", str(inbox), "--quiet"]) == 1
    assert capsys.readouterr().out.splitlines()[0] == f"{inbox / 'IMG_0002'}\terror: {broken}"
    assert main(["compress", str(inbox), "--out", str(tmp_path / "c")]) == 1  # the same words as compress
    assert json.loads(capsys.readouterr().out.splitlines()[0]) == {"path": str(inbox / "IMG_0002"), "error": broken}


def model_labels(path: Path) -> list[str]:
    return list(classify.read_header(path)["header"]["labels"])


# --------------------------------------------------------------------------- notebook 03
@pytest.mark.notebook
def test_notebook_03_runs_on_small_parameters(footballers_dir, tmp_path):
    from vision_lib.notebooks import execute_notebook

    out = tmp_path / "out"
    res = execute_notebook(ROOT / "notebooks" / "03_model_development.ipynb", tmp_path / "nb",
                           {"limit": PER_PLAYER + 2, "test_size": 0.3, "seed": 0, "out_dir": str(out)},
                           html=False)
    assert res.ok, res.error
    assert res.stderr == [], res.stderr  # a clean report: no start-up noise, no warnings
    summary = json.loads((out / "summary.json").read_text())
    assert {r["model"] for r in summary["comparison"]} == set(classify.MODELS)
    assert summary["test"]["photos"] > 0 and 0.5 <= summary["test"]["accuracy_all"] <= 1.0
    assert summary["excluded"]  # uncurated folders always lose something
    assert len(summary["confusion"]) == 6


def test_split_keeps_a_single_photo_person_in_training(tmp_path):
    from vision_lib.io import PhotoSet

    paths = [tmp_path / f"{p}{i}.jpg" for p, n in (("a", 6), ("b", 6), ("c", 1)) for i in range(n)]
    labels = [p.name[0] for p in paths]
    ps = PhotoSet(tmp_path, paths, labels)
    with pytest.warns(UserWarning, match="single photo.*: c"):
        tr, te = classify.split(ps, 0.3, 0)
    assert "c" in tr.labels and "c" not in te.labels and len(tr) + len(te) == 13
    # Without the single photo, the split of the others is the same.
    both = PhotoSet(tmp_path, paths[:12], labels[:12])
    tr2, te2 = classify.split(both, 0.3, 0)
    assert te2.paths == te.paths


def test_split_keeps_copies_of_a_photo_on_one_side(tmp_path):
    from sklearn.model_selection import train_test_split

    from vision_lib.io import PhotoSet

    rng = np.random.default_rng(0)
    paths, labels = [], []
    for person in "ab":
        for i in range(8):
            p = tmp_path / f"{person}{i}.png"
            p.write_bytes(rng.integers(0, 256, 64, dtype=np.uint8).tobytes())  # distinct bytes per photo
            paths.append(p)
            labels.append(person)
    plain = PhotoSet(tmp_path, list(paths), list(labels))
    # Without copies: exactly the plain stratified split of the photos.
    tr_idx, _ = train_test_split(np.arange(16), test_size=0.3, random_state=0, stratify=labels)
    assert classify.split(plain, 0.3, 0)[0].paths == [paths[i] for i in sorted(tr_idx)]
    # A scraped folder saves some photos twice (and three times) under other names.
    for i in (0, 1, 9, 9):
        copy = tmp_path / f"{labels[i]}_copy{len(paths)}.png"
        copy.write_bytes(paths[i].read_bytes())
        paths.append(copy)
        labels.append(labels[i])
    ps = PhotoSet(tmp_path, paths, labels)
    assert [[p.name for p in files] for files in cache.copied_files(ps.paths)] == [
        ["a0.png", "a_copy16.png"], ["a1.png", "a_copy17.png"], ["b1.png", "b_copy18.png", "b_copy19.png"]]
    assert classify.copied_files is cache.copied_files  # the name documented before the move still works
    for seed in range(10):
        tr, te = classify.split(ps, 0.3, seed)
        assert len(tr) + len(te) == len(ps) and set(te.labels) == {"a", "b"}
        seen = {p.read_bytes() for p in tr.paths}
        assert not [p.name for p in te.paths if p.read_bytes() in seen], seed


def test_split_per_person_picks_n_photos_each_and_holds_out_no_copy_of_them(tmp_path):
    from PIL import Image

    from vision_lib.io import photo_set

    rng = np.random.default_rng(0)
    for person in "abc":
        (tmp_path / person).mkdir()
        for i in range(6):  # distinct noise photos
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / person / f"{i}.png")
    everyone = photo_set(tmp_path, labelled=True)
    for p in everyone.paths:  # every photo of a is saved twice, under another name
        if p.parent.name == "a":
            (p.parent / f"copy_{p.name}").write_bytes(p.read_bytes())
    training, held = classify.split_per_person(tmp_path, 2, seed=1, people=["a", "b"])
    ps = photo_set(tmp_path, labelled=True)
    ps = ps.subset(i for i, lab in enumerate(ps.labels) if lab != "c")
    assert training.paths == ps.limit(per_label=2, seed=1).paths  # PhotoSet.limit's pick among a and b
    assert set(held.labels) == {"a", "b"} and held.paths == sorted(held.paths)
    trained = {p.read_bytes() for p in training.paths}
    assert not [p for p in held.paths if p.read_bytes() in trained]
    # Only the copies of training photos are left out of both parts.
    left_out = set(ps.paths) - set(training.paths) - set(held.paths)
    assert left_out and all(p.read_bytes() in trained for p in left_out)


def test_cross_validation_folds_keep_copies_of_a_face_together():
    from sklearn.model_selection import StratifiedKFold

    from vision_lib.classify.selection import cv_folds

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8)).astype(np.float32)
    y = np.repeat(["a", "b"], 20)
    plain = StratifiedKFold(5, shuffle=True, random_state=0).split(X, y)
    ours, plain = cv_folds(X, y, 5, 0), list(plain)
    assert len(ours) == len(plain) == 5  # zip() below would stop at the shorter list
    assert all((a == c).all() and (b == d).all() for (a, b), (c, d) in zip(ours, plain))
    # Photos saved twice give the same face row twice: never one copy to fit, the other to score.
    X2, y2 = np.concatenate([X, X[[0, 3, 25, 25]]]), np.concatenate([y, y[[0, 3, 25, 25]]])
    folds = cv_folds(X2, y2, 5, 0)
    assert len(folds) == 5 and sorted(np.concatenate([t for _, t in folds]).tolist()) == list(range(44))
    for train, test in folds:
        assert not {X2[i].tobytes() for i in train} & {X2[i].tobytes() for i in test}
        assert set(y2[test]) == {"a", "b"}


# --------------------------------------------------------------------------- the package's names
def test_every_name_of_the_single_module_classify_is_still_there():
    # classify.py became the package vision_lib/classify/: notebooks, cli, serve, benchmarks use these.
    old = ["ADAPTIVE_FACTOR", "AUTO_CLASSIFIERS", "AUTO_MODELS", "BUNDLE_FORMAT", "CHOICES", "CLASSIFIERS",
           "CLEANING", "CURVE_FARS", "DEFAULT_FAR", "Evaluation", "Excluded", "FEATURES", "Face", "FaceClassifier",
           "FacePrediction", "MIN_FACES_PER_PERSON", "MODELS", "ModelBundleError", "PhotoFeatures", "PhotoSet",
           "RETRY_BORDER", "RETRY_PARAMS", "Recipe", "SUBJECT_TIE", "SUBJECT_TIE_SHARE", "TrainingReport",
           "UNKNOWN", "VERSIONED", "check_model_path", "check_output_folder", "choose_model",
           "clean_training_set", "compare_models", "detect_harder", "evaluate", "extract", "load_model",
           "make_estimator", "make_writable_folder", "mcnemar_p", "photo_curve", "photo_set", "read_header",
           "recipe_faces", "recipe_features", "same_person_distance", "save_model", "select_faces", "split",
           "train", "training_faces", "training_matrix", "unknown_threshold", "write_atomic"]
    assert [n for n in old if not hasattr(classify, n)] == []
    assert callable(classify.train) and classify.extract is extraction.extract


def test_training_report_pickles_under_the_class_path_of_older_bundles():
    report = classify.TrainingReport([("a.jpg", "x", 0, 0.2)], [classify.Excluded("b.jpg", "x", "no face found")], 0.6)
    data = pickle.dumps(report, protocol=5)
    assert b"vision_lib.classify.cleaning" not in data and b"vision_lib.classify" in data
    assert pickle.loads(data) == report
