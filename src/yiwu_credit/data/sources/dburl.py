"""Database URLs and names: parsing, redaction (no password is ever printed), quoting and
connecting. :mod:`yiwu_credit.data.sources.database` reads and writes through these."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from ...errors import UsageError

__all__ = [
    "DB_EXTRA", "URL_PATTERN", "Unreachable", "candidates", "is_database_url", "pg_connect", "quote_ident",
    "redact", "redact_text", "refuse_mysql", "url_scheme", "scrub", "secrets_of", "split_name", "sqlite_path",
]

URL_PATTERN = re.compile(r"^\s*(postgresql|postgres|sqlite|mysql|mariadb)(\+[a-z0-9_]+)?://", re.IGNORECASE)
DB_EXTRA = "pip install 'yiwu-credit[db]'"


# ----------------------------------------------------------------------------- URLs

def is_database_url(s: str) -> bool:
    """True when ``s`` is a database URL (``postgresql://``, ``postgres://``, ``sqlite://``,
    ``mysql://``) rather than a path."""
    return isinstance(s, str) and bool(URL_PATTERN.match(s))


def url_scheme(url: str) -> str:
    m = URL_PATTERN.match(url)
    if not m:
        raise UsageError(f"not a database URL: {redact(url)!r} (expected postgresql://, sqlite:/// or mysql://)")
    s = m.group(1).lower()
    return {"postgres": "postgresql", "mariadb": "mysql"}.get(s, s)


_HOST = re.compile(r"[A-Za-z0-9.\-_\[\]:%]*(?:[/?#]|$)")


def _userinfo(url: str) -> tuple[str, str, str | None, str] | None:
    """``url`` split as (``scheme://``, user, password or None, the rest after ``@``), or None
    without a user part. Split on the raw text, not :func:`urllib.parse.urlsplit`: a password
    written with an unencoded ``#``, ``/``, ``?`` or ``@`` must still be found (the user part ends
    at the last ``@`` that is followed by a host)."""
    m = re.match(r"^\s*[A-Za-z][A-Za-z0-9+.\-]*://", url)
    if not m:
        return None
    head, body = url[:m.end()], url[m.end():]
    cut = next((i for i in range(len(body) - 1, -1, -1) if body[i] == "@" and _HOST.match(body, i + 1)), -1)
    if cut < 0:
        return None
    user = body[:cut]
    name, sep, password = user.partition(":")
    return head, name, (password if sep else None), body[cut + 1:]


def redact(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` query parameter) replaced by
    ``***``; anything that is not a URL is returned unchanged."""
    ui = _userinfo(url)
    text = url if ui is None or ui[2] is None else f"{ui[0]}{ui[1]}:***@{ui[3]}"
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparseable URL>"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in pairs):
            query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*")
            return f"{parts.scheme}://{parts.netloc}{parts.path}?{query}" + (f"#{parts.fragment}" if parts.fragment else "")
    return text


_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s:/@'\"]*:)([^\s'\"]+?)(@)(?=[A-Za-z0-9.\-_\[\]:%]*(?:[/?#\s'\"]|$))",
                       re.IGNORECASE)
_PASSWORD_PARAM = re.compile(r"([?&;\s]password=)([^&\s'\"]+)", re.IGNORECASE)


def redact_text(text: str, urls: Iterable[str] = ()) -> str:
    """``text`` (a message, a traceback, a log record) safe to print or record: every URL in it
    with its password replaced by ``***`` (:func:`redact`), and the passwords of ``urls`` (the
    run's own URLs, as written and decoded) removed wherever else they appear."""
    for url in urls:
        if url in text:
            text = text.replace(url, redact(url))
        for s in secrets_of(url):
            text = text.replace(s, "***")
    text = _USERINFO.sub(r"\1***\3", text)
    return _PASSWORD_PARAM.sub(r"\1***", text)


def secrets_of(url: str) -> list[str]:
    """The password as written in ``url`` and decoded (to scrub from driver messages)."""
    ui = _userinfo(url)
    out: list[str] = [ui[2]] if ui is not None and ui[2] else []
    try:
        query = urlsplit(redact(url) if out else url).query
    except ValueError:
        query = ""
    out += [v for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() == "password"]
    out += [unquote(s) for s in out]
    return sorted({s for s in out if s and s != "***"}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """A driver message made safe to show on one line (:func:`redact_text` with ``url``)."""
    return " ".join(redact_text(text, [url]).split())


# ----------------------------------------------------------------------------- names

def split_name(rel: str) -> list[tuple[str, bool]]:
    """``schema.table`` → [(part, quoted)]; ``"a.b"`` is one quoted part (``""`` escapes ``"``)."""
    parts: list[tuple[str, bool]] = []
    i, n = 0, len(rel)
    while i < n:
        if rel[i] == '"':
            j, buf = i + 1, []
            while j < n:
                if rel[j] == '"':
                    if j + 1 < n and rel[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    break
                buf.append(rel[j])
                j += 1
            if j >= n:
                raise UsageError(f"relation name {rel!r}: unterminated quote")
            parts.append(("".join(buf), True))
            i = j + 1
        else:
            j = rel.find(".", i)
            j = n if j < 0 else j
            parts.append((rel[i:j].strip(), False))
            i = j
        if i < n:
            if rel[i] != ".":
                raise UsageError(f"relation name {rel!r}: expected '.' after a quoted part")
            i += 1
    if not parts or len(parts) > 2 or any(not p for p, _ in parts):
        raise UsageError(f"relation name {rel!r}: expected `table` or `schema.table`")
    return parts


def quote_ident(name: str) -> str:
    """A quoted SQL identifier (exact spelling)."""
    return '"' + name.replace('"', '""') + '"'


def candidates(rel: str) -> list[str]:
    """Quoted spellings of ``rel`` to try: exact, then unquoted parts folded to lower case (what
    PostgreSQL does with an unquoted name)."""
    parts = split_name(rel)
    exact = ".".join(quote_ident(p) for p, _ in parts)
    folded = ".".join(quote_ident(p if quoted else p.lower()) for p, quoted in parts)
    return [exact] if folded == exact else [exact, folded]


# ----------------------------------------------------------------------------- drivers

def pg_connect(url: str, *, autocommit: bool) -> Any:
    try:
        import adbc_driver_postgresql.dbapi as pg
    except ImportError:
        raise UsageError(f"reading or writing postgresql:// URLs needs the PostgreSQL driver "
                         f"(adbc-driver-postgresql): {DB_EXTRA}") from None
    uri = "postgresql://" + url.split("://", 1)[1]
    try:
        return pg.connect(uri, autocommit=autocommit)
    except Exception as e:  # adbc_driver_manager.Error: unreachable, bad password, unknown database
        msg = scrub(str(e), url)
        msg = re.sub(r"^\w+: \[libpq\] ", "", msg)
        raise Unreachable(f"cannot connect to {redact(url)}: {msg}") from None


def sqlite_path(url: str) -> str:
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        raise UsageError(f"SQLite URL {url!r}: expected sqlite:///relative/path.db or sqlite:////absolute/path.db")
    path = rest[1:].split("?", 1)[0]
    if not path:
        raise UsageError(f"SQLite URL {url!r} names no file")
    return unquote(path)


class Unreachable(Exception):
    """The database could not be opened (message already redacted)."""


def refuse_mysql(url: str) -> None:
    raise UsageError(f"{redact(url)}: MySQL is not supported in this version (no MySQL server is tested); "
                     "export the tables to CSV or Parquet, or copy them into PostgreSQL or SQLite")
