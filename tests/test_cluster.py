"""Identity clustering: estimator behaviour on generated descriptors, metrics by hand, export, real LFW."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _corpus import held_by_another_run
from vision_lib import cluster
from vision_lib.cluster import IdentityClustering, external_metrics, internal_metrics
from vision_lib.tables import FaceTable


# Synthetic people are built at dlib's scale (same person within 0.6): the tests pin descriptor="dlib".
def _people(rng, n_people=6, per=8, spread=0.25, n_noise=3, dim=128):
    """Descriptor-like data: people ~1 apart, same-person faces ~0.35 apart, plus far-away loners."""
    centres = rng.normal(size=(n_people, dim))
    centres *= 0.75 / np.linalg.norm(centres, axis=1, keepdims=True)  # pairwise ~1.06
    X = np.repeat(centres, per, axis=0) + rng.normal(scale=spread / np.sqrt(dim), size=(n_people * per, dim))
    y = np.repeat(np.arange(n_people), per)
    loners = rng.normal(size=(n_noise, dim))
    loners *= 0.75 / np.linalg.norm(loners, axis=1, keepdims=True)
    return np.vstack([X, loners]), np.r_[y, n_people + np.arange(n_noise)]


@pytest.mark.parametrize("method", ["hybrid", "agglomerative", "chinese_whispers", "hdbscan", "dbscan"])
def test_methods_find_the_people_and_leave_loners_unassigned(rng, method):
    X, y = _people(rng)
    model = IdentityClustering(descriptor="dlib", method=method).fit(X)
    assert model.n_clusters_ == 6
    assert np.all(model.labels_[-3:] == -1), "loners must be unassigned, not forced into a group"
    assert external_metrics(y, model.labels_)["bcubed_f"] == pytest.approx(1.0)
    # groups are numbered largest first, 0..k-1
    assert set(model.labels_[model.labels_ >= 0]) == set(range(6))


def test_kmeans_needs_k_or_borrows_it_and_assigns_everyone(rng):
    X, y = _people(rng)
    labels = IdentityClustering(descriptor="dlib", method="kmeans", random_state=0).fit_predict(X)
    assert (labels >= 0).all() and len(set(labels)) == 6
    assert len(set(IdentityClustering(descriptor="dlib", method="kmeans", n_clusters=3, random_state=0).fit_predict(X))) == 3


def test_threshold_and_k_change_the_answer(rng):
    X, _ = _people(rng)
    agg = {"method": "agglomerative"}
    assert IdentityClustering(descriptor="dlib", threshold=2.0, **agg).fit(X).n_clusters_ == 1  # everyone merged
    assert IdentityClustering(descriptor="dlib", threshold=0.05, **agg).fit(X).n_clusters_ == 0  # everyone alone -> unassigned
    assert IdentityClustering(descriptor="dlib", n_clusters=4).fit(X).n_clusters_ <= 4


def test_hybrid_keeps_dense_look_alikes_apart_and_groups_small_people(rng):
    """Two tight people whose centres are closer than 0.6: average linkage merges them, the
    density cores of the default do not; a person with fewer faces than a core is still grouped."""
    dim = 128
    centre = rng.normal(size=dim)
    centre *= 0.7 / np.linalg.norm(centre)
    step = rng.normal(size=dim)
    step -= step @ centre / (centre @ centre) * centre
    step *= 0.25 / np.linalg.norm(step)  # the two people's centres are 0.5 apart
    a = centre + step + rng.normal(scale=0.15 / np.sqrt(dim), size=(12, dim))
    b = centre - step + rng.normal(scale=0.15 / np.sqrt(dim), size=(12, dim))
    c = -centre + rng.normal(scale=0.15 / np.sqrt(dim), size=(3, dim))  # 3 faces < HYBRID_CORE_SIZE
    X, y = np.vstack([a, b, c]), np.r_[np.zeros(12), np.ones(12), np.full(3, 2)]
    merged = IdentityClustering(descriptor="dlib", method="agglomerative").fit_predict(X)
    assert len(set(merged[:24])) == 1, "the look-alikes should be merged by average linkage at 0.6"
    labels = IdentityClustering(descriptor="dlib").fit_predict(X)
    assert external_metrics(y, labels)["bcubed_f"] == pytest.approx(1.0)


def _look_alike_with_few_photos(seed: int, small: int = 7, big: int = 30, dim: int = 16):
    """A person of ``big`` faces and a look-alike of ``small`` (a few more than a core), centres 0.4
    apart: on average closer than dlib's 0.6, so only density can tell them apart."""
    rng = np.random.default_rng(seed)
    a = rng.normal(scale=0.05, size=(big, dim))
    b = rng.normal(scale=0.05, size=(small, dim))
    b[:, 0] += 0.4
    return np.vstack([a, b]), big


