"""Settings: every profile loads, the layers stack in order, and a bad file is one line naming the
file, the key and what it expects."""

from __future__ import annotations

import argparse

import pytest
from expect import cli, ends_cleanly

from edge.errors import FlorenceEdgeError
from edge.live import config

BOARD_PROFILES = ("pi5", "pi4", "pi3", "zero2w", "cm4", "cm5", "generic-aarch64")


def parse(*argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_boards_the_issue_names_have_profiles():
    assert set(BOARD_PROFILES) <= set(config.profile_names())


@pytest.mark.parametrize("name", config.profile_names())
def test_every_profile_sets_what_differs_per_board(name):
    values = config.read_file(config.profile_path(name))
    for key in ("name", "ram_mb", "model", "source", "main_size", "fps", "tasks", "change_threshold",
                "jpeg_quality", "http", "memory_max_mb", "watchdog_sec"):
        assert key in values, f"{name} lacks {key}"
    assert values["memory_max_mb"] < values["ram_mb"], "the service must leave the board memory of its own"


@pytest.mark.parametrize("name", config.profile_names())
def test_print_config_needs_no_bundle_or_camera_and_reads_back(name, tmp_path):
    result = cli("live", "--profile", name, "--print-config", cwd=tmp_path)
    ends_cleanly(result, 0, "")
    printed = tmp_path / "printed.toml"
    printed.write_text(result.stdout)
    profile = config.read_file(config.profile_path(name))
    assert {k: v for k, v in config.read_file(printed).items() if k in profile} == profile
    again = config.resolve(parse("--config", str(printed)))
    assert again.values == config.resolve(parse("--profile", name)).values


def test_command_line_over_config_over_profile_over_defaults(tmp_path):
    file = tmp_path / "mine.toml"
    file.write_text('[camera]\nfps = 7.5\nsource = "scenes"\n[tasks]\nbeams = 2\n[output]\njson = true\n')
    settings = config.resolve(parse("--profile", "pi4", "--config", str(file), "--beams", "3", "--no-json"))
    assert settings.fps == 7.5 and settings.origins["fps"] == f"config {file}"  # file over profile
    assert settings.source == "scenes"
    assert settings.beams == 3 and settings.origins["beams"] == "command line"  # command line over file
    assert settings.json is False and settings.origins["json"] == "command line"  # a flag can undo a file's true
    assert settings.threads == 4 and settings.origins["threads"] == "profile pi4"  # profile over default
    assert settings.stale_after == 5.0 and settings.origins["stale_after"] == "default"


def test_command_line_values_are_checked_like_files():
    assert parse("--main-size", "640x480").main_size == [640, 480]
    assert parse("--region", "10,20,30,40").region == [10, 20, 30, 40]
    with pytest.raises(SystemExit):
        parse("--main-size", "640")
    with pytest.raises(SystemExit):
        parse("--jpeg-quality", "0")


@pytest.mark.parametrize("text, message", [
    ("[camera]\nfsp = 10\n", "unknown key 'fsp' in [camera]; known: source, password_file, main_size"),
    ("[cammera]\nfps = 10\n", "unknown section [cammera]; known: board, model"),
    ("[camera]\nfps = \"fast\"\n", "[camera] fps expects a number above 0 and at most 120, got \"fast\""),
    ("[camera]\nmain_size = [1280]\n", "[camera] main_size expects [width, height]"),
    ("[tasks]\ntasks = \"OD\"\n", "[tasks] tasks expects a list of task names"),
    ("[tasks]\nbeams = true\n", "[tasks] beams expects a whole number from 1 to 16, got true"),
    ("[output]\njson = 1\n", "[output] json expects true or false, got 1"),
    ("[model]\nsource = \"scenes\"\n", "unknown key 'source' in [model]"),
    ("camera = 3\n", "camera must be a section"),
    ("[camera\n", "not valid TOML"),
])
def test_a_bad_config_file_names_the_file_the_key_and_what_it_expects(tmp_path, text, message):
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(FlorenceEdgeError, match=None) as caught:
        config.read_file(file)
    assert str(caught.value).startswith(f"{file}: ") and message in str(caught.value), str(caught.value)
    result = cli("live", "--config", file, "--print-config", cwd=tmp_path)
    ends_cleanly(result, 2, message, "live")


def test_unknown_profile_and_missing_settings_are_one_line(tmp_path):
    ends_cleanly(cli("live", "--profile", "pi9", "--print-config"), 2, "unknown profile 'pi9'; choose from", "live")
    ends_cleanly(cli("live", "--source", "scenes", "-t", "OD", cwd=tmp_path), 2, "name the model: -m/--model", "live")
    ends_cleanly(cli("live", "-m", "x", "-t", "OD", cwd=tmp_path), 2, "name the source: --source", "live")


def test_a_config_file_runs_the_loop(demo_int8_bundle, tmp_path):
    file = tmp_path / "run.toml"
    file.write_text(f'[model]\nmodel = "{demo_int8_bundle[0]}"\n[camera]\nsource = "scenes"\n'
                    '[tasks]\ntasks = ["OD"]\n[output]\njson = true\n')
    result = cli("live", "--config", file, "--frames", "3", cwd=tmp_path)
    ends_cleanly(result, 0, "")
    assert sum('"event"' not in line for line in result.stdout.splitlines()) == 3
