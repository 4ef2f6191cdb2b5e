"""Shared by the collection tests: a small collection of real LFW photos with its people named."""
from __future__ import annotations

import shutil
from pathlib import Path

from _corpus import LFW, have_model_files, lfw_photos

HAVE_REAL = LFW.is_dir() and have_model_files("yunet", "facenet")
WHY_NOT = f"needs the LFW photos in {LFW}/ and the YuNet/FaceNet model files"


def named_lfw_collection(tmp: Path, people: int = 3) -> tuple[Path, dict[str, Path]]:
    """``(collection file, {person: held-out photo})``: photos 1-6 of the first ``people`` LFW people
    indexed from two folders (``tmp/a``: 1-4, ``tmp/b``: 5-6; two roots), each person of the
    collection named after the folder most of its subject faces come from; photo 7 held out."""
    from vision_lib import Collection
    from vision_lib.cli import main

    held = {}
    for person, src in lfw_photos(people, 7):
        k = int(src.stem[-4:])
        if k == 7:
            held[person] = src
            continue
        part = "a" if k <= 4 else "b"
        (tmp / part / person).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tmp / part / person / src.name)
    db = tmp / "people.db"
    assert main(["index", str(tmp / "a"), str(tmp / "b"), "--db", str(db), "--quiet", "--jobs", "1"]) == 0
    with Collection(db) as collection:
        df = collection.dataframe()
        subject = df[df["subject"]]
        for person, rows in subject.groupby(subject["source"].str.split("/").str[0]):
            collection.name(int(rows["person"].mode()[0]), person)
    return db, held
