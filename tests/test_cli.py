"""One CLI vocabulary: the same flag for the same idea, choices from the library, every command described."""
from __future__ import annotations

import argparse

import pytest

from vision_lib import cli, models, names


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: a for a in p._actions for flag in a.option_strings}


def test_commands_in_pipeline_order_each_described():
    commands = _commands()
    assert list(commands)[:8] == ["faces", "features", "train", "predict", "cluster", "teams", "average", "compress"]
    for name, p in commands.items():
        assert p.description, f"{name} has no description"
        assert "default" in p.format_help() or name in ("fetch",), f"{name} shows no defaults"


def test_same_idea_same_flag():
    for name, p in _commands().items():
        shown = {f for f, a in _options(p).items() if a.help is not argparse.SUPPRESS}
        assert "--force" not in shown, f"{name}: replacing outputs is --overwrite"
        assert not ({"--k", "--groups"} & shown) or name == "compress", f"{name}: a number of groups is --clusters"
    commands = _commands()
    for name in ("faces", "features", "train", "predict", "cluster", "average"):
        assert {"--jobs", "--quiet", "--scheduler"} <= set(_options(commands[name])), name
    for name in ("features", "train", "average", "compress", "present"):
        assert "--overwrite" in _options(commands[name]), name
    assert "--out" in _options(commands["train"]) and "--model" in _options(commands["predict"])


def test_choices_come_from_the_library():
    commands = _commands()

    def choices(cmd, flag):
        return tuple(_options(commands[cmd])[flag].choices)

    assert choices("features", "--kind") == names.FEATURE_KINDS
    assert choices("features", "--space") == names.HISTOGRAM_SPACES
    assert choices("cluster", "--method") == names.CLUSTER_METHODS
    assert choices("teams", "--method") == names.TEAM_METHODS
    assert choices("average", "--method") == names.AVERAGE_METHODS
    assert choices("train", "--classifier") == ("auto", *names.CLASSIFIERS)
    for cmd in ("faces", "features", "train", "cluster", "average"):
        assert choices(cmd, "--detector") == models.DETECTORS
    assert choices("cluster", "--descriptor") == models.DESCRIPTORS


def test_model_help_names_the_registry_defaults(monkeypatch):
    """--detector / --descriptor / train --max-distance help state the defaults from the registry's
    constants, not copies of them."""
    monkeypatch.setattr(models, "DEFAULT_DETECTOR", "mtcnn")
    monkeypatch.setattr(models, "DEFAULT_DESCRIPTOR", "faceres")
    commands = _commands()
    for cmd in ("faces", "features", "train", "cluster", "average"):
        assert "(default: mtcnn" in _options(commands[cmd])["--detector"].help, cmd
    for cmd in ("features", "train", "cluster", "average"):
        assert "(default: faceres" in _options(commands[cmd])["--descriptor"].help, cmd
    same = f"{models.same_person_distance('faceres'):g} for faceres"
    assert same in _options(commands["train"])["--max-distance"].help


def test_stages_use_the_same_names():
    from vision_lib import average, classify, cluster, features, tables, teams

    assert cluster.CLUSTER_METHODS is names.CLUSTER_METHODS and average.AVERAGE_METHODS is names.AVERAGE_METHODS
    assert not hasattr(cluster, "METHODS") and not hasattr(average, "METHODS")  # one name, one meaning
    assert classify.MODELS is names.CLASSIFIERS and teams.TEAM_METHODS is names.TEAM_METHODS
    assert tables.FEATURE_KINDS is names.FEATURE_KINDS
    assert tuple(features.COLOUR_SPACES) == names.HISTOGRAM_SPACES


@pytest.mark.parametrize("argv, dest, value", [
    (["train", "x", "--model", "m.pkl"], "out", "m.pkl"),
    (["train", "x", "--out", "m.pkl", "--force"], "overwrite", True),
    (["features", "x", "--out", "t.npz", "--force"], "overwrite", True),
    (["cluster", "x", "--out", "o", "--k", "3"], "clusters", 3),
    (["teams", "x", "--out", "o", "--groups", "3"], "clusters", 3),
])
def test_older_spellings_still_accepted(argv, dest, value):
    args = cli.build_parser().parse_args(argv)
    assert str(getattr(args, dest)) == str(value)