def test_hybrid_cores_separate_a_look_alike_with_few_photos():
    """With HDBSCAN's density measured over 5 faces (scikit-learn's default), a person of a few more
    than 5 faces has the density of their whole group and stays inside the look-alike's core in some
    draws; without smoothing (``core_min_samples=1``) they are apart in every draw. (Two people only:
    no other core to calibrate the look-alike split on, so the default keeps the smoothing's answer;
    with other people see the next test.)"""
    def apart(**params) -> int:
        count = 0
        for seed in range(20):
            X, big = _look_alike_with_few_photos(seed)
            labels = IdentityClustering(descriptor="dlib", **params).fit_predict(X)
            count += not set(labels[:big]) & set(labels[big:])
        return count

    assert cluster.HYBRID_MIN_SAMPLES is IdentityClustering().get_params()["core_min_samples"] is None
    assert apart(core_min_samples=1) == 20
    assert apart() < 20, "the default smoothing should merge the pair in some draws"


def _people_and_a_pair(seed: int, gap: float, others: float, small: int, dim: int = 16):
    """Five people of 12 faces and a person A of 30, their centres ``others`` apart, and B (``small``
    faces) ``gap`` from A: a look-alike (``gap`` about ``others``) or a pose of A (``gap`` well under
    it). Labels 0-4 the five, 5 A, 6 B."""
    rng = np.random.default_rng(seed)
    axes = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    centres = [others / np.sqrt(2) * axes[i] for i in range(6)]
    X = [c + rng.normal(scale=0.05, size=(12 if i < 5 else 30, dim)) for i, c in enumerate(centres)]
    X.append(centres[5] + gap * axes[-1] + rng.normal(scale=0.05, size=(small, dim)))
    return np.vstack(X), np.repeat(np.arange(7), [12] * 5 + [30, small])


def test_hybrid_splits_a_look_alike_the_smoothing_keeps_when_strangers_come_no_nearer():
    """A look-alike of 7 faces as far from A as the collection's other people are from each other:
    the smoothed cores keep the pair together in half the draws; the default cuts out every core of
    the clustering without smoothing that would not join A as a new group joins a person (the open-set
    limit for groups, calibrated on the other cores), so the pair is apart as often as without
    smoothing."""
    def apart(**params) -> int:
        count = 0
        for seed in range(20):
            X, y = _people_and_a_pair(seed, gap=0.35, others=0.35, small=7)
            labels = IdentityClustering(descriptor="dlib", **params).fit_predict(X)
            count += not set(labels[y == 5]) & set(labels[y == 6])
        return count

    assert IdentityClustering().get_params()["split_lookalikes"] is True
    kept = apart(split_lookalikes=False)
    assert kept <= 12, "the smoothing alone should keep the pair together in several draws"
    assert apart() >= max(kept + 6, apart(core_min_samples=1))


def test_hybrid_keeps_a_pose_group_with_its_person_where_cores_without_smoothing_cut_it():
    """One person's pose group of 8 faces (0.3 from the rest, nearer than any other person, 0.5):
    the clustering without smoothing makes it a core of its own in some draws; the default keeps the
    person whole in every draw (the pose group passes the group test into its person)."""
    def whole(**params) -> int:
        count = 0
        for seed in range(20):
            X, y = _people_and_a_pair(seed, gap=0.3, others=0.5, small=8)
            labels = IdentityClustering(descriptor="dlib", **params).fit_predict(X)
            count += len(set(labels[y >= 5])) == 1 and labels[y >= 5][0] >= 0
        return count

    assert whole(core_min_samples=1) <= 16, "cores without smoothing should cut the person in some draws"
    assert whole() == 20


