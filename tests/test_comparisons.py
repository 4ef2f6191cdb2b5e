"""vision_lib.comparisons (the new models beside the classic recipe) and the figures that draw it."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vision_lib import comparisons, plotting  # noqa: E402


def test_pair_distances_split_same_and_different_labels():
    X = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    same, other = comparisons.pair_distances(X, ["a", "b", "a"])
    assert same.tolist() == [1.0]
    assert sorted(other.tolist()) == pytest.approx([np.hypot(3, 3), 5.0])
    with pytest.raises(ValueError, match="3 descriptors but 2 labels"):
        comparisons.pair_distances(X, ["a", "b"])


def test_true_accept_rate_at_a_false_accept_rate():
    other = np.arange(1, 101, dtype=float)  # 1..100: 1% of them at or under ~2
    same = np.array([0.5, 1.5, 2.5, 50.0])
    tar, threshold = comparisons.true_accept_rate(same, other, 0.01)
    assert threshold == pytest.approx(1.99)
    assert tar == 0.5
    assert np.isnan(comparisons.true_accept_rate(same, np.array([]), 0.01)[0])


def test_verification_separates_a_good_descriptor_from_noise_and_is_drawn():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 10)
    good = np.eye(6)[labels] * 3 + rng.normal(0, 0.1, (60, 6))  # people far apart, faces close
    noise = rng.normal(0, 1, (60, 6))
    result = comparisons.verification({"facenet": good, "random": noise}, labels, far=0.01)
    assert result["facenet"]["tar"] == 1.0 and result["random"]["tar"] < 0.2
    assert result["facenet"]["threshold"] == pytest.approx(1.1)  # the registered descriptor's own
    assert result["random"]["threshold"] is None
    assert len(result["facenet"]["same"]) == 6 * 45 and len(result["facenet"]["other"]) == 60 * 59 // 2 - 270
    fig, axes = plt.subplots(1, 2)
    plotting.distance_distributions(axes, result)
    assert axes[0].get_title().startswith("facenet: 100% of same-folder pairs accepted at 1% false accepts")
    assert len(axes[0].get_lines()) == 2 and len(axes[1].get_lines()) == 1  # no own threshold for noise
    plt.close(fig)


def test_model_bars_group_by_data_set_with_one_colour_per_model():
    per_set = {"LFW": [{"name": "yunet + facenet", "bcubed_f": 0.99}, {"name": "mtcnn + dlib", "bcubed_f": 0.95}],
               "footballers": [{"name": "yunet + facenet", "bcubed_f": 0.9}, {"name": "mtcnn + dlib", "bcubed_f": 0.8}]}
    fig, ax = plt.subplots()
    plotting.model_bars(ax, per_set)
    heights = [round(p.get_height(), 2) for p in ax.patches]
    assert heights == [0.99, 0.9, 0.95, 0.8]  # model by model, in data-set order
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["yunet + facenet", "mtcnn + dlib"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["LFW", "footballers"]
    plt.close(fig)


def test_detections_name_every_detector_even_without_a_face():
    from vision_lib.geometry import Face

    fig, ax = plt.subplots()
    image = np.zeros((50, 50, 3), np.uint8)
    one = [Face((5, 5, 20, 20), 0.9)]
    plotting.detections(ax, image, {"yunet": one, "mtcnn": one, "haar": []})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["yunet (1)", "mtcnn (1)", "haar (0)"]
    assert len(ax.patches) == 2 and len(ax.images) == 1
    above, below = ax.texts  # one label above the box, the other under it: never on top of each other
    assert above.get_position()[1] < 5 < 25 < below.get_position()[1]
    plt.close(fig)


def test_identity_models_score_both_model_pairs_on_the_same_photos(lfw_dir):
    from vision_lib.io import photo_set

    photos = photo_set(lfw_dir, labelled=True)
    people = photos.classes[:3]
    paths = [p for p, lab in zip(photos.paths, photos.labels) if lab in people][:18]
    rows = comparisons.identity_models(lfw_dir, paths)
    assert [r["name"] for r in rows] == ["yunet + facenet", "mtcnn + dlib"]
    for r in rows:
        assert r["n_true"] == len({p.parent.name for p in paths}) and 0.5 <= r["bcubed_f"] <= 1.0


def test_detector_comparison_draws_coverage_and_milliseconds():
    fig, axes = plt.subplots(1, 2)
    plotting.detector_comparison(axes, {"yunet": {"coverage": 0.99, "seconds_per_photo": 0.031},
                                        "mtcnn": {"coverage": 0.98, "seconds_per_photo": 0.25}})
    assert [round(p.get_height(), 3) for p in axes[0].patches] == [0.99, 0.98]
    assert [round(p.get_height(), 3) for p in axes[1].patches] == [31.0, 250.0]
    assert axes[1].get_ylabel().startswith("ms per photo")
    plt.close(fig)


def test_every_face_scores_count_bystanders_that_subject_scores_ignore():
    from vision_lib.cluster import external_metrics
    from vision_lib.tables import FaceTable

    # Two photos each of two people; each photo also has a bystander, all four bystanders lumped
    # into person a's cluster.
    sources = ["a/1", "a/1", "a/2", "a/2", "b/1", "b/1", "b/2", "b/2"]
    labels = [s.split("/")[0] for s in sources]
    subject = np.array([True, False] * 4)
    faces = FaceTable("descriptor", np.zeros((8, 4)), sources, labels, np.array([0, 1] * 4), np.zeros((8, 4)),
                      [], {}, subject=subject, photo_labels=["a", "a", "b", "b"])
    clusters = np.array([0, 0, 0, 0, 1, 0, 1, 0])
    assert external_metrics(faces.photo_labels, faces.photo_clusters(clusters))["bcubed_f"] == pytest.approx(1.0)
    every = comparisons.every_face_scores(faces, clusters)
    assert every["bcubed_f"] < 0.6
    clean = np.array([0, 2, 0, 3, 1, 4, 1, 5])  # bystanders each alone: every face right too
    assert comparisons.every_face_scores(faces, clean)["bcubed_f"] == pytest.approx(1.0)
