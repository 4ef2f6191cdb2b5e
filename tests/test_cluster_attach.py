"""The local attach rule of ``hybrid`` (``attach="local"``) on generated descriptors: a face, a group
or a piece of a core joins the one core whose 5 nearest faces are on average within the same-person
distance, and nothing joins across that distance or between two equally near people."""
from __future__ import annotations

import numpy as np
import pytest

from vision_lib import cluster
from vision_lib.cluster import HYBRID_CORE_SIZE, IdentityClustering, external_metrics

T = 0.6  # dlib's same-person distance: the tests pin descriptor="dlib"


def _line(x0: float, x1: float, step: float = 0.1, y: float = 0.0) -> np.ndarray:
    xs = np.arange(x0, x1 + step / 2, step)
    return np.c_[xs, np.full(len(xs), y)]


def test_a_profile_face_joins_by_its_nearest_poses_where_the_average_refuses():
    """A wide core (poses along x from 0 to 3): a profile face at x=3.4 is 0.3 on average from the
    core's 5 nearest faces but 1.9 from all of them; a look-alike 0.8 beside the profiles stays out."""
    core = _line(0.0, 3.0)
    X = np.vstack([core, [[3.4, 0.0], [3.0, 0.8]]])
    labels = np.r_[np.zeros(len(core), int), -1, -1]
    assert cluster._attach_noise(X, labels, T)[-2:].tolist() == [-1, -1]  # the old rule refuses both
    out = cluster._attach_local(X, labels, T, HYBRID_CORE_SIZE)
    assert out[-2] == 0, "the profile face is within the threshold of its person's profiles"
    assert out[-1] == -1, "the look-alike's nearest faces are 0.8 away, beyond the threshold"


def test_a_face_near_two_people_is_decided_by_the_average_or_left_out():
    """Between two cores, each 0.5 from its 5 nearest faces: no clear nearest, and on average it is
    farther than the threshold from both, so it joins neither."""
    a, b = _line(0.0, 2.0), _line(3.0, 5.0)
    X = np.vstack([a, b, [[2.5, 0.0]]])
    labels = np.r_[np.zeros(len(a), int), np.ones(len(b), int), -1]
    assert cluster._attach_local(X, labels, T, HYBRID_CORE_SIZE)[-1] == -1
    # with a core clearly nearer on average as well, the old rule's answer is kept
    X2 = np.vstack([a, [[2.0, 0.0]] * 20, b, [[2.5, 0.0]]])
    labels2 = np.r_[np.zeros(len(a) + 20, int), np.ones(len(b), int), -1]
    assert cluster._attach_local(X2, labels2, 1.0, HYBRID_CORE_SIZE)[-1] == cluster._attach_noise(X2, labels2, 1.0)[-1]


def test_local_rule_only_adds_to_what_the_average_attaches(rng):
    """Every face the average rule attaches goes to the same core under the local rule."""
    person = rng.integers(0, 6, 300)  # six wide blobs, some faces far out
    X = rng.normal(scale=3, size=(6, 8))[person] + rng.normal(size=(300, 8)) * rng.uniform(0.5, 2, (300, 1))
    labels = np.where(rng.random(300) < 0.3, -1, person)
    more = 0
    for t in (4.0, 5.0, 6.0):
        old = cluster._attach_noise(X, labels, t)
        new = cluster._attach_local(X, labels, t, HYBRID_CORE_SIZE)
        attached = (labels < 0) & (old >= 0)
        assert attached.any() and (new[attached] == old[attached]).all()
        more += (new >= 0).sum() - (old >= 0).sum()
    assert more > 0