def test_hybrid_splits_a_density_core_that_chains_people(rng, monkeypatch):
    """Where a collection is dense everywhere HDBSCAN can return one core holding several people
    (seen on the footballer photos); the default splits every core by the same-person threshold."""
    import sklearn.cluster

    dim = 128
    centres = rng.normal(size=(3, dim))
    centres *= 0.6 / np.linalg.norm(centres, axis=1, keepdims=True)  # ~0.85 apart
    X = np.vstack([c + rng.normal(scale=0.2 / np.sqrt(dim), size=(10, dim)) for c in centres])
    y = np.repeat([0, 1, 2], 10)

    seen = []

    class OneCore:  # HDBSCAN chaining everybody into a single core
        def __init__(self, **kwargs):
            pass

        def fit_predict(self, X):
            seen.append(len(X))
            return np.zeros(len(X), dtype=int)

    monkeypatch.setattr(sklearn.cluster, "HDBSCAN", OneCore)
    labels = IdentityClustering(descriptor="dlib").fit_predict(X)
    # The stand-in must be what built the cores: the real HDBSCAN already separates these three
    # people, so without it the split would go untested.
    assert seen == [len(X)], "the clustering did not use the stand-in HDBSCAN"
    assert external_metrics(y, labels)["bcubed_f"] == pytest.approx(1.0)


def test_attach_noise_joins_the_nearest_group_on_average_within_the_distance():
    X = np.array([[0.0, 0], [0.2, 0], [1.0, 0], [1.2, 0], [0.3, 0], [0.6, 3]])
    labels = np.array([0, 0, 1, 1, -1, -1])
    out = cluster._attach_noise(X, labels, 0.6)
    assert out.tolist() == [0, 0, 1, 1, 0, -1]  # mean distances 0.2 to group 0; the far one stays
    assert cluster._attach_noise(X, labels, 0.1).tolist() == labels.tolist()


def test_max_clusters_caps_by_merging_closest_groups(rng):
    X, y = _people(rng, n_people=6)
    shift = rng.normal(size=128)
    X[8:16] = X[0:8] + 0.6 * shift / np.linalg.norm(shift)  # person 1: a near look-alike of person 0
    assert IdentityClustering(descriptor="dlib").fit(X).n_clusters_ == 6
    capped = IdentityClustering(descriptor="dlib", max_clusters=5).fit(X)
    assert capped.n_clusters_ == 5
    assert len(set(capped.labels_[0:16])) == 1, "the two closest groups are the ones merged"
    assert np.all(capped.labels_[-3:] == -1)


def test_bad_input_is_refused(rng):
    with pytest.raises(ValueError, match="unknown method"):
        IdentityClustering(descriptor="dlib", method="magic").fit(rng.normal(size=(4, 3)))
    with pytest.raises(ValueError, match="2D array"):
        IdentityClustering(descriptor="dlib").fit(np.zeros(5))
    assert IdentityClustering(descriptor="dlib").fit(np.zeros((0, 128))).n_clusters_ == 0
    assert IdentityClustering(descriptor="dlib").fit(np.zeros((1, 128))).labels_.tolist() == [-1]


def test_external_metrics_by_hand():
    truth = ["a", "a", "a", "b", "b", "c"]
    labels = [0, 0, 1, 1, 1, -1]
    m = external_metrics(truth, labels)
    # clusters {a,a} {a,b,b} {c}: BCubed precision = (1+1+1/3+2/3+2/3+1)/6, recall = (2/3+2/3+1/3+1+1+1)/6
    assert m["bcubed_precision"] == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3 + 1) / 6)
    assert m["bcubed_recall"] == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1 + 1) / 6)
    # pairs: same-cluster pairs 1 + 3 = 4, of which true 1 + 1 = 2; same-class pairs 3 + 1 = 4
    assert m["pairwise_precision"] == pytest.approx(0.5)
    assert m["pairwise_recall"] == pytest.approx(0.5)
    assert m["purity"] == pytest.approx(5 / 6)
    assert m["n_clusters"] == 2 and m["unassigned"] == pytest.approx(1 / 6)


