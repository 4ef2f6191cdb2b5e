"""``vision-lib`` command line: a thin layer over the library, one sub-command per stage.

Each handler imports its stage lazily, so ``vision-lib compress`` never loads TensorFlow and
``vision-lib --help`` is instant.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _not_yet(name: str, issue: int):
    def handler(args: argparse.Namespace) -> int:
        print(f"vision-lib {name}: not available yet (tracked in issue {issue}).", file=sys.stderr)
        return 2

    return handler


# --------------------------------------------------------------------------- faces (issue 2)
def _add_faces(sub) -> None:
    p = sub.add_parser("faces", help="detect, crop and align faces in a folder of photos")
    p.add_argument("in_dir", type=Path, help="folder of photos (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="output folder (not inside IN_DIR)")
    p.add_argument("--detector", choices=["mtcnn", "haar"], default="mtcnn")
    p.add_argument("--align", action="store_true", help="save eye-aligned crops instead of boxes")
    p.add_argument("--min-size", type=int, default=20, help="smallest face side kept, in pixels")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.set_defaults(handler=_run_faces)


def _run_faces(args: argparse.Namespace) -> int:
    from .faces import export_faces

    summary = export_faces(
        args.in_dir, args.out, detector=args.detector, align=args.align, min_size=args.min_size,
        n_jobs=args.jobs,
    )
    print(summary)
    return 0


# --------------------------------------------------------------------------- notebooks (issue 2)
def _add_notebooks(sub) -> None:
    p = sub.add_parser("notebooks", help="execute the notebook suite into a report folder")
    p.add_argument("--out", type=Path, default=Path("reports"), help="where executed copies and HTML go")
    p.add_argument("--only", nargs="*", help="notebook names or numbers to run (default: all)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a notebook parameter (value parsed as Python literal)")
    p.set_defaults(handler=_run_notebooks)


def _run_notebooks(args: argparse.Namespace) -> int:
    import ast

    from .notebooks import run_notebooks

    params = {}
    for name, value in args.parameter:
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    results = run_notebooks(args.out, params=params, only=args.only)
    return 0 if all(r.ok for r in results) else 1


# --------------------------------------------------------------------------- fetch
def _add_fetch(sub) -> None:
    p = sub.add_parser("fetch", help="download a public face set (needs internet)")
    p.add_argument("dataset", choices=["lfw"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--min-faces", type=int, default=20, help="people with at least this many photos")
    p.set_defaults(handler=_run_fetch)


def _run_fetch(args: argparse.Namespace) -> int:
    from .datasets import fetch_lfw

    n = fetch_lfw(args.out, min_faces_per_person=args.min_faces)
    print(f"wrote {n} photos under {args.out}")
    return 0


_RESERVED = {
    "train": ("train a face classifier from a folder of sub-folders (one per person)", 3),
    "predict": ("who is in these photos, with a trained model", 3),
    "cluster": ("group faces by identity (number of people unknown)", 4),
    "teams": ("group player crops by clothing", 4),
    "average": ("aligned average face per person or cluster", 5),
    "compress": ("K-Means colour quantization to palette PNGs", 6),
    "serve": ("web page that classifies a dropped photo", 7),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vision-lib", description="Analyse photos of people: faces, features, models, clusters."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (_add_faces, _add_notebooks, _add_fetch):
        add(sub)
    for name, (text, issue) in _RESERVED.items():
        if name not in sub.choices:
            sub.add_parser(name, help=text).set_defaults(handler=_not_yet(name, issue))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, FileExistsError, ValueError, PermissionError) as exc:
        print(f"vision-lib {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
