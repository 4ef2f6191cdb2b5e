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
