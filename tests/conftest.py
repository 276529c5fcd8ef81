from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from yiwu_credit.data import synth
from yiwu_credit.model.bundle import load_bundle


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


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a throwaway PostgreSQL server (tests/pgserver.py): initdb in a temporary directory,
    loopback only, stopped and removed after the session. Skipped when the server or the driver
    is not installed, except in CI (CI=true), where that is a failure."""
    import os

    from pgserver import PostgresUnavailable, find_bin, temporary_server

    in_ci = os.environ.get("CI", "").lower() == "true"
    try:
        find_bin()
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except (PostgresUnavailable, ImportError) as e:
        if in_ci:
            pytest.fail(f"PostgreSQL tests cannot run in CI: {e}")
        pytest.skip(f"PostgreSQL not available: {e}")
    with temporary_server() as url:
        yield url


@pytest.fixture()
def usage_error(capsys):
    """Run the CLI with ``argv`` that must be a usage error: argparse's exit 2, no traceback;
    returns stderr."""
    from yiwu_credit.cli import main

    def run(*argv) -> str:
        with pytest.raises(SystemExit) as ei:
            main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert ei.value.code == 2 and "Traceback" not in err, err
        return err

    return run
