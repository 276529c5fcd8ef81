"""The ``yiwu-credit`` command line. Thin: parse, call the library, print.

``app`` holds the parser, signals and the mapping from an outcome to an exit code
(:data:`yiwu_credit.errors.EXIT_CODES`); ``boundary`` what every command shares at its edge (argument
types, the input reader, output paths, printing); one module per command group registers its
commands. User errors never print a traceback (``--debug`` does).
"""

from .app import build_parser, main

__all__ = ["build_parser", "main"]
