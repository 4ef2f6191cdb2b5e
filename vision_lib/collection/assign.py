"""Who a face is, in a collection that already has people: the two phases of an add.

1. :func:`attach`: a face joins an existing person when that person's ``k`` nearest faces are on
   average nearer than the descriptor's same-person distance (the local test
   :class:`~vision_lib.cluster.IdentityClustering` attaches faces to its cores with,
   ``_attach_local``: not the single nearest face, which a look-alike's one photo can win) and than
   the limit of the open-set rule calibrated on the collection's own people (:func:`calibrate`),
   and no other person is that near: a person counts as near only under both. A face near several
   people goes to the one whose faces are on average nearest, if that is nearer than the
   same-person distance. An unsure detection (not a clear face, below) must pass that overall test
   too, whoever it is near: a blurred crowd or a hand can be as near a few of a person's photos as
   that person's own faces are (on the raw footballer photos, a crowd at 0.77 from a player's five
   nearest clear faces, 1.38 from all of them) without looking like the person.
2. :func:`group_new`: the faces still in no person are clustered with ``IdentityClustering`` (its
   graph path at scale) into new people; a new group whose faces pass the local test on average for
   exactly one existing person (``_merge_local``'s rule) *and* under the open-set rule's limit for a
   group of its size joins that person instead. That limit is the single face's rule asked of the
   group's evidence: the same false-accept rate, on strangers' *groups* (:func:`group_thresholds`:
   each calibration face with its nearest faces of the same person, as the clustering would group
   them, scored against the other people), never under a single face's limit. Averaging a group
   is not let in on a rate a single face was calibrated for: on the raw footballer photos that is
   how a team-mate, a coach or a look-alike (six groups, seven photos) joined a named player.

A collection gives both phases a gallery of its people's *clear* faces only (those
:func:`vision_lib.cluster.core_faces` lets build the clustering's cores; :func:`calibrate` likewise):
an unsure detection (crowd, a hand, blur) is no one's face, and a person holding some would take in
every new one like them.

Candidates come from each face's :data:`CANDIDATES` nearest assigned faces: in memory (exact, a
matrix product in blocks) or through the collection's FAISS index
(:mod:`vision_lib.collection.neighbours`); the local test's distances are exact either way.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..openset import group_thresholds

__all__ = ["CANDIDATES", "CALIBRATION_PEOPLE", "CALIBRATION_FACES", "nearest", "distances_to", "person_distances", "attach",
           "group_new", "group_thresholds", "group_limit", "calibrate",
           "rule_state", "rule_from_state"]

#: Nearest assigned faces looked at per face to find the people it may be.
CANDIDATES = 64
#: At most this many people (with two faces or more, chosen at random, seeded) calibrate the open-set
#: rule; a collection of fewer calibrates on all of them. A stranger's nearest person is nearer the
#: more people there are to be near, and a few look-alike pairs hold the nearest stranger scores: 50
#: people sampled of LFW's 96 gave limits of 0.81 to 1.00 from one draw to the next, letting in 0.4 %
#: to 14.5 % of the collection's strangers at a stated 1 % (docs/collection.md, "How robust").
CALIBRATION_PEOPLE = 200
#: Faces the calibration samples in all (at least 20 a person): with few people, more faces of each,
#: so that a 1 % rate still rests on about ten stranger scores (six people of 20 faces gave 120: the
#: threshold was then the single nearest stranger, 0.79 to 0.95 from one seed to the next on the
#: footballer photos).
CALIBRATION_FACES = 1000


def nearest(Q: np.ndarray, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest rows of ``X`` for each row of ``Q``: ``(distances, indices)``, ascending."""
    Q, X = np.asarray(Q, np.float32), np.asarray(X, np.float32)
    k = min(int(k), len(X))
    block = max(1, min(256, (1 << 25) // max(len(X), 1)))  # at most 128 MB of distances at a time
    dist = np.full((len(Q), k), np.inf, np.float32)
    idx = np.zeros((len(Q), k), np.int64)
    if k == 0:
        return dist, idx
    xx = np.einsum("ij,ij->i", X, X)
    for s in range(0, len(Q), block):
        q = Q[s:s + block]
        d2 = xx[None, :] - 2 * q @ X.T + np.einsum("ij,ij->i", q, q)[:, None]
        part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < len(X) else np.tile(np.arange(len(X)), (len(q), 1))
        dd = np.take_along_axis(d2, part, axis=1)
        order = np.argsort(dd, axis=1, kind="stable")
        idx[s:s + len(q)] = np.take_along_axis(part, order, axis=1)
        dist[s:s + len(q)] = np.sqrt(np.maximum(np.take_along_axis(dd, order, axis=1), 0))
    return dist, idx


def distances_to(q: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Exact Euclidean distances (float64) of one face ``q`` to the rows of ``X``: the values of
    ``openset.pairwise`` without its per-call checks (an add asks this thousands of times)."""
    diff = np.asarray(X, np.float64) - np.asarray(q, np.float64)
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def _by_person(Q: np.ndarray, rows: np.ndarray, people: np.ndarray, gallery, reduce) -> np.ndarray:
    """``reduce(D, p)`` for each pair (row ``rows[j]`` of ``Q``, person ``people[j]``): ``D`` the
    distances of the rows to every face of ``p`` (one row each), one matrix product per person
    rather than one call per pair (an add at 1M faces made 300,000). In float64 as
    ``|q|^2 + |x|^2 - 2 q.x`` (no rows x faces x d tensor: a third of the time at 1M); the
    descriptors are float32, so the products are exact and the squares within about 1e-15 of
    :func:`distances_to`'s (tested; the distances too, but where the square is about 0, as for a
    face and its own copy: there the root of a 1e-16 error is 1e-8)."""
    out = np.empty(len(rows), np.float64)
    if not len(rows):
        return out
    order = np.argsort(people, kind="stable")
    Qs = np.asarray(Q, np.float64)[rows[order]]  # the pairs' rows, grouped by person
    qq = np.einsum("ij,ij->i", Qs, Qs)[:, None]
    cut = np.flatnonzero(np.r_[True, people[order][1:] != people[order][:-1], True])
    done = np.empty(len(rows), np.float64)
    for p, a, b in zip(people[order][cut[:-1]].tolist(), cut[:-1].tolist(), cut[1:].tolist()):
        V = np.asarray(gallery.vectors_of(p), np.float64)
        vv = np.einsum("ij,ij->i", V, V)
        step = max(1, (1 << 22) // max(len(V), 1))  # rows x faces doubles: 32 MB at most
        for s in range(a, b, step):
            e = min(b, s + step)
            done[s:e] = reduce(np.sqrt(np.maximum((qq[s:e] + vv) - 2 * (Qs[s:e] @ V.T), 0)), p)
    out[order] = done
    return out


def _mean(D: np.ndarray) -> np.ndarray:
    """``D.mean(axis=1)`` bit for bit (the same sum, divided by the count) without its per-call
    checks: an add at 1M faces asks it 45,000 times."""
    return D.sum(axis=1) / D.shape[1]


def person_distances(Q: np.ndarray, gallery, k: int, candidates: int = CANDIDATES,
                     cutoff: float = np.inf, groups: np.ndarray | None = None) -> list[dict[int, float]]:
    """For each row of ``Q``: ``{person: mean distance to that person's k nearest faces}`` for the
    people among its ``candidates`` nearest faces of ``gallery`` (an
    :class:`~vision_lib.collection.neighbours.ArrayGallery` or ``IndexGallery``), in the order they
    first appear among them. A person with faces beyond the candidates is scored exactly on all of
    its faces, unless even the nearest possible (the missing faces at the farthest distance looked
    at) is not under ``cutoff``: then that bound is its score. ``groups`` (a group per row, >= 0):
    only the people among the candidates of every row of a group are scored exactly for its rows
    (:func:`group_new` averages a group's scores, a face without the person counting as far: the
    others' average is infinite whatever their scores); the others keep their bound."""
    dist, owner, far = gallery.nearest(Q, candidates)
    sizes = gallery.sizes()
    row, col = np.nonzero((owner >= 0) & (dist < np.inf))
    if not len(row):
        return [{} for _ in range(len(Q))]
    order = np.lexsort((col, owner[row, col], row))  # (row, person) groups, candidate order within
    row, col = row[order], col[order]
    who, d = owner[row, col], dist[row, col].astype(np.float64)
    first = np.flatnonzero(np.r_[True, (row[1:] != row[:-1]) | (who[1:] != who[:-1])])
    group = np.cumsum(np.r_[True, (row[1:] != row[:-1]) | (who[1:] != who[:-1])]) - 1
    rank = np.arange(len(row)) - first[group]
    g_row, g_who = row[first], who[first]
    m = np.minimum(k, np.array([sizes[p] for p in g_who.tolist()], np.int64))
    used = np.minimum(np.bincount(group), m)  # the person's faces among the candidates, up to m
    total = np.zeros(len(first))
    for j in range(int(m.max())):  # summed in candidate order, as Python's sum of the first m
        at = rank == j
        at[at] = j < m[group[at]]
        total[group[at]] += d[at]
    score = (total + (m - used) * far.astype(np.float64)[g_row]) / m
    exact = (used < m) & ~(score >= cutoff)
    if groups is not None:  # (group, person): as many rows with the person as the group has rows
        key = groups[g_row].astype(np.int64) * (int(g_who.max()) + 1) + g_who
        _, at, count = np.unique(key, return_inverse=True, return_counts=True)
        exact &= count[at] == np.bincount(groups)[groups[g_row]]
    exact = np.flatnonzero(exact)
    if len(exact):  # the person's other faces lie beyond the candidates: score it on all of them
        score[exact] = _by_person(Q, g_row[exact], g_who[exact], gallery,
                                  lambda D, p: _mean(np.sort(D, axis=1)[:, :min(k, int(sizes[p]))]))
    shown = np.lexsort((col[first], g_row))  # each row's people in the order they first appear
    bounds = np.searchsorted(g_row[shown], np.arange(len(Q) + 1))
    people, values = g_who[shown].tolist(), score[shown].tolist()
    return [dict(zip(people[a:b], values[a:b])) for a, b in zip(bounds[:-1], bounds[1:])]


def _choose(scores: dict[int, float], mean_of, distance: float, limit: float | None) -> int:
    """The local test's verdict for one face: a person id, or -1."""
    near = [p for p, d in scores.items() if d < distance and (limit is None or d < limit)]
    if len(near) == 1:
        return near[0]
    if len(near) > 1:  # near two people's faces: only a clear overall preference decides
        means = {p: mean_of(p) for p in near}
        best = min(means, key=means.get)
        return best if means[best] < distance else -1
    return -1


def attach(Q: np.ndarray, gallery, distance: float, k: int, *,
           forbidden: Sequence[set[int] | None] | None = None, limit: float | None = None,
           scores: list[dict[int, float]] | None = None, unsure: np.ndarray | None = None) -> np.ndarray:
    """Phase 1: the person of ``gallery`` each row of ``Q`` is (``-1``: none) by the local test at
    ``distance`` (and under the open-set rule's ``limit`` when given); ``forbidden[i]``: the people
    row ``i`` must not join (the user said "not this person"); ``scores``: :func:`person_distances`
    when the caller has them; ``unsure``: the rows that are unsure detections (not clear faces),
    which join a person only if also within ``distance`` of all of that person's faces on average."""
    out = np.full(len(Q), -1, np.int64)
    if not len(Q) or not len(gallery):
        return out
    scores = person_distances(Q, gallery, k, cutoff=distance) if scores is None else scores
    if forbidden is not None:
        scores = [{p: d for p, d in s.items() if p not in forbidden[i]} if forbidden[i] else s
                  for i, s in enumerate(scores)]
    # the mean distance to all of a person's faces, for the faces near several people (one pass)
    pairs = []
    for i, s in enumerate(scores):
        near = [p for p, d in s.items() if d < distance and (limit is None or d < limit)]
        if len(near) > 1:
            pairs += [(i, p) for p in near]
    ask = np.array(pairs, np.int64).reshape(-1, 2)
    means = dict(zip(pairs, _by_person(Q, ask[:, 0], ask[:, 1], gallery, lambda D, p: _mean(D)).tolist()))
    for i, s in enumerate(scores):
        out[i] = _choose(s, lambda p: means[i, p], distance, limit)
    if unsure is not None:  # the overall test for the unsure detections the local test let join
        ask = np.flatnonzero(np.asarray(unsure, bool) & (out >= 0))
        overall = _by_person(Q, ask, out[ask], gallery, lambda D, p: _mean(D))
        out[ask[~(overall < distance)]] = -1
    return out


def group_new(Q: np.ndarray, gallery, distance: float, k: int, *, descriptor: str | None,
              core_mask: np.ndarray | None = None, limit: float | None = None,
              group_limits: Sequence[float] | None = None,
              progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Phase 2: cluster the rows of ``Q`` (faces in no person) with
    :class:`~vision_lib.cluster.IdentityClustering`; returns ``(group per row (-1: none), existing
    person per group (-1: a new person))``: a group joins an existing person of ``gallery`` when
    its faces pass the local test, on average, for that person alone, and that average is under
    the open-set limit for its size: :func:`group_limit` of ``group_limits`` (the rule's
    :func:`group_thresholds`), else ``limit`` (a single face's threshold, as :func:`attach`; None:
    no such limit). A group's faces are one person: their distances to a stranger's faces rise and
    fall together, so a group earns only what strangers' groups are measured not to reach."""
    from sklearn import config_context
    from threadpoolctl import threadpool_limits

    from ..cluster import IdentityClustering

    if len(Q) < 2:
        return np.full(len(Q), -1, np.int64), np.zeros(0, np.int64)
    model = IdentityClustering(descriptor=descriptor, random_state=0, progress=progress)
    # the rows are the index's descriptors (finite) and the clustering sets every parameter it
    # passes: scikit-learn's checks of each of its thousand calls inside were an eighth of its time;
    # its matrix products are small (a piece against its component): a second BLAS thread waiting
    # for a busy core made them up to 3.5 times slower (100k faces' add, another job running)
    with config_context(assume_finite=True, skip_parameter_validation=True), threadpool_limits(1, user_api="blas"):
        labels = model.fit(Q, core_mask=core_mask).labels_
    joins = np.full(model.n_clusters_, -1, np.int64)
    if len(gallery) and model.n_clusters_:
        rows = np.flatnonzero(labels >= 0)
        scores = person_distances(Q[rows], gallery, k, cutoff=distance, groups=labels[rows])
        sizes = np.bincount(labels[rows], minlength=model.n_clusters_)
        members = np.split(np.argsort(labels[rows], kind="stable"), np.cumsum(sizes)[:-1])
        for g, faces in enumerate(members):
            mine = [scores[i] for i in faces.tolist()]
            # a face of the group that has the person in no candidate is far from it: the group's
            # average is infinite, so only the people every face has can be near
            people = list(set(mine[0]).intersection(*mine[1:])) if mine else []
            # one row per person, averaged along it: np.mean of each person's list, bit for bit
            table = np.array([[s[p] for s in mine] for p in people], np.float64).reshape(len(people), len(mine))
            mean = dict(zip(people, table.mean(axis=1).tolist()))
            near = [p for p, d in mean.items() if d < distance]
            most = group_limit(group_limits, len(mine)) if group_limits else limit
            if len(near) == 1 and (most is None or mean[near[0]] < most):
                joins[g] = near[0]
    return labels, joins


def group_limit(limits: Sequence[float], size: int) -> float:
    """The limit of :func:`group_thresholds` for a group of ``size`` faces."""
    return float(limits[min(max(size, 1), len(limits)) - 1])


def calibrate(X: np.ndarray, person: np.ndarray, k: int, seed: int = 0, confident=None):
    """The open-set rule (:class:`~vision_lib.openset.OpenSetRule`, ``score="knn"``) fitted on up to
    :data:`CALIBRATION_PEOPLE` of the collection's people with two faces or more (at most 20 faces
    each, or :data:`CALIBRATION_FACES` shared among fewer people), the others standing in for
    strangers; None with fewer than two such people.

    ``confident``: a function giving, for rows, whether each is a clear face
    (:func:`vision_lib.cluster.core_faces`: the faces the clustering builds its cores from); only
    those calibrate. Unsure detections (crowd, hands, blur) are no one's face: two of them in two
    people are a "stranger" pair as near as a person's own photos, and set the threshold (on the
    footballer photos 0.73 with them, 0.91 without: the same-person distance is 1.1)."""
    from ..openset import OpenSetRule

    ids, counts = np.unique(person[person >= 0], return_counts=True)
    ids = ids[counts >= 2]
    if len(ids) < 2:
        return None
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(ids, min(len(ids), CALIBRATION_PEOPLE), replace=False))
    each = max(20, -(-CALIBRATION_FACES // len(ids)))
    picks = [rng.permutation(np.flatnonzero(person == p)) for p in ids]
    if confident is not None:  # the clear faces among a few times the faces wanted (the rest never read)
        seen = [r[:4 * each] for r in picks]
        ok = np.asarray(confident(np.concatenate(seen)), bool)
        parts = np.split(ok, np.cumsum([len(r) for r in seen])[:-1])
        clear = [r[m] for r, m in zip(seen, parts)]
        if sum(len(r) >= 2 for r in clear) >= 2:  # else (no scores known, say) every face calibrates
            picks = [r for r in clear if len(r) >= 2]
    rows = np.concatenate([r[:each] for r in picks])
    # X: the descriptors, or a function giving those of rows (a collection reads only these)
    Xr = X(rows) if callable(X) else X[rows]
    rule = OpenSetRule(score="knn", k=k).fit(Xr, person[rows].astype(str))
    rule.group_thresholds_ = group_thresholds(Xr, person[rows], k, rule.far, rule.threshold_)
    return rule


def rule_state(rule) -> str:
    """What :func:`rule_from_state` needs of a calibrated rule, as JSON (kept in the store's ``meta``)."""
    import json

    return json.dumps({"far": rule.far, "k": rule.k, "impostor_scores": [round(float(v), 6) for v in rule.impostor_scores_],
                       "n_strangers": rule.n_strangers_, "people": getattr(rule, "people_", None),
                       "decided": getattr(rule, "decided_", None),
                       "group_thresholds": getattr(rule, "group_thresholds_", None)})


def rule_from_state(state: str | None):
    """The open-set rule saved by :func:`rule_state` (None: none saved), ready for ``accept``/``far_at``."""
    import json

    from ..openset import OpenSetRule

    if not state:
        return None
    data = json.loads(state)
    rule = OpenSetRule(far=data["far"], score="knn", k=data["k"])
    rule.impostor_scores_ = np.asarray(data["impostor_scores"], float)
    rule.n_strangers_ = data["n_strangers"]
    # what it was calibrated on (people of two faces, last user decision): None when not recorded
    rule.people_, rule.decided_ = data.get("people"), data.get("decided", -1)
    rule.group_thresholds_ = data.get("group_thresholds")  # None: saved before groups had their own limits
    rule.threshold_, rule.far_ = rule.threshold_for(rule.far)
    return rule