def test_a_piece_rejoins_its_only_near_piece_not_a_crowd():
    """Pieces of one core: a pose piece near only its person's piece rejoins it; a piece near two
    pieces (a crowd chained by density) stays apart; pieces of two cores never merge."""
    person, pose = _line(0.0, 2.0), _line(2.1, 2.5)
    other = _line(0.0, 1.0, y=5.0)
    X = np.vstack([person, pose, other])
    pieces = np.r_[np.zeros(len(person), int), np.ones(len(pose), int), np.full(len(other), 2)]
    out = cluster._rejoin_pieces(X, pieces, np.array([0, 0, 1]), T, HYBRID_CORE_SIZE)
    assert out.tolist() == np.r_[np.zeros(len(person) + len(pose), int), np.full(len(other), 2)].tolist()
    # the same pose piece now also lies near a piece of another core: no clear nearest, it stays
    near = _line(2.1, 2.5, y=0.4)
    X3 = np.vstack([person, pose, near])
    pieces3 = np.r_[np.zeros(len(person), int), np.ones(len(pose), int), np.full(len(near), 2)]
    assert cluster._rejoin_pieces(X3, pieces3, np.array([0, 0, 1]), T, HYBRID_CORE_SIZE).tolist() == pieces3.tolist()


def _posed_people(rng, n_people=4, per=120, dim=128, length=0.9, spread=0.25):
    """Descriptor-like people whose faces spread along a pose direction (frontal faces common,
    profiles rare): the profiles are farther than the threshold from the frontal faces."""
    centres = rng.normal(size=(n_people, dim))
    centres *= 0.75 / np.linalg.norm(centres, axis=1, keepdims=True)
    X, y, ends = [], [], []
    for i, c in enumerate(centres):
        u = rng.normal(size=dim)
        u -= u @ c / (c @ c) * c
        u /= np.linalg.norm(u)
        yaw = np.clip(np.abs(rng.normal(scale=0.4, size=per)), 0, 1.2)
        X.append(c + np.outer(yaw * length, u) + rng.normal(scale=spread / np.sqrt(dim), size=(per, dim)))
        y += [i] * per
        ends.append(c + 1.2 * length * u)
    return np.vstack(X), np.array(y), centres, np.array(ends)


def test_hybrid_joins_a_pose_subcluster_to_its_person_and_refuses_a_look_alike():
    """End to end: with the old average rule each person's profile faces are a group of their own;
    the local rule joins them to their person. A look-alike placed beside that person's profiles,
    each of its faces within the threshold of one of the person's faces but beyond it from its 5
    nearest on average, is chained into the person's density core (HDBSCAN) and stays a piece of
    its own after the split."""
    rng = np.random.default_rng(3)
    X, y, centres, ends = _posed_people(rng)
    dim = X.shape[1]
    away = rng.normal(size=dim)
    away -= away @ ends[0] / (ends[0] @ ends[0]) * ends[0]
    # fewer faces than a core: the attach rules, not density, decide where they go
    look = ends[0] + 0.45 * away / np.linalg.norm(away) + rng.normal(scale=0.25 / np.sqrt(dim), size=(3, dim))
    X, y = np.vstack([X, look]), np.r_[y, np.full(3, 9)]
    from sklearn.metrics import pairwise_distances

    nearest = np.sort(pairwise_distances(look, X[y == 0]), axis=1)
    # each look-alike face has one of the person's faces within the threshold (so the outlier rule
    # would keep it), but its 5 nearest are on average beyond it
    assert (nearest[:, 0] < T).all() and (nearest[:, :HYBRID_CORE_SIZE].mean(axis=1) > T).all()
    old = IdentityClustering(descriptor="dlib", attach="mean").fit_predict(X)
    assert external_metrics(y[y < 4], old[y < 4])["bcubed_recall"] < 0.99, "the old rule splits the poses"
    new = IdentityClustering(descriptor="dlib").fit_predict(X)
    assert external_metrics(y, new)["bcubed_f"] == pytest.approx(1.0)
    assert len(set(new[y == 0])) == 1 and not set(new[y == 9]) & set(new[y == 0])


def test_attach_rule_is_a_parameter_and_checked():
    assert IdentityClustering().get_params()["attach"] == "local"
    with pytest.raises(ValueError, match="unknown attach"):
        IdentityClustering(attach="nearest").fit(np.zeros((6, 3)))
    assert "hybrid, attach by mean (before 2026-12-02)" in cluster.METHOD_PRESETS


