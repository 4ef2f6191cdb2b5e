"""The facade: the common path in a handful of verbs re-exported from vision_lib."""
from __future__ import annotations

import numpy as np

import vision_lib as vl
from vision_lib import api


def test_every_verb_is_reexported_and_modules_stay_modules():
    for name in api.__all__:
        assert getattr(vl, name) is getattr(api, name)
        assert name in vl.__all__
    import types

    assert isinstance(vl.cluster, types.ModuleType) and isinstance(vl.faces, types.ModuleType)


def test_quantize_on_a_generated_image(rng):
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    q = vl.quantize(image, k=4)
    assert q.image.shape == image.shape and len(q.palette) <= 4


def test_cluster_identities_takes_rows(rng):
    centres = rng.normal(size=(3, 16))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    X = np.repeat(centres, 8, axis=0) + rng.normal(scale=0.02, size=(24, 16))
    labels = vl.cluster_identities(X, threshold=0.5)
    assert len(set(labels[:8])) == len(set(labels[8:16])) == len(set(labels[16:])) == 1
    assert len(set(labels)) == 3


def test_detect_describe_predict_on_real_photos(lfw_dir, tmp_path):
    people = sorted(p for p in lfw_dir.iterdir() if p.is_dir())[:2]
    photos = [sorted(p.glob("*.jpg"))[:6] for p in people]
    image = vl.load_image(photos[0][0])
    faces = vl.detect_faces(image)
    assert faces and len(faces[0].box) == 4
    X = vl.describe_faces(image, faces)
    assert X.shape[0] == len(faces) and X.dtype == np.float32
    root = tmp_path / "people"
    for person, files in zip(people, photos):
        (root / person.name).mkdir(parents=True)
        for f in files[1:]:
            (root / person.name / f.name).write_bytes(f.read_bytes())
    model = vl.train(root, progress=False)
    answer = vl.predict(model, photos[0][0])
    assert set(answer) >= {"label", "faces"}
    assert answer["label"] in (people[0].name, None)
    assert len(answer["faces"]) == len(faces)  # the faces detect_faces found, each answered
    assert "error" in vl.predict(model, tmp_path / "missing.jpg")  # an error entry, not a crash
