"""JPEG and WebP at the palette PNG's byte budget (compress.equal_bytes): the files fit the budget,
and the comparison comes out as it should: the palette wins on a few-colour graphic, the photo
codecs win on a photo."""
from __future__ import annotations

import numpy as np
import pytest

from vision_lib import compress


@pytest.mark.parametrize("codec", compress.CODECS)
def test_codec_at_bytes_is_the_best_quality_that_fits(codec):
    photo = compress.bundled_images(limit=1)
    image = next(iter(photo.values()))
    big = compress.codec_at_bytes(codec, image, 40_000)
    assert big["fits"] and big["bytes"] <= 40_000 and 1 <= big["quality"] <= 100
    if big["quality"] < 100:
        assert len(compress.encode_with(codec, image, big["quality"] + 1)) > 40_000
    small = compress.codec_at_bytes(codec, image, 10_000)
    assert small["quality"] < big["quality"] and small["psnr"] < big["psnr"]
    tiny = compress.codec_at_bytes(codec, image, 50)
    assert not tiny["fits"] and tiny["quality"] == 1 and tiny["bytes"] > 50


def test_palette_wins_on_a_graphic_and_loses_on_a_photo():
    graphic = compress.graphic_image()
    assert len(np.unique(graphic.reshape(-1, 3), axis=0)) < 300  # few colours (text is anti-aliased)
    rows = {r["method"]: r for r in compress.equal_bytes(graphic, compress.quantize(graphic, 16, random_state=0))}
    assert set(rows) == {"palette PNG", "jpeg", "webp"}
    assert all(rows["palette PNG"]["psnr"] > rows[c]["psnr"] + 10 for c in compress.CODECS)
    photo = compress.bundled_images()["astronaut"]
    rows = {r["method"]: r for r in compress.equal_bytes(photo, compress.quantize(photo, 16, random_state=0))}
    assert all(r["bytes"] <= rows["palette PNG"]["bytes"] for r in rows.values())
    assert all(rows[c]["psnr"] > rows["palette PNG"]["psnr"] for c in compress.CODECS)
    with pytest.raises(ValueError, match="unknown codec"):
        compress.encode_with("gif", photo, 50)
