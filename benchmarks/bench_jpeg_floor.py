"""Benchmark the floor of the 12 MP path (issue 35): what libjpeg-turbo itself costs per photo.

On bench_speed's held-out footballer photos, at their own size (~0.5 MP) and re-encoded at 4000 px
(12 MP, quality 90, bench_speed's camera copies): libjpeg-turbo decoding each at 1/8, 1/4, 1/2 and
whole, and reading its DCT coefficients (``jpeg_read_coefficients``: the Huffman decoding plus
every block kept, where a decoder that entropy-decodes a photo once for both the detector's view
and the faces' region would start). ``benchmarks/jpeg_floor.c``, compiled here with ``cc``; one
core, the best of 3 passes, milliseconds per photo, one JSON object.

    .venv/bin/python benchmarks/bench_jpeg_floor.py [--photos 60]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_speed import camera_copies, held_out  # noqa: E402  (the same photos and copies)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=60, help="held-out photos (default 60, bench_speed's)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("bench_jpeg_floor: no C compiler (cc) on PATH", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench_jpeg_floor_") as tmp:
        work = Path(tmp)
        program = work / "jpeg_floor"
        built = subprocess.run([cc, "-O2", str(Path(__file__).with_name("jpeg_floor.c")), "-o", str(program), "-ljpeg"],
                               capture_output=True, text=True, check=False)
        if built.returncode:
            print(f"bench_jpeg_floor: cannot build jpeg_floor.c (libjpeg-turbo's headers: Debian "
                  f"libjpeg62-turbo-dev):\n{built.stderr[-800:]}", file=sys.stderr)
            return 2
        _, _, pick = held_out(args.photos, args.seed)
        web = [str(p) for p in pick if str(p).lower().endswith((".jpg", ".jpeg"))]
        (work / "camera").mkdir()
        big = [str(p) for p in camera_copies(pick, work / "camera")]

        def run(paths):
            out = subprocess.run([str(program), *paths], capture_output=True, text=True, check=True).stdout
            return json.loads(out)

        report = {"web": run(web), "camera_12mp": run(big), "what": __doc__.splitlines()[0]}
    cam, web_ms = report["camera_12mp"], report["web"]["decode_whole_ms"]
    report["derived"] = {
        "camera_quarter_decode_minus_web_decode_ms": round(cam["decode_1_4_ms"] - web_ms, 2),
        "camera_coefficients_minus_quarter_decode_ms": round(cam["read_coefficients_ms"] - cam["decode_1_4_ms"], 2),
        "camera_eighth_decode_share_of_quarter": round(cam["decode_1_8_ms"] / cam["decode_1_4_ms"], 3),
    }
    json.dump(report, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
