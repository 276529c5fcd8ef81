"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` in a temporary directory,
listening only on 127.0.0.1 (a free port) and on a Unix socket inside that directory; stopped and
removed afterwards. Used by ``tests/conftest.py`` (fixture ``postgres_url``) and
``benchmarks/bench_database.py``.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` system user
(created by Debian's ``postgresql`` package) and the temporary directory is given to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresUnavailable", "find_bin", "temporary_server"]

USER = "yiwu"
PASSWORD = "s3cret-Pw_for-tests"
DATABASE = "yiwu_test"


class PostgresUnavailable(RuntimeError):
    """The server binaries (``initdb``, ``pg_ctl``) are not installed."""


def find_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, then the newest
    /usr/lib/postgresql/*/bin (Debian puts them there, off PATH)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.parent.name.split(".")])
    if cands:
        return Path(cands[-1]).parent
    raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
                              "/usr/lib/postgresql/*/bin; install the `postgresql` package (.ci/run does)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def temporary_server(*, shared_buffers: str = "32MB", extra: tuple[str, ...] = ()) -> Iterator[str]:
    """Start a server, create database ``yiwu_test`` owned by user ``yiwu`` (password auth over
    TCP), yield its URL ``postgresql://yiwu:PASSWORD@127.0.0.1:PORT/yiwu_test``; stop and remove
    it on exit. Durability is off (fsync, full_page_writes): test data only."""
    bindir = find_bin()
    run_as: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="yiwu-pg-"))
    try:
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no `postgres` user to run the server as") from None
            os.chown(tmp, pw.pw_uid, pw.pw_gid)
            run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
               "HOME": str(tmp)}
        pwfile = tmp / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if run_as:
            os.chown(pwfile, run_as["user"], run_as["group"])
        data = tmp / "data"

        def run(*cmd: str | Path, check: bool = True) -> subprocess.CompletedProcess:
            return subprocess.run([str(c) for c in cmd], env=env, cwd=tmp, check=check, capture_output=True,
                                  text=True, timeout=120, **run_as)

        run(bindir / "initdb", "-D", data, "-U", USER, f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
            "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        pwfile.unlink()
        opts = ["-c listen_addresses=127.0.0.1", f"-k {tmp}", f"-c shared_buffers={shared_buffers}",
                "-c fsync=off", "-c full_page_writes=off", "-c synchronous_commit=off", "-c max_connections=40",
                *extra]
        for _attempt in range(3):  # a port found free may be taken before the server binds it
            port = _free_port()
            res = run(bindir / "pg_ctl", "-D", data, "-l", tmp / "server.log", "-w", "-t", "60",
                      "-o", " ".join([f"-p {port}", *opts]), "start", check=False)
            if res.returncode == 0:
                break
        else:
            log = (tmp / "server.log").read_text(errors="replace")[-2000:] if (tmp / "server.log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {res.stderr.strip()}\n{log}")
        try:
            run(bindir / "psql" if (bindir / "psql").exists() else "psql", "-h", tmp, "-p", str(port), "-U", USER,
                "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {DATABASE}")
            yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
        finally:
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop", check=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