def test_noise_counts_as_singletons_not_as_a_group():
    truth = ["a"] * 4 + ["b"] * 4
    all_noise = external_metrics(truth, [-1] * 8)
    assert all_noise["bcubed_precision"] == 1.0
    assert all_noise["bcubed_recall"] == pytest.approx(0.25)
    assert all_noise["pairwise_recall"] == 0.0
    # if -1 were treated as one group, this would be a perfect score for person a
    m = external_metrics(truth, [-1, -1, -1, -1, 0, 0, 0, 0])
    assert m["bcubed_recall"] < 1.0 and m["bcubed_precision"] == 1.0


def test_internal_metrics_leave_noise_out_and_are_none_when_undefined(rng):
    X, _ = _people(rng)
    labels = IdentityClustering(descriptor="dlib").fit_predict(X)
    m = internal_metrics(X, labels)
    assert m["n_unassigned"] == 3 and m["silhouette"] > 0.5 and m["davies_bouldin"] < 1.0
    assert internal_metrics(X, np.zeros(len(X), int))["silhouette"] is None


def test_subject_face_prefers_the_centred_face_among_large_ones():
    shape = (150, 150)
    boxes = [(0, 0, 60, 60), (50, 50, 50, 50), (70, 70, 10, 10)]  # largest first
    assert cluster.subject_face(boxes, shape) == 1  # central and not much smaller
    assert cluster.subject_face([(0, 0, 60, 60), (70, 70, 20, 20)], shape) == 0  # tiny central face loses
    assert cluster.subject_face([(0, 0, 60, 60)], shape) == 0


def _fake_faces(root: Path, rng) -> FaceTable:
    (root / "p1").mkdir(parents=True)
    (root / "p2").mkdir()
    paths = []
    for i, sub in enumerate(["p1", "p1", "p2"]):
        p = root / sub / f"img{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    sources = ["p1/img0.jpg", "p1/img1.jpg", "p2/img2.jpg", "p2/img2.jpg"]
    faces = FaceTable(
        "descriptor", np.zeros((4, 128)), sources, ["p1", "p1", "p2", "p2"], np.array([0, 0, 0, 1]),
        np.zeros((4, 4), int), [], {}, subject=np.array([1, 1, 1, 0], bool),
        photos=["p1/img0.jpg", "p1/img1.jpg", "p2/img2.jpg"], photo_labels=["p1", "p1", "p2"], root=root,
    )
    assert faces.paths == paths + [paths[2]]
    return faces


def test_export_writes_csv_copies_and_never_overwrites(tmp_path, rng):
    faces = _fake_faces(tmp_path / "in", rng)
    faces.boxes = np.array([[5, 5, 10, 10], [0, 0, 20, 20], [2, 3, 6, 8], [12, 10, 6, 6]])
    before = {p: p.read_bytes() for p in faces.paths}
    out = cluster.export_clusters(faces, [0, 0, 1, -1], tmp_path / "out", metrics={"x": 1})
    rows = list(csv.DictReader(open(out / "clusters.csv")))
    assert [(r["source"], r["face_index"], r["cluster"]) for r in rows] == [
        ("p1/img0.jpg", "0", "0"), ("p1/img1.jpg", "0", "0"), ("p2/img2.jpg", "0", "1"), ("p2/img2.jpg", "1", "-1")]
    assert sorted(p.name for p in (out / "cluster_00").iterdir()) == ["faces", "p1__img0.jpg", "p1__img1.jpg"]
    # Beside the photo copies, a crop of the face that is in the group (box + 20 % margin, clamped).
    sizes = {p.relative_to(out).as_posix(): Image.open(p).size for p in out.glob("*/faces/*.jpg")}
    assert sizes == {"cluster_00/faces/p1__img0_face0.jpg": (14, 14), "cluster_00/faces/p1__img1_face0.jpg": (20, 20),
                     "cluster_01/faces/p2__img2_face0.jpg": (8, 12), "unassigned/faces/p2__img2_face1.jpg": (8, 8)}
    assert (out / "cluster_01" / "p2__img2.jpg").read_bytes() == before[faces.paths[2]]
    assert (out / "unassigned" / "p2__img2.jpg").is_file()  # its second face is unassigned
    assert json.loads((out / "metrics.json").read_text()) == {"x": 1}
    assert {p: p.read_bytes() for p in faces.paths} == before  # originals untouched
    with pytest.raises(FileExistsError):
        cluster.export_clusters(faces, [0, 0, 1, -1], tmp_path / "out")
    with pytest.raises(ValueError, match="inside the input"):
        cluster.export_clusters(faces, [0, 0, 1, -1], tmp_path / "in" / "out")
    assert faces.photo_clusters([0, 0, 1, -1]).tolist() == [0, 0, 1]


