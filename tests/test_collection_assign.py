"""The collection's assignment rule (vision_lib.collection.assign) on small generated descriptors: a
group of new faces joins an existing person only by the rule a single face must pass, the open-set
rule included; and the benchmark's simulated user (comparisons.name_by_majority)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vision_lib import Collection
from vision_lib.collection.assign import group_new
from vision_lib.collection.neighbours import ArrayGallery
from vision_lib.models import get_descriptor
from vision_lib.tables import FaceTable

DESC = get_descriptor("facenet")
T = DESC.threshold  # the same-person distance (1.1)


def _axes(n: int) -> np.ndarray:
    """``n`` orthonormal directions of the descriptor space (fixed)."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(DESC.dim, n)))
    return q.T


def _faces(centre: np.ndarray, n: int, seed: int, spread: float = 0.03) -> np.ndarray:
    """``n`` faces within about ``spread`` of ``centre``."""
    rng = np.random.default_rng(seed)
    return (centre + rng.normal(scale=spread / np.sqrt(DESC.dim), size=(n, DESC.dim))).astype(np.float32)


def _table(path: Path, groups: dict[str, np.ndarray], unsure: tuple[str, ...] = ()) -> Path:
    """A descriptor table with one folder of photos per group (one face per photo); the faces of the
    ``unsure`` groups have a detector score under YuNet's confident 0.9 (crowd, hands, blur)."""
    X = np.concatenate(list(groups.values()))
    src = [f"{name}/img{j:03d}.jpg" for name, rows in groups.items() for j in range(len(rows))]
    n = len(src)
    scores = np.array([0.7 if s.split("/")[0] in unsure else 0.99 for s in src])
    FaceTable("descriptor", X, src, [s.split("/")[0] for s in src], np.zeros(n, int), np.tile([10, 10, 80, 80], (n, 1)),
              [], {"descriptor": DESC.id, "detector": "yunet", "root": str(path.parent / "photos")},
              scores=scores).save(path, overwrite=True)
    return path


def _built(tmp_path: Path, groups: dict[str, np.ndarray], unsure: tuple[str, ...] = ()) -> tuple[Collection, dict[str, int]]:
    """A collection built from one folder per group (:func:`_table`), each folder its own person;
    with the person of each folder."""
    people = Collection(tmp_path / "people.db")
    people.add(_table(tmp_path / "first.npz", groups, unsure=unsure), progress=False)
    df = people.dataframe()
    who = {s.split("/")[0]: int(p) for s, p in zip(df["source"], df["person"])}
    assert len(set(who.values())) == len(groups)  # one person per folder
    return people, who


def test_a_group_joins_a_person_only_under_the_open_set_limit_too():
    e = _axes(3)
    gallery = ArrayGallery(_faces(e[0], 8, 1), np.zeros(8, int))
    group = _faces(e[0] + 0.9 * e[1], 6, 2)  # one person, about 0.9 from person 0's faces: under 1.1
    labels, joins = group_new(group, gallery, T, 5, descriptor="facenet")
    assert (labels == 0).all() and joins.tolist() == [0]  # the same-person distance alone lets it join
    labels, joins = group_new(group, gallery, T, 5, descriptor="facenet", limit=0.8)
    assert (labels == 0).all() and joins.tolist() == [-1]  # a stranger by the open-set rule: a new person
    labels, joins = group_new(group, gallery, T, 5, descriptor="facenet", limit=1.0)
    assert joins.tolist() == [0]  # the limit only refuses what lies beyond it


