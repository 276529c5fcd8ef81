"""Exceptions raised for bad input. The CLI turns every one of them into a message and an exit code."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "EXIT_CODES", "YiwuCreditError", "UsageError", "ConfigError", "BundleError", "PlanError", "OutputError",
    "Problem", "DataValidationError", "VerificationFailed", "RetrainNeeded", "exit_codes_text",
]

#: The one table of exit codes: the CLI's epilog, its docstring and the README are checked against
#: it (tests/cli). Every non-zero code but 1 and 130/143 is carried by an exception class below.
EXIT_CODES: dict[int, str] = {
    0: "ok",
    1: "internal error",
    2: "usage (bad option, date or path, before any work)",
    3: "bad data",
    4: "bad configuration (catalogue, policy, profile, roster, audit record)",
    5: "bad model bundle",
    6: "impossible plan",
    7: "a draw does not verify",
    8: "monitor says retrain (with --fail-on-retrain)",
    9: "output not written (disk full, permission)",
    130: "interrupted",
    143: "terminated",
}


def exit_codes_text() -> str:
    """The exit-code table as one line, as the CLI's ``--help`` prints it."""
    return "exit codes: " + ", ".join(f"{c} {t}" for c, t in EXIT_CODES.items())


class YiwuCreditError(Exception):
    """Base class of every error the library raises on bad input or configuration.

    ``exit_code`` is what the CLI exits with (:data:`EXIT_CODES`).
    """

    exit_code = 3


class UsageError(YiwuCreditError):
    """A call that cannot work as given (an impossible combination of options, a bad date)."""

    exit_code = 2


class ConfigError(YiwuCreditError):
    """A catalogue, policy or roster file is malformed (names the file, key and reason)."""

    exit_code = 4


class BundleError(YiwuCreditError):
    """A model bundle is missing, tampered with or incompatible."""

    exit_code = 5


class PlanError(YiwuCreditError):
    """An impossible supervision request (sample larger than the pool, unmet constraints...)."""

    exit_code = 6


class OutputError(YiwuCreditError):
    """An output could not be written (disk full, no permission, read-only file system...).

    Nothing partial is left behind: every output of the run is written to a temporary file first.
    """

    exit_code = 9


@dataclass(frozen=True)
class Problem:
    """One validation finding: which table/column, which rows (1-based data rows of the source: row 1 is line 2 of a CSV), and why."""

    table: str
    column: str | None
    reason: str
    rows: tuple[int, ...] = field(default_factory=tuple)
    n_rows: int = 0

    def __str__(self) -> str:
        where = self.table + (f".{self.column}" if self.column else "")
        if self.n_rows:
            shown = ", ".join(str(r) for r in self.rows)
            more = f" (+{self.n_rows - len(self.rows)} more)" if self.n_rows > len(self.rows) else ""
            return f"{where}: {self.reason} — {self.n_rows} row(s), e.g. rows {shown}{more}"
        return f"{where}: {self.reason}"


class DataValidationError(YiwuCreditError):
    """Every problem found in a dataset, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = [f"{len(self.problems)} data problem(s) found:"] + [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class VerificationFailed(YiwuCreditError):
    """A published draw does not verify (MISMATCH), or cannot be verified (NOT VERIFIED)."""

    exit_code = 7


class RetrainNeeded(YiwuCreditError):
    """Monitoring says the model should be retrained (raised by ``monitor --fail-on-retrain``)."""

    exit_code = 8