def test_export_is_whole_or_absent_and_locked(tmp_path, rng, monkeypatch):
    faces = _fake_faces(tmp_path / "in", rng)
    out = tmp_path / "out"

    def interrupted(pairs, **kw):
        list(pairs)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(cluster.export, "copy_grouped", interrupted)
        with pytest.raises(KeyboardInterrupt):
            cluster.export_clusters(faces, [0, 0, 1, -1], out)
    assert os.listdir(tmp_path) == ["in"]  # nothing half-written; the folder it created is gone again
    out.mkdir()
    with held_by_another_run(out), pytest.raises(BlockingIOError, match="another run is writing"):
        cluster.export_clusters(faces, [0, 0, 1, -1], out)
    (out / ".vision-lib-part-killed" / "cluster_00").mkdir(parents=True)  # left by `kill -9`
    cluster.export_clusters(faces, [0, 0, 1, -1], out)
    assert sorted(os.listdir(out)) == ["cluster_00", "cluster_01", "clusters.csv", "metrics.json", "unassigned"]


def test_cluster_folder_keeps_its_run_when_a_file_manager_drops_a_file_in(tmp_path, rng, monkeypatch):
    out = tmp_path / "out"

    def described(in_dir, **kw):  # the slow part, meanwhile a file manager writes into --out
        (out / ".DS_Store").write_bytes(b"x")
        return _fake_faces(tmp_path / "in", rng)

    monkeypatch.setattr(cluster.export, "face_set", described)
    (tmp_path / "in").mkdir()
    metrics = cluster.cluster_folder(tmp_path / "in", out, method="agglomerative", progress=False)
    assert metrics["faces"] == 4 and (out / "metrics.json").is_file() and (out / ".DS_Store").is_file()
    with pytest.raises(FileExistsError, match="not empty"):
        cluster.cluster_folder(tmp_path / "in", out, progress=False)


def _count_core_faces(monkeypatch) -> tuple[list, list]:
    """Calls of :func:`cluster.core_faces` and the core masks the clustering was given."""
    calls, given = [], []
    core_faces, fit = cluster.core_faces, IdentityClustering.fit

    def counted(faces):
        calls.append(core_faces(faces))
        return calls[-1]

    def fit_seen(self, X, y=None, core_mask=None):
        given.append(core_mask)
        return fit(self, X, y, core_mask=core_mask)

    for module in (cluster.export, cluster.compare):  # the modules that call it
        monkeypatch.setattr(module, "core_faces", counted)
    monkeypatch.setattr(IdentityClustering, "fit", fit_seen)
    return calls, given


def test_export_computes_the_confident_cores_once(tmp_path, rng, monkeypatch):
    faces = _fake_faces(tmp_path / "in", rng)
    faces.boxes[:2] = (0, 0, 80, 80)  # two faces large enough to build cores, two too small
    monkeypatch.setattr(cluster.export, "face_set", lambda in_dir, **kw: faces)
    calls, given = _count_core_faces(monkeypatch)
    metrics = cluster.cluster_folder(tmp_path / "in", tmp_path / "out", progress=False)
    assert len(calls) == 1  # one mask, for the clustering and the metrics alike
    assert given[0] is calls[0] and calls[0].tolist() == [True, True, False, False]
    assert metrics["core_faces"] == 2 and metrics["faces"] == 4