def test_a_look_alike_group_forms_a_new_person_instead_of_joining_a_named_one(tmp_path):
    # A and B: two people 0.95 apart (strangers that close calibrate the open-set rule under 1.1),
    # C far from both; then six photos of L, a look-alike of A: 1.0 from A's faces, far from B's.
    e = _axes(4)
    A, B, C = e[0], e[0] + 0.95 * e[1], e[0] + 2.0 * e[2]
    people, who = _built(tmp_path, {"A": _faces(A, 8, 1), "B": _faces(B, 8, 2), "C": _faces(C, 8, 3)})
    for name, person in who.items():
        people.name(person, name)
    report = people.add(_table(tmp_path / "later.npz", {"L": _faces(A + 1.0 * e[3], 6, 4), "A": _faces(A, 3, 5)}),
                        progress=False)
    df = people.dataframe().set_index("source")
    assert (df.loc[[f"A/img{j:03d}.jpg" for j in range(3)], "name"] == "A").all()  # A's new photos found A
    later = df.loc[[f"L/img{j:03d}.jpg" for j in range(6)]]
    assert later["name"].isna().all()  # not with A (nor anyone named)
    assert later["person"].nunique() == 1 and report.new_people == 1  # one new person


def _a_holding_unsure_detections(tmp_path: Path) -> tuple[Collection, np.ndarray, np.ndarray]:
    """A collection where the user merged J, unsure detections (not faces: crowd, a hand), into A
    (as the benchmark's user merges a cluster whose photos are mostly A's), and named A and B;
    with the centres of A and J."""
    e = _axes(3)
    A, B, J = e[0], e[0] + 2.0 * e[1], e[0] + 1.3 * e[2]
    people, who = _built(tmp_path, {"A": _faces(A, 8, 1), "B": _faces(B, 8, 2), "J": _faces(J, 6, 3)}, unsure=("J",))
    people.merge(who["A"], who["J"])
    people.name(who["A"], "A")
    people.name(who["B"], "B")
    return people, A, J


def test_unsure_detections_a_user_put_with_a_person_do_not_pull_in_new_ones(tmp_path):
    # new ones like J must not join A through them: a person is known by their clear faces. A's new
    # clear photos still find A.
    people, A, J = _a_holding_unsure_detections(tmp_path)
    people.add(_table(tmp_path / "later.npz", {"Jn": _faces(J, 4, 4), "An": _faces(A, 3, 5)}, unsure=("Jn",)),
               progress=False)
    df = people.dataframe().set_index("source")
    assert (df.loc[[f"An/img{j:03d}.jpg" for j in range(3)], "name"] == "A").all()
    assert df.loc[[f"Jn/img{j:03d}.jpg" for j in range(4)], "name"].isna().all()


def test_search_knows_a_person_by_their_clear_faces_as_an_add_does(tmp_path):
    # a photo like J's detections is not A's to a search either (it was, through them, when search
    # compared with all of A's faces); a photo of A still is, and J's faces are still among the matches
    people, A, J = _a_holding_unsure_detections(tmp_path)
    Q = np.concatenate([_faces(J, 1, 6), _faces(A, 1, 7)])
    people._describe = lambda image: ([(10, 10, 80, 80)] * 2, Q, np.full(2, 0.95))
    like_j, like_a = people.search(None, top=3)
    assert like_j["person"] is None and like_j["name"] is None
    assert {m["name"] for m in like_j["matches"]} == {"A"}  # its nearest faces: J's, merged into A
    assert like_a["name"] == "A" and like_a["distance"] < T


def test_name_by_majority_names_merges_and_a_reviewing_user_splits_out_known_people(tmp_path):
    from vision_lib.comparisons import name_by_majority

    # folder A's 8 photos and folder B's first 2 photos show one face each near A (a first build
    # puts them in one person); B's other 6 photos form a person of their own.
    e = _axes(3)
    groups = {"A": _faces(e[0], 8, 1), "B": np.concatenate([_faces(e[0], 2, 2), _faces(e[0] + 2.0 * e[1], 6, 3)])}
    path = _table(tmp_path / "faces.npz", groups)
    faces = FaceTable.load(path)
    faces.photos, faces.photo_labels = list(faces.sources), [s.split("/")[0] for s in faces.sources]
    for review, split, merged in ((False, 0, 0), (True, 2, 1)):  # B's split-out faces, then B's own person merged in
        people = Collection(tmp_path / f"people_{review}.db")
        people.add(path, progress=False)
        assert name_by_majority(people, faces, review=review) == {"named": 2, "merged": merged, "split_out": split}
        df = people.dataframe().set_index("source")
        assert (df.loc[[f"A/img{j:03d}.jpg" for j in range(8)], "name"] == "A").all()
        assert (df.loc[["B/img000.jpg", "B/img001.jpg"], "name"] == ("B" if review else "A")).all()
        assert (df.loc[[f"B/img{j:03d}.jpg" for j in range(2, 8)], "name"] == "B").all()


