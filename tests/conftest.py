from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from yiwu_credit import synth
from yiwu_credit.bundle import load_bundle


@pytest.fixture(scope="session")
def world():
    """A small synthetic world (3,000 entities, fixed seed)."""
    return synth.generate(3000, seed=11)


@pytest.fixture(scope="session")
def world_dir(world, tmp_path_factory) -> Path:
    """The small world saved as CSV; tests copy it before changing anything."""
    d = tmp_path_factory.mktemp("world")
    data_dir, _ = world.save(d, format="csv")
    return data_dir


@pytest.fixture()
def world_copy(world_dir, tmp_path) -> Path:
    dst = tmp_path / "dataset"
    shutil.copytree(world_dir, dst)
    return dst


@pytest.fixture(scope="session")
def bundle():
    return load_bundle()