def test_presets_share_one_core_mask(tmp_path, rng, monkeypatch):
    faces = _fake_faces(tmp_path / "in", rng)
    calls, given = _count_core_faces(monkeypatch)
    presets = {"hybrid": {"method": "hybrid"}, "all cores": {"method": "hybrid", "confident_cores": False},
               "agglomerative": {"method": "agglomerative"}}
    rows = cluster.compare_presets(faces, presets)
    assert len(calls) == 1 and [r["name"] for r in rows] == list(presets)
    assert given[0] is calls[0] and given[1] is None and given[2] is calls[0]


def test_hard_links_when_asked(tmp_path, rng):
    faces = _fake_faces(tmp_path / "in", rng)
    out = cluster.export_clusters(faces, [0, 0, 1, 1], tmp_path / "out", link=True)
    copy = out / "cluster_00" / "p1__img0.jpg"
    assert copy.is_file() and os.stat(copy).st_nlink >= 1
    # A link, not a copy: the same file as the original (tmp_path's file system allows hard links).
    assert os.path.samefile(copy, faces.paths[0]) and os.stat(copy).st_nlink >= 2
    assert not os.path.samefile(cluster.export_clusters(faces, [0, 0, 1, 1], tmp_path / "copied")
                                / "cluster_00" / "p1__img0.jpg", faces.paths[0])  # without link: a copy