def test_group_thresholds_are_the_stranger_rate_of_tight_groups_counted_directly():
    # 4 people of 6 faces in 8 dimensions, spread wide enough that strangers overlap
    from vision_lib.collection.assign import group_thresholds
    from vision_lib.openset import OpenSetRule, threshold_at

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 8))
    X = np.repeat(centres, 6, axis=0) + rng.normal(scale=0.8, size=(24, 8))
    person = np.repeat([7, 3, 9, 1], 6)  # ids neither sorted nor from 0
    k, far = 3, 0.2
    got = group_thresholds(X, person, k, far, floor=0.0)
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    for m in range(2, k + 1):
        scores = []
        for a in np.unique(person):
            mine = np.flatnonzero(person == a)
            for i in mine:
                group = mine[np.argsort(D[i, mine], kind="stable")[:m]]
                scores.append(min(np.mean([np.sort(D[g, person == b])[:k].mean() for g in group])
                                  for b in np.unique(person) if b != a))
        assert np.isclose(got[m - 1], threshold_at(np.sort(scores), far)[0])
    # without a floor, a single face's limit is the knn rule's own, its strangers the other people
    alone = OpenSetRule(far=far, score="knn", k=k, population="training").fit(X, person.astype(str))
    assert got[0] == 0.0 and np.isclose(group_thresholds(X, person, k, far)[0], alone.threshold_)
    assert got[0] == 0.0 and len(got) == k
    assert group_thresholds(X, person, k, far, floor=50.0) == [50.0] * k  # never under a single face's limit


def test_a_group_is_held_to_the_open_set_limit_of_its_size():
    from vision_lib.collection.assign import group_limit

    e = _axes(3)
    gallery = ArrayGallery(_faces(e[0], 8, 1), np.zeros(8, int))
    group = _faces(e[0] + 0.9 * e[1], 6, 2)  # six faces of one person, about 0.9 from person 0's faces
    _, joins = group_new(group, gallery, T, 5, descriptor="facenet", limit=0.8, group_limits=[0.8, 0.85, 0.9, 0.95, 0.95])
    assert joins.tolist() == [0]  # six faces: the limit of five (0.95)
    _, joins = group_new(group, gallery, T, 5, descriptor="facenet", limit=0.8, group_limits=[0.8, 0.85, 0.88, 0.89, 0.89])
    assert joins.tolist() == [-1]
    assert group_limit([0.8, 0.85, 0.9], 1) == 0.8 and group_limit([0.8, 0.85, 0.9], 2) == 0.85
    assert group_limit([0.8, 0.85, 0.9], 40) == 0.9


