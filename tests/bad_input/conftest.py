"""Fixtures of the bad-input suite: a user's folder checked unchanged, a bundle copy to damage."""

from __future__ import annotations

import shutil

import pytest
from expect import SAMPLE, snapshot


@pytest.fixture
def user_files(tmp_path):
    """A user's folder: a photo and their notes, checked unchanged after the test."""
    folder = tmp_path / "user"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "photo.png")
    (folder / "notes.txt").write_text("mine\n")
    before = snapshot(folder)
    yield folder
    after = snapshot(folder)
    assert {path: after.get(path) for path in before} == before, "a user's file was changed or removed"


@pytest.fixture
def demo_copy(demo_int8_bundle, tmp_path):
    """A copy of the demo int8 bundle a test may damage."""
    path = tmp_path / "bundle"
    shutil.copytree(demo_int8_bundle[0], path)
    return path