# --------------------------------------------------------------------------- confident cores (core_mask)
def _valley_crowd(seed: int, gap: float = 0.5, per: int = 20, crowd: int = 300):
    """Two look-alikes (confident faces, 0.5 apart: closer than the threshold, a density valley
    between them) and a dense crowd of unsure faces filling that valley."""
    rng = np.random.default_rng(seed)
    a = rng.normal(scale=0.06, size=(per, 2))
    b = rng.normal(scale=0.06, size=(per, 2)) + [gap, 0.0]
    c = np.c_[rng.uniform(0, gap, crowd), rng.normal(scale=0.02, size=crowd)]
    return np.vstack([a, b, c]), np.r_[np.ones(2 * per, bool), np.zeros(crowd, bool)], per


def _whole(labels: np.ndarray, per: int) -> bool:
    """Each person's confident faces all in one group of their own."""
    a, b = set(labels[:per].tolist()), set(labels[per:2 * per].tolist())
    return len(a) == 1 and len(b) == 1 and a != b and min(a | b) >= 0


@pytest.mark.parametrize("seed", range(5))
def test_a_crowd_of_unsure_faces_builds_no_core_with_the_mask(seed):
    """Without the mask the crowd fills the valley: HDBSCAN chains the look-alikes and the crowd
    into cores whose split cuts a person's confident faces over several crowd groups; with only
    confident faces building cores, each person is one group and the crowd joins by the attach rule."""
    X, mask, per = _valley_crowd(seed)
    for algorithm in ("exact", "graph"):
        model = IdentityClustering(descriptor="dlib", algorithm=algorithm)
        assert not _whole(model.fit(X).labels_, per)
        labels = model.fit(X, core_mask=mask).labels_
        assert _whole(labels, per)
        assert (labels[~mask] >= 0).mean() > 0.9, "the crowd joins the cores by the attach rule"


def test_core_mask_of_every_face_changes_nothing_and_is_checked(rng):
    person = rng.integers(0, 5, 150)
    X = rng.normal(scale=3, size=(5, 8))[person] + rng.normal(size=(150, 8))
    model = IdentityClustering(threshold=4.0)
    assert (model.fit(X, core_mask=np.ones(150, bool)).labels_ == model.fit(X).labels_).all()
    # fewer confident faces than one core: no cores, every face grouped by average linkage
    few = np.zeros(150, bool)
    few[:HYBRID_CORE_SIZE - 1] = True
    assert (model.fit(X, core_mask=few).labels_ == IdentityClustering("agglomerative", threshold=4.0).fit(X).labels_).all()
    with pytest.raises(ValueError, match="core_mask"):
        model.fit(X, core_mask=np.ones(10, bool))
    # other methods ignore it
    agg = IdentityClustering("agglomerative", threshold=4.0)
    assert (agg.fit(X, core_mask=few).labels_ == agg.fit(X).labels_).all()


def test_core_faces_of_a_table_use_the_detector_score_and_the_curation_size():
    from vision_lib.faces.rating import MIN_SIZE
    from vision_lib.models import get_detector
    from vision_lib.tables import FaceTable

    floor = get_detector("yunet").confident_score
    boxes = [(0, 0, 80, 80), (0, 0, 80, 80), (0, 0, MIN_SIZE - 1, 80), (0, 0, 80, 80)]
    scores = [floor, floor - 0.01, 0.99, np.nan]
    table = FaceTable("descriptor", np.zeros((4, 3)), ["a/1.jpg"] * 4, ["a"] * 4, range(4), boxes, [],
                      {"detector": "yunet"}, scores=scores)
    assert cluster.core_faces(table).tolist() == [True, False, False, True]
    table.settings = {}  # detector unknown: only the size counts
    assert cluster.core_faces(table).tolist() == [True, True, False, True]
    assert "hybrid, cores from every face (before 2026-12-02)" in cluster.METHOD_PRESETS
