"""Fixtures of the bad-input suite: a user's folder checked unchanged."""

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