def test_an_unsure_detection_joins_a_person_only_if_near_the_person_as_a_whole(tmp_path):
    # A's clear faces: 12 photos, and 5 more of another look (U, 2.0 from the others) that the user
    # merged into A. A new unsure detection (a crowd, a blur) like U's five passes the local test
    # (A's 5 nearest faces) but is about 1.4 from A's faces on average: it joins no one; a clear
    # face just as near U's five still joins A (the local test is what a clear face is judged by).
    e = _axes(3)
    A, U, B = e[0], e[0] + 2.0 * e[1], e[0] + 2.0 * e[2]
    people, who = _built(tmp_path, {"A": _faces(A, 12, 1), "U": _faces(U, 5, 2), "B": _faces(B, 8, 3)})
    people.merge(who["A"], who["U"])
    people.name(who["A"], "A")
    people.name(who["B"], "B")
    people.add(_table(tmp_path / "later.npz", {"Un": _faces(U, 1, 4), "Uc": _faces(U, 1, 5)}, unsure=("Un",)),
               progress=False)
    df = people.dataframe().set_index("source")
    assert df.loc["Uc/img000.jpg", "name"] == "A"
    assert not isinstance(df.loc["Un/img000.jpg", "name"], str)  # with no one named (no one at all: alone)
    # search states what an add decides: the same face is A's as a clear detection, no one's as an unsure one
    q = _faces(U, 1, 6)
    for score, name in ((0.99, "A"), (0.7, None)):
        people._describe = lambda image, score=score: ([(10, 10, 80, 80)], q, np.full(1, score))
        assert people.search(None, top=3)[0]["name"] == name


def test_the_exact_scores_by_person_are_the_distances_one_pair_at_a_time():
    """assign._by_person (one float64 matrix product per person: |q|^2 + |x|^2 - 2 q.x) against
    distances_to (the differences, one pair at a time) on random shapes, with ties: faces copied
    within a person and queries that are faces of the gallery (distance 0)."""
    from vision_lib.collection.assign import _by_person, _mean, distances_to

    rng = np.random.default_rng(3)
    sizes = [1, 2, 5, 9, 40, 3]
    X = rng.normal(size=(sum(sizes), DESC.dim))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    person = np.repeat(np.arange(len(sizes)), sizes)
    X[person == 4] = np.repeat(X[person == 4][:8], 5, axis=0)  # every face of person 4 five times
    Q = np.concatenate([rng.normal(size=(30, DESC.dim)) / np.sqrt(DESC.dim), X[[0, 1, 10, 20, 57]]]).astype(np.float32)
    rows = rng.integers(0, len(Q), 400)
    rows[:len(Q)] = np.arange(len(Q))
    people = rng.integers(0, len(sizes), 400)
    gallery = ArrayGallery(X, person)
    want = [distances_to(Q[r], X[person == p]) for r, p in zip(rows, people)]
    for reduce, ref in ((lambda D, p: (D ** 2).max(axis=1), lambda d: (d ** 2).max()),
                        (lambda D, p: (D ** 2).min(axis=1), lambda d: (d ** 2).min())):
        got = _by_person(Q, rows, people, gallery, reduce)  # the squares: within 1e-12 wherever they lie
        np.testing.assert_allclose(got, [ref(d) for d in want], rtol=0, atol=1e-12)
    for reduce, ref in ((lambda D, p: _mean(D), np.mean), (lambda D, p: _mean(np.sort(D, axis=1)[:, :5]), lambda d: np.sort(d)[:5].mean())):
        got = _by_person(Q, rows, people, gallery, reduce)
        at_zero = np.array([d.min() < 1e-6 for d in want])  # a face and its copy: the root of a 1e-16 error
        assert at_zero.sum() >= 5
        np.testing.assert_allclose(got[~at_zero], np.array([ref(d) for d in want])[~at_zero], rtol=0, atol=1e-9)
        np.testing.assert_allclose(got[at_zero], np.array([ref(d) for d in want])[at_zero], rtol=0, atol=1e-7)


def test_the_open_set_rule_calibrates_on_every_person_of_a_collection_of_a_few_dozen():
    # a stranger's nearest person is nearer the more people there are: a rule calibrated on 50 of
    # 60 people states a rate the collection's strangers exceed; 60 people all calibrate
    from vision_lib.collection.assign import CALIBRATION_PEOPLE, calibrate

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 16))
    X = np.repeat(centres, 3, axis=0) + rng.normal(scale=0.1, size=(180, 16))
    person = np.repeat(np.arange(60), 3)
    rule = calibrate(X, person, 5)
    assert CALIBRATION_PEOPLE >= 60
    assert len(rule.classes_) == 60 and rule.n_strangers_["other_people"] == 180