# --------------------------------------------------------------------------- real photos
@pytest.fixture(scope="module")
def lfw_small(lfw_dir):
    from vision_lib.io import photo_set

    subset = photo_set(lfw_dir, labelled=True)
    people = subset.classes[:: max(1, len(subset.classes) // 8)][:8]
    subset = subset.subset(i for i, lab in enumerate(subset.labels) if lab in people).limit(per_label=6, seed=0)
    return cluster.face_set(lfw_dir, paths=subset.paths, progress=False)


def test_real_lfw_subset_is_clustered_by_person(lfw_small):
    assert len(lfw_small.photos) == 48 and len(lfw_small.rejected) <= 3
    labels = IdentityClustering(descriptor=lfw_small.descriptor).fit_predict(lfw_small.descriptors)
    m = external_metrics(lfw_small.photo_labels, lfw_small.photo_clusters(labels))
    assert m["bcubed_f"] >= 0.9, m
    assert 6 <= m["n_clusters"] <= 12
    # K-Means with the true k, for contrast, must not beat it by much: it cannot leave anyone out
    km = IdentityClustering(method="kmeans", n_clusters=8, random_state=0).fit_predict(lfw_small.descriptors)
    assert (km >= 0).all()


def test_cli_cluster_on_labelled_folder(tmp_path, lfw_small):
    from vision_lib.cli import main

    src = tmp_path / "in"
    for p, rel in zip(lfw_small.paths, lfw_small.sources):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        if not (src / rel).exists():
            (src / rel).write_bytes(Path(p).read_bytes())
    assert main(["cluster", str(src), "--out", str(tmp_path / "out")]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["external"]["bcubed_f"] >= 0.9
    rows = list(csv.DictReader(open(tmp_path / "out" / "clusters.csv")))
    assert len(rows) == len(lfw_small)
    assert main(["cluster", str(src), "--out", str(tmp_path / "out")]) == 2  # refuses to overwrite
    assert main(["cluster", str(src), "--out", str(tmp_path / "o2"), "--clusters", "3", "--method", "kmeans"]) == 0
    assert json.loads((tmp_path / "o2" / "metrics.json").read_text())["internal"]["n_clusters"] == 3


# --------------------------------------------------------------------------- notebook 04
def test_notebook_04_runs_on_small_parameters(tmp_path, lfw_dir, players_dir, footballers_dir):
    from vision_lib.notebooks import NOTEBOOK_DIR, execute_notebook

    res = execute_notebook(NOTEBOOK_DIR / "04_clusterization.ipynb", tmp_path, {
        "lfw_people": 5, "lfw_per_person": 6, "footballers_per_player": 2, "crops_per_folder": 40,
        "with_recipe": True, "seed": 0, "out_dir": str(tmp_path / "nb"),
    }, html=False)
    assert res.ok, res.error
    assert res.stderr == [], res.stderr  # a clean report: no start-up noise, no warnings
    summary = json.loads((tmp_path / "nb" / "summary.json").read_text())
    default = summary["lfw"]["hybrid (default)"]
    assert default["n_true"] == 5 and default["bcubed_f"] >= 0.85
    assert summary["two_players_top"]["crops"] == 40 and summary["two_players_top"]["accuracy"] >= 0.95
    assert summary["two_players_bot"]["frame_pairs"] >= 0.95
    assert set(summary["two_players_top"]["recipe"]) >= {"accuracy", "frame_pairs", "vote"}
    grown = summary["collection"]  # half of each person's photos, named, then the rest added
    assert grown["named"] == 5 and grown["right"] + grown["wrong"] + grown["elsewhere"] == grown["total"] > 0
    assert grown["right"] >= 0.8 * grown["total"] and grown["wrong"] <= 1
    assert grown["search"]["found"][:1] == [grown["search"]["person"]]  # the held-out photo's person is found


def test_identity_clustering_passes_scikit_learns_estimator_checks():
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(IdentityClustering(), on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    # The one deliberate difference: no faces in, no clusters out (not a ValueError).
    assert failed <= {"check_estimators_empty_data_messages"}, failed
    assert len(results) > 30


def test_copies_get_distinct_names_and_are_never_overwritten(tmp_path):
    from vision_lib.cluster import copy_grouped
    from vision_lib.io import flat_name

    sources = ["x/y__z.jpg", "x__y/z.jpg", "a_/b.jpg", "a/_b.jpg", "p1/img0.jpg", "a%5Fb/c.jpg", "a_b/c.jpg"]
    names = [flat_name(s) for s in sources]
    assert len(set(names)) == len(sources) and all("/" not in n for n in names)
    assert flat_name("leo_messi/leo_messi_001.jpg") == "leo_messi__leo_messi_001.jpg"  # usual names unchanged
    src = tmp_path / "src.jpg"
    src.write_bytes(b"photo")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "taken.jpg").write_bytes(b"already here")
    for link in (False, True):
        with pytest.raises(FileExistsError, match="refusing to overwrite"):
            copy_grouped([(src, tmp_path / "g" / "taken.jpg")], link=link)
        assert (tmp_path / "g" / "taken.jpg").read_bytes() == b"already here"
    assert copy_grouped([(src, tmp_path / "g" / n) for n in names]) == len(names)


def test_default_thresholds_follow_the_descriptor(rng):
    """The same people at FaceNet's scale (same person within 1.0) cluster as at dlib's (0.6)."""
    from vision_lib.models import get_descriptor

    X, y = _people(rng)
    scale = get_descriptor("facenet").threshold / get_descriptor("dlib").threshold
    for method in ("hybrid", "chinese_whispers"):
        at_dlib = IdentityClustering(method=method, descriptor="dlib").fit_predict(X)
        at_facenet = IdentityClustering(method=method, descriptor="facenet").fit_predict(X * scale)
        assert at_facenet.tolist() == at_dlib.tolist()
        # ...while dlib's fixed 0.6 on the wider scale would not find the same people
    assert IdentityClustering(descriptor="dlib").fit_predict(X * scale).tolist() != at_dlib.tolist()


def test_presets_name_no_distance_and_report_the_one_they_cut_at(tmp_path, rng):
    import re

    from vision_lib.models import same_person_distance

    assert not [n for n in cluster.METHOD_PRESETS if re.search(r"\d\.\d", n)]  # no "0.6": whose scale would it be?
    faces = _fake_faces(tmp_path / "in", rng)
    presets = {k: cluster.METHOD_PRESETS[k] for k in ("agglomerative", "agglomerative, 5/6 cut", "hdbscan min 3")}
    rows = cluster.compare_presets(faces, presets)
    d = same_person_distance(faces.descriptor)
    assert [r["distance"] for r in rows] == [pytest.approx(d), pytest.approx(5 / 6 * d), None]
