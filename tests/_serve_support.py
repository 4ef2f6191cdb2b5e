"""Shared by test_serve.py and test_serve_browser.py: one small real model bundle per test session.

Trained on 3 footballers x 8 raw photos (uncurated: the training cleans them); the held-out photos
of the same players are what the tests send to the server.
"""
from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

PLAYERS = ("cristiano_ronaldo", "leo_messi", "mohamed_salah")
PER_PLAYER = 8


@dataclass(frozen=True)
class Bundle:
    path: Path                       # the saved bundle (what `vision-lib serve --model` takes)
    held_out: tuple[tuple[Path, str], ...]   # (photo, player) not used for training, shuffled


@functools.lru_cache(maxsize=None)
def trained_bundle(footballers_dir: Path, out_dir: Path) -> Bundle:
    """Train and save the bundle once per session (the detection cache makes a rebuild cheap)."""
    from vision_lib.classify import save_model, split_per_person, train

    training, rest = split_per_person(footballers_dir, PER_PLAYER, seed=0, people=PLAYERS)  # copies not held out
    model = train(training, features="embedding", n_jobs=2, progress=False)
    path = save_model(model, Path(out_dir) / "serve_test_model.pkl", overwrite=True)
    order = np.random.default_rng(1).permutation(len(rest))
    return Bundle(path, tuple((rest.paths[i], rest.labels[i]) for i in order))


def single_face_photos(bundle: Bundle, n: int, max_try: int = 40) -> list[tuple[Path, str]]:
    """Held-out photos, at most one per player, in which the default detector finds exactly one face.

    The first such photos in the bundle's fixed shuffled order: chosen by face count and player,
    never by whether the model gets them right.
    """
    from vision_lib.faces import detect_paths

    picked: list[tuple[Path, str]] = []
    candidates = list(bundle.held_out[:max_try])
    for start in range(0, len(candidates), 4):  # a few at a time: stop detecting once we have n
        chunk = [c for c in candidates[start:start + 4] if c[1] not in {lab for _, lab in picked}]
        # The bundle's detector (the default one), with the descriptors training cached.
        found = detect_paths([p for p, _ in chunk], None, n_jobs=1, progress=False, descriptors=True)
        for (path, player), pf in zip(chunk, found):
            if pf.error is None and len(pf.faces) == 1 and player not in {lab for _, lab in picked}:
                picked.append((path, player))
        if len(picked) >= n:
            break
    return picked[:n]


@contextmanager
def threaded_server(app, threads: int = 4) -> Iterator:
    """Yield a waitress server for `app` on 127.0.0.1 (a free port), serving from a daemon thread.

    It is stopped from inside its own loop (a thunk run by its trigger): closing its sockets from
    this thread while the loop sits in select() raised "Bad file descriptor" in the server thread.
    """
    from waitress import wasyncore

    from vision_lib.serve import make_server

    server = make_server(app, "127.0.0.1", 0, threads=threads)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        # An empty socket map ends waitress's loop; the worker threads are joined afterwards.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        thread.join(10)
        server.task_dispatcher.shutdown()


def stop(proc) -> None:
    """End a server subprocess: terminate, and kill it if it has not exited 20 s later."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
