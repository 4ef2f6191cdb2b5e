"""From a face collection to the other stages: a classifier trained on its named people, the
average face of one of its people (``vision-lib train --db``, ``vision-lib average --db``).

Both hand the collection's faces to the existing code paths: the names go through
:func:`vision_lib.naming.train_from_names` (each named face used as named; a hidden person's faces,
"not a person of interest", calibrate the open-set rule as strangers, as ``-`` in a names table)
and a person's faces through :func:`vision_lib.average.average_groups`, with the collection's own
detector and descriptor. The photos are read where the collection found them
(:meth:`~vision_lib.collection.Collection.photo_path`); a collection built from a feature table
without its photos cannot do either, and says so.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .average import AverageFace
    from .classify import FaceClassifier
    from .collection import Collection

__all__ = ["open_collection", "names_of_collection", "person_id", "person_group", "train_from_collection",
           "average_person"]


def open_collection(people: "Collection | str | os.PathLike") -> "Collection":
    """A :class:`~vision_lib.collection.Collection` (a path is opened, checked read-only; a missing
    file is a clear error)."""
    from .collection import Collection

    people = people if isinstance(people, Collection) else Collection(people)
    people.store  # noqa: B018 (a missing file: one clear error, nothing created)
    return people


def _photo_files(people: "Collection", photos) -> dict[int, Path | None]:
    """``{photo id: its file}`` (None: not at hand, e.g. a feature table's photo without its folder)."""
    out: dict[int, Path | None] = {}
    for photo in {int(p) for p in photos}:
        try:
            path = people.photo_path(photo)
        except ValueError:
            path = None
        out[photo] = path if path is not None and path.is_file() else None
    return out


def names_of_collection(people: "Collection") -> tuple[Path, list]:
    """``(folder, rows)``: the collection's faces as a names table (:class:`vision_lib.naming.Row`;
    ``source`` relative to ``folder``, the folder holding every photo at hand; ``cluster`` the person,
    ``-1`` for none; ``name`` the person's name, ``-`` for a hidden person, empty when unnamed)."""
    import pandas as pd

    from .naming import NOT_OF_INTEREST, Row

    df = people.dataframe()
    files = _photo_files(people, df["photo"])
    at_hand = [f for f in files.values() if f is not None]
    if not at_hand:
        raise ValueError(f"{people.path}: none of the collection's photos is at hand (a collection built from a "
                         "feature table needs the folder the table was made from)")
    folder = Path(os.path.commonpath([str(f.parent) for f in at_hand]))
    rows = []
    for photo, j, person, name, hidden in zip(df["photo"], df["face_index"], df["person"], df["name"], df["hidden"]):
        path = files[int(photo)]
        named = not pd.isna(person)
        label = "" if not named else NOT_OF_INTEREST if hidden else (name if isinstance(name, str) else "")
        source = path.relative_to(folder).as_posix() if path is not None else f"<photo {int(photo)} not at hand>"
        rows.append(Row(source, int(j), int(person) if named else -1, label))
    return folder, rows


def train_from_collection(people: "Collection | str | os.PathLike", **options) -> "FaceClassifier":
    """A classifier of the named people of a collection (:func:`vision_lib.naming.train_from_names`
    on :func:`names_of_collection`, with the collection's detector and descriptor); ``options``:
    those of ``train_from_names`` (``far``, ``model``, ``strangers``, ``n_jobs``, ``progress``...)."""
    from .naming import train_from_names

    people = open_collection(people)
    folder, rows = names_of_collection(people)
    model = train_from_names(rows, folder, detector=people.detector, descriptor=people.descriptor, **options)
    model.info_["names"]["collection"] = str(people.path)
    return model


def person_id(people: "Collection", person: int | str) -> int:
    """The id of ``person``: an id, or a name (exactly one person must have it)."""
    if isinstance(person, int) or str(person).strip().isdigit():
        pid = int(person)
        if not any(p.id == pid for p in people.people()):
            raise ValueError(f"no person {pid} in {people.path} (`vision-lib people --db {people.path}` lists them)")
        return pid
    found = [p.id for p in people.people() if p.name == str(person)]
    if len(found) != 1:
        raise ValueError(f"{'no' if not found else len(found)} people named {person!r} in {people.path}"
                         + (f" (ids {found}; give one id)" if found else ""))
    return found[0]


def person_group(people: "Collection", person: int | str) -> dict[str, list[tuple[Path, int]]]:
    """``{group name: [(photo file, face_index), ...]}`` of one person's faces at hand, the group
    named after the person (``cluster_NN`` when unnamed), as :func:`vision_lib.average.average_groups` takes it."""
    from .average import cluster_group_name

    pid = person_id(people, person)
    df = people.dataframe()
    mine = df[(df["person"] == pid).fillna(False)]
    files = _photo_files(people, mine["photo"])
    items = [(files[int(p)], int(j)) for p, j in zip(mine["photo"], mine["face_index"]) if files[int(p)] is not None]
    if not items:
        raise ValueError(f"person {pid} of {people.path} has no face in a photo at hand")
    name = mine["name"].iloc[0]
    return {name if isinstance(name, str) and name else cluster_group_name(pid): items}


def average_person(people: "Collection | str | os.PathLike", person: int | str, **options) -> "AverageFace":
    """The average face of one person of a collection (by id or name), by
    :func:`vision_lib.average.average_groups` with the collection's models; ``options``: its
    others (``method``, ``size``, ``progress``...)."""
    from .average import average_groups

    people = open_collection(people)
    return average_groups(person_group(people, person), detector=people.detector, descriptor=people.descriptor,
                          **options)[0]
