"""Every file under an input folder is accounted for, decided by content, and no input changes.

The folder mixes odd-but-valid photos (made from a real face photo of ../shared: no extension, wrong
extension, CMYK, 16-bit, EXIF-rotated, progressive, ...) with files that are not photos (text, SVG,
PDF, zero bytes, hidden, link loops, ...). Each command that reads folders must process the photos,
find the face in every one that has it, and list every other entry with its reason.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from _corpus import entries, make_mixed_folder, tree_state
from vision_lib import io
from vision_lib.cli import main

FACE_PHOTO = "leo_messi/leo_messi_000.jpg"  # clear, frontal, one face (as in test_faces)


@pytest.fixture(scope="module")
def mixed(footballers_dir, tmp_path_factory):
    src = footballers_dir / FACE_PHOTO
    if not src.is_file():
        pytest.skip(f"real face photo {src} not found")
    root = tmp_path_factory.mktemp("mixed") / "in"
    with_face, faceless, others = make_mixed_folder(root, src)
    return root, with_face, faceless, others


def _rows(path: Path) -> list[dict]:
    with open(path, **io.CSV_TEXT) as f:
        return list(csv.DictReader(f))


def _relative(source: str, root: Path) -> str:
    return Path(source).relative_to(root).as_posix() if Path(source).is_absolute() else source


def test_scan_decides_by_content_and_lists_every_other_entry_with_its_reason(mixed):
    root, with_face, faceless, others = mixed
    scan = io.scan_folder(root)
    photos = {p.relative_to(root).as_posix() for p in scan.photos}
    skipped = {r.source: r.reason for r in scan.relative_skipped()}
    # The truncated JPEG is a photo by its header; it is rejected when decoded (see the export test).
    assert photos == with_face | faceless | {"truncated.jpg"}
    assert set(skipped) == set(others) - {"truncated.jpg"}
    for name, reason in skipped.items():
        assert others[name] in reason, (name, reason)
    assert photos | set(skipped) == entries(root)  # nothing unlisted


def test_faces_export_finds_every_face_and_lists_every_other_file(mixed, tmp_path, capsys):
    root, with_face, faceless, others = mixed
    before = tree_state(root)
    out = tmp_path / "faces"
    assert main(["faces", str(root), "--out", str(out), "--jobs", "1"]) == 0
    printed = capsys.readouterr().out
    assert tree_state(root) == before, "inputs must be unchanged (bytes, modes, times, links)"
    kept = {r["source"] for r in _rows(out / "faces.csv")}
    rejected = {r["source"]: r["reason"] for r in _rows(out / "rejected.csv")}
    assert with_face <= kept, f"no face found in: {sorted(with_face - kept)} ({rejected})"
    assert not kept & set(rejected)
    assert kept | set(rejected) == entries(root)  # every file: a face row or a reason
    assert "no face" in rejected["tiny_8x8.png"] or "too small" in rejected["tiny_8x8.png"]
    for name, reason in others.items():
        assert reason in rejected[name], (name, rejected[name])
    # The printed counts match the listing.
    first = printed.splitlines()[0]
    photos = len(with_face | faceless) + 1  # + the truncated one
    assert first.startswith(f"{photos} photos") and f"{photos - len(kept)} rejected" in first
    assert f"{len(others) - 1} other files, not photos, also listed in rejected.csv" in printed
    assert len(rejected) == photos - len(kept) + len(others) - 1
    # Resuming adds nothing twice.
    assert main(["faces", str(root), "--out", str(out), "--jobs", "1"]) == 0
    assert len(_rows(out / "rejected.csv")) == len(rejected) and tree_state(root) == before


def test_features_compress_and_teams_account_for_every_file(mixed, tmp_path, capsys):
    from vision_lib.tables import FeatureTable

    root, with_face, faceless, others = mixed
    before = tree_state(root)
    everything = entries(root)

    assert main(["features", str(root), "--out", str(tmp_path / "f.npz"), "--kind", "histogram",
                 "--quiet"]) == 0
    capsys.readouterr()
    table = FeatureTable.load(tmp_path / "f.npz")
    assert set(table.sources) == with_face | faceless and len(table.sources) == len(set(table.sources))
    assert set(table.sources) | {s for s, _ in table.not_used} == everything

    rc = main(["compress", str(root), "--k", "4", "--out", str(tmp_path / "c")])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rc == 1  # files meant as photos failed; the other non-photos are skipped, not failures
    by_path = {_relative(x["path"], root): x for x in lines}
    assert set(by_path) == everything and len(lines) == len(everything)
    # Visible, with a photo's extension; or a file that could not be read at all (it may be a photo).
    meant = {"truncated.jpg", "zero.jpg", "fake_photo.png", "gone.jpg", "self_link"}
    assert {p for p, x in by_path.items() if "error" in x} == meant
    assert {p for p, x in by_path.items() if "skipped" in x} == set(others) - meant

    assert main(["teams", str(root), "--out", str(tmp_path / "t")]) == 0  # top level only
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    top = {e for e in everything if "/" not in e} | {"a"}
    listed = {r["source"] for r in summary["rejected"]}
    clustered = {r["source"] for r in _rows(tmp_path / "t" / "clusters.csv")}
    assert clustered | listed == top and summary["crops"] == len(clustered)
    assert tree_state(root) == before


def test_labelled_sets_list_loose_photos_and_other_files(mixed, tmp_path):
    from vision_lib.average import groups_from_folder

    root, *_ = mixed
    ps = io.photo_set(root, labelled=True)
    assert {ps.relative(p) for p in ps.paths} == {"a/b/c/deep.jpg"} and ps.labels == ["a"]
    skipped = {ps.relative(r.source): r.reason for r in ps.skipped}
    assert set(skipped) | {"a/b/c/deep.jpg"} == entries(root)
    assert skipped["IMG_0001"] == "not in a person's sub-folder (no label)"
    listed: list = []
    groups = groups_from_folder(root, skipped=listed)
    assert groups == {"a": [root / "a/b/c/deep.jpg"]}
    assert {(g, ps.relative(r.source)) for g, r in listed} >= {("a", "a/.DS_Store"), ("", "notes.txt")}
    assert len(listed) == len(ps.skipped)


def test_a_copied_folder_with_a_renamed_photo_is_still_processed(mixed, tmp_path):
    root, *_ = mixed
    one = tmp_path / "one"
    one.mkdir()
    shutil.copyfile(root / "IMG_0001", one / "report.pdf")  # a JPEG under a misleading name
    assert io.list_images(one) == [one / "report.pdf"]
    assert io.load_image(one / "report.pdf").shape[2] == 3
