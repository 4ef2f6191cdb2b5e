"""The shared figure grid of vision_lib.plotting (the galleries and notebooks lay out on it)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vision_lib import plotting  # noqa: E402


@pytest.mark.parametrize("n, ncols, per_item, shape", [(5, 2, (1, 1), (3, 2)), (5, 2, (2, 1), (6, 2)),
                                                       (4, 4, (1, 2), (1, 8)), (0, 3, (1, 1), (1, 3))])
def test_grid_makes_room_for_every_item_with_blank_axes(n, ncols, per_item, shape):
    fig, axes = plotting.grid(n, ncols, cell=(1.0, 2.0), per_item=per_item)
    assert axes.shape == shape
    assert tuple(fig.get_size_inches()) == pytest.approx((shape[1] * 1.0, shape[0] * 2.0))
    assert not any(ax.axison for ax in axes.ravel())
    plt.close(fig)


def test_galleries_put_item_k_on_its_own_axes():
    images = [np.full((4, 4, 3), 40 * k, np.uint8) for k in range(5)]
    fig = plotting.gallery(images, [f"#{k}" for k in range(5)], ncols=2)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == [f"#{k}" for k in range(5)]
    assert sum(bool(ax.images) for ax in fig.axes) == 5
    plt.close(fig)
    fig = plotting.wavelet_pairs(images[:3], images[:3], ["a", "b", "c"], ncols=2)
    assert [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")] == ["a", "b", "c"]
    assert sum(bool(ax.images) for ax in fig.axes) == 6
    plt.close(fig)


def test_excluded_thumbnails_title_each_photo_with_folder_reason_and_look_alike(tmp_path):
    from PIL import Image

    from vision_lib.classify import Excluded

    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((40, 30, 3), 90, np.uint8)).save(tmp_path / name)
    items = [Excluded(str(tmp_path / "a.png"), "messi", "no face matches the folder's person (closest 0.70 > 0.60)",
                      None, (5, 5, 10, 10), 0.7, "salah"),
             Excluded(str(tmp_path / "b.png"), "messi", "no face found")]
    fig = plotting.excluded_thumbnails(items, title="left out")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["messi\nno face matches the\nfolder's person\n~ salah", "messi\nno face found"]
    assert len(fig.axes[0].patches) == 1 and not fig.axes[1].patches  # the box only where a face is meant
    assert fig._suptitle.get_text() == "left out"
    plt.close(fig)
    assert plotting.excluded_thumbnails([]) is None


def test_empty_or_wrong_inputs_get_clear_answers():
    import matplotlib.pyplot as plt

    from vision_lib import plotting

    with pytest.raises(ValueError, match="ncols must be at least 1"):
        plotting.grid(3, 0)
    with pytest.raises(ValueError, match="per_group must be at least 1"):
        plotting.cluster_galleries({"a": []}, per_group=0)
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="bins\\*\\*3 = 512"):
        plotting.colour_histogram_bars(ax, np.array([]), bins=8)
    plotting.model_comparison(ax, [])  # nothing to compare: an empty chart, not a numpy error
    plotting.average_grid({})
    plt.close("all")


def test_openset_curve_marks_the_default_and_unknown_faces_show_no_probability():
    curve = [{"threshold": t, "strangers_named_share": s, "known_accuracy_all": k, **({"default": True} if d else {})}
             for t, s, k, d in ((0.4, 0.001, 0.85, False), (0.47, 0.007, 0.90, True), (0.55, 0.09, 0.94, False))]
    fig, ax = plt.subplots()
    plotting.openset_curve(ax, curve)
    line, star = ax.get_lines()
    assert list(line.get_ydata()) == [0.85, 0.90, 0.94]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (0.007, 0.90)
    plt.close(fig)
    fig, ax = plt.subplots()
    result = {"label": "leo_messi", "faces": [
        {"box": [0, 0, 4, 4], "label": "leo_messi", "probability": 0.9, "verdict": "named"},
        {"box": [5, 5, 4, 4], "label": "unknown", "probability": None, "verdict": "unsure"},
        {"box": [1, 5, 3, 3], "label": "unknown", "probability": None, "verdict": "stranger"}]}
    plotting.predicted_faces(ax, np.zeros((10, 10, 3), np.uint8), result)
    assert [t.get_text() for t in ax.texts] == ["Leo Messi 90%", "not sure", "unknown"]  # names as people read them
    plt.close(fig)


# --------------------------------------------------------------------------- captions and layout (issue 22)
def test_short_text_wraps_at_word_boundaries_and_shows_names_with_spaces():
    assert plotting.short_text("Serena_Williams") == "Serena\nWilliams"
    assert plotting.short_text("no face matches the folder's person", 14) == "no face\nmatches the…"
    assert plotting.short_text("Arnold_Schwarzenegger", 10, 1) == "Arnold…"
    assert plotting.short_text("Abcdefghijklmnop", 8, 1) == "Abcdefg…"  # one long word: cut inside, marked
    assert plotting.short_text("") == ""


def test_cluster_captions_name_the_majority_and_put_junk_last():
    # cluster 0: 3 of 4 faces Serena's subject faces; 1: two folders, no majority; 2: background faces.
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, -1, -1]
    folders = ["Serena_Williams"] * 4 + ["A", "A", "B", "C"] + ["A", "B", "C"] + ["A", "B"]
    subject = [True, True, True, False] + [True] * 4 + [False, False, True] + [True, True]
    captions = plotting.cluster_captions(labels, folders, subject)
    assert captions == {0: "Serena Williams (3/4)", 1: "mixed (4)", 2: "bystanders (3)", -1: "unassigned (2)"}
    assert list(captions) == [0, 1, 2, -1]  # people first, then mixed, bystanders, unassigned
    # Without labels: numbered clusters, still with the bystander rule; a big junk cluster goes last.
    unlabelled = plotting.cluster_captions([5, 5, 5, 5, 1, 1], None, [False] * 4 + [True, True])
    assert unlabelled == {1: "cluster 1 (2)", 5: "bystanders (4)"} and list(unlabelled) == [1, 5]
    with pytest.raises(ValueError, match="one entry per face"):
        plotting.cluster_captions([0, 1], ["a"])


def test_projection_colours_only_the_largest_groups_with_a_legend():
    labels = ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + ["unassigned (2)"] * 2
    points = np.arange(2 * len(labels), dtype=float).reshape(-1, 2)
    fig, ax = plt.subplots()
    plotting.projection(ax, points, labels, top=2)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["others (2 groups)", "unassigned (2)", "a (5)", "b (3)"]
    plt.close(fig)


def test_display_stretch_makes_faint_details_visible():
    faint = np.zeros((10, 10), np.uint8)
    faint[0, :] = 12
    shown = plotting.display_stretch(faint)
    assert shown.max() == 1.0 and shown.min() == 0.0
    assert plotting.display_stretch(np.zeros((3, 3))).max() == 0.0


def test_average_grid_titles_each_face_with_its_caption_and_counts():
    from types import SimpleNamespace

    face = lambda group: SimpleNamespace(group=group, image=np.zeros((8, 8, 3), np.uint8), n_used=3, n_faces=4)  # noqa: E731
    rows = {"naive mean": [face("cluster_00"), face("cluster_01")], "aligned": [face("cluster_00"), face("cluster_01")]}
    fig = plotting.average_grid(rows, names={"cluster_00": "Serena Williams (3/4)"})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:2] == ["Serena Williams\n(3/4)\n3/4 faces", "cluster 01\n3/4 faces"]
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == ["naive mean", "aligned"]
    plt.close(fig)


def test_projection_panels_share_one_colour_per_person():
    truth = ["Tony_Blair"] * 3 + ["Ann"] * 2 + ["Bo"]
    captions = ["Tony Blair (3/3)"] * 3 + ["mixed (3)"] * 3
    points = np.zeros((6, 2))
    colours = plotting.top_colours(truth, 2)
    assert list(colours) == ["Tony_Blair", "Ann"]
    fig, (a, b) = plt.subplots(1, 2)
    plotting.projection(a, points, truth, top=2, colours=colours)
    plotting.projection(b, points, captions, top=2, colours=colours)
    col = lambda ax, text: next(h.get_facecolor()[0] for h, t in zip(*ax.get_legend_handles_labels()) if t.startswith(text))  # noqa: E731
    assert tuple(col(a, "Tony Blair")) == tuple(col(b, "Tony Blair"))
    assert tuple(col(b, "mixed")) not in {tuple(col(a, "Tony Blair")), tuple(col(a, "Ann"))}


def test_face_labels_stay_inside_a_narrow_photo():
    """A long label on a face near either side of a narrow photo is shifted back inside it."""
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    image = np.zeros((300, 200, 3), np.uint8)
    for ax, x in zip(axes, (2, 88)):  # 88: left of the centre, too close to the right side for the label
        result = {"label": "zlatan_ibrahimovic", "faces": [
            {"box": [x, 100, 20, 20], "label": "zlatan_ibrahimovic", "probability": 0.97, "verdict": "named"}]}
        plotting.predicted_faces(ax, image, result)
        renderer = fig.canvas.get_renderer()
        box = ax.texts[0].get_window_extent(renderer)
        left, right = ax.transData.transform((0, 0))[0], ax.transData.transform((image.shape[1], 0))[0]
        assert left - 1 <= box.x0 and box.x1 <= right + 1, (x, box, left, right)
    plt.close(fig)


def test_percent_never_claims_certainty():
    assert [plotting.percent(p) for p in (0.0, 0.5, 0.97, 0.994, 0.995, 1.0)] == ["0%", "50%", "97%", "99%", ">99%", ">99%"]


def test_display_name_reads_folder_names_as_names():
    assert plotting.display_name("leo_messi") == "Leo Messi"
    assert plotting.display_name("Tony_Blair") == "Tony Blair"
    assert plotting.display_name("jean-claude_van_damme") == "Jean Claude Van Damme"
    assert plotting.display_name("___") == "___"  # nothing readable: the label as it is


def test_model_comparison_whiskers_stop_at_one_and_stay_inside_the_axes():
    import matplotlib.pyplot as plt

    from vision_lib import plotting

    fig, ax = plt.subplots()
    plotting.model_comparison(ax, [{"model": "a", "accuracy": 1.0, "accuracy_std": 0.02},
                                   {"model": "b", "accuracy": 0.9, "accuracy_std": 0.05}])
    ends = [seg[:, 0] for seg in ax.collections[0].get_segments()]  # one whisker per bar: (lower, upper)
    assert [(round(lo, 3), round(hi, 3)) for lo, hi in ends] == [(0.98, 1.0), (0.85, 0.95)]
    assert ax.get_xlim()[1] > 1.0  # the cap at 1 is drawn inside the axes, not cut by its edge
    plt.close(fig)


def test_model_comparison_labels_stay_clear_of_long_whiskers():
    import matplotlib.pyplot as plt

    from vision_lib import plotting

    fig, ax = plt.subplots(figsize=(4, 2.5))  # a panel of notebook 03's grid
    plotting.model_comparison(ax, [{"model": "svm", "accuracy": 0.95, "accuracy_std": 0.02},
                                   {"model": "knn", "accuracy": 0.46, "accuracy_std": 0.17}])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    whiskers = [seg[:, 0] for seg in ax.collections[0].get_segments()]
    for text, (lo, _) in zip(ax.texts, whiskers):
        label_end = text.get_window_extent(renderer).x1
        whisker_start = ax.transData.transform((lo, 0))[0]
        assert label_end < whisker_start, text.get_text()
    plt.close(fig)
