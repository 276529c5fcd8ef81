"""The entry point: the parser, signals, and the one mapping from an outcome to an exit code."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import YiwuCreditError, exit_codes_text

__all__ = ["build_parser", "main"]

EXIT_INTERNAL = 1


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup (temporary files) runs."""


#: set by the SIGTERM handler: a library may turn the raised _Terminated into an error of its own
#: (Cython does, when the signal lands while it parses a buffer format), so the exit code follows
#: this flag, not the exception's type
_TERM_REQUESTED: list[bool] = []


def _on_sigterm(signum, frame) -> None:  # pragma: no cover - exercised in a subprocess test
    _TERM_REQUESTED.append(True)
    raise _Terminated()


def _terminated() -> int:
    print("terminated: no output of this run was written", file=sys.stderr)
    return 143


def build_parser() -> argparse.ArgumentParser:
    """The ``yiwu-credit`` parser: every command group registers its own commands."""
    from . import data_cmds, loop_cmds, model_cmds, supervision_cmds

    ap = argparse.ArgumentParser(
        prog="yiwu-credit", description="Credit-based risk supervision of market entities (义乌信用分级分类监管).",
        epilog=exit_codes_text(),
    )
    ap.add_argument("--version", action="version", version=f"yiwu-credit {__version__}")
    ap.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sp = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (data_cmds, model_cmds, supervision_cmds, loop_cmds):
        group.register(sp)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    problem = a.check(a) if getattr(a, "check", None) else None   # each command's own usage rules
    if not problem and getattr(a, "io", None):                   # no output onto an input or another output
        try:
            from ..data.paths import check_io

            problem = check_io(a.io(a))
        except (OSError, ValueError) as e:  # a path that cannot be resolved (a NUL byte, a link loop)
            problem = f"cannot resolve the paths given: {e}"
        except YiwuCreditError as e:
            print(_safe(f"error: {e}", a), file=sys.stderr)
            return e.exit_code
    if problem:
        a.parser.error(_safe(problem, a))  # exit 2 with the command's usage
    _warn_passwords(a)
    import threading

    _TERM_REQUESTED.clear()
    old = signal.signal(signal.SIGTERM, _on_sigterm) if threading.current_thread() is threading.main_thread() else None
    try:
        return _run(a)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _urls(a: argparse.Namespace) -> list[str]:
    """The database URLs among the command's arguments (their passwords are never shown)."""
    from ..data.sources.dburl import is_database_url

    return [v for v in vars(a).values() if isinstance(v, str) and is_database_url(v)]


def _safe(text: str, a: argparse.Namespace) -> str:
    """``text`` with every password of the run's URLs redacted (the one redaction, dburl.redact_text)."""
    from ..data.sources.dburl import redact_text

    return redact_text(text, _urls(a))


def _warn_passwords(a: argparse.Namespace) -> None:
    from ..data.sources.dburl import redact, secrets_of

    for url in _urls(a):
        if secrets_of(url):
            print(f"warning: {redact(url)} carries a password, which other users can see in the process list; "
                  "give it in the environment (PGPASSWORD) or a password file (~/.pgpass, PGPASSFILE) instead",
                  file=sys.stderr)


def _error(a: argparse.Namespace, msg: str) -> None:
    """Print an error (and, with --debug, the traceback of the exception being handled), redacted."""
    if a.debug:
        import traceback

        print(_safe(traceback.format_exc(), a), end="", file=sys.stderr)
    print(_safe(msg, a), file=sys.stderr)


def _run(a: argparse.Namespace) -> int:
    try:
        return int(a.func(a) or 0)
    except _Terminated:
        return _terminated()
    except YiwuCreditError as e:
        if _TERM_REQUESTED:
            return _terminated()
        _error(a, f"error: {e}")
        return e.exit_code
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as e:
        if _TERM_REQUESTED:
            return _terminated()
        _error(a, f"error: {e.strerror or e}: {e.filename}")
        return 3
    except KeyboardInterrupt:
        print("interrupted: no output of this run was written", file=sys.stderr)
        return 130
    except Exception as e:  # an internal error: say so, without a traceback unless asked
        if _TERM_REQUESTED:  # a SIGTERM turned into another error on its way up
            return _terminated()
        _error(a, f"internal error: {type(e).__name__}: {e}\n(run with --debug for the traceback; please report it)")
        return EXIT_INTERNAL
