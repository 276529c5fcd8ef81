"""Exit codes live in one table (errors.EXIT_CODES): --help, the README and the exception classes agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yiwu_credit import errors
from yiwu_credit.cli import build_parser
from yiwu_credit.errors import EXIT_CODES, exit_codes_text

ROOT = Path(__file__).resolve().parents[2]


def test_help_prints_the_table():
    assert build_parser().epilog == exit_codes_text()
    for code, text in EXIT_CODES.items():
        assert f"{code} {text}" in exit_codes_text()


def test_readme_table_is_the_table():
    text = (ROOT / "README.md").read_text("utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", text, flags=re.M))
    assert {int(k): v for k, v in rows.items()} == EXIT_CODES


def test_every_error_code_is_in_the_table_and_carried_by_a_class():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.YiwuCreditError)]
    carried = {c.exit_code for c in classes}
    assert carried <= set(EXIT_CODES)
    # every code but ok, internal error and the signals is carried by an exception class
    assert set(EXIT_CODES) - {0, 1, 130, 143} == carried


@pytest.mark.parametrize("code", [2, 3, 4, 5, 6, 7, 8, 9])
def test_the_cli_exits_with_the_class_code(code, capsys):
    """The one mapping in cli/app: an exception's class decides the exit code, and its message is printed."""
    import argparse

    from yiwu_credit.cli import app

    cls = next(c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.YiwuCreditError) and c.exit_code == code)

    def fail(a):
        raise cls([errors.Problem("t", None, "why")]) if cls is errors.DataValidationError else cls("why")

    assert app._run(argparse.Namespace(func=fail, debug=False)) == code
    assert "why" in capsys.readouterr().err


def _actions():
    """(command, option, action) for every option of every command."""
    import argparse

    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for act in p._actions:
            if act.option_strings:
                yield name, act.option_strings[-1], act


def test_no_option_takes_a_bare_number():
    """Every numeric option has a checked type (finite, in range): a bare float lets nan and inf
    through, a bare int negative counts. Seeds are free text or any whole number on purpose."""
    bare = [f"{c} {o}" for c, o, act in _actions() if act.type in (float, int) and o != "--seed"]
    assert not bare, f"options with an unchecked numeric type: {bare}"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "1e400"])
def test_numeric_options_refuse_non_finite_and_negative_values(value, capsys):
    checked = [(c, o, act) for c, o, act in _actions() if callable(act.type) and act.type not in (str,)
               and getattr(act.type, "__name__", "") not in ("date_arg", "_scopes") and o != "--seed"
               and act.nargs is None]
    assert len(checked) >= 8
    for _c, o, act in checked:
        with pytest.raises(Exception) as e:  # argparse.ArgumentTypeError, turned into exit 2 by argparse
            act.type(value)
        assert "ArgumentTypeError" in type(e.value).__name__ or isinstance(e.value, ValueError), o
