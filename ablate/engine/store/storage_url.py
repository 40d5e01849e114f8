"""Storage URLs as people and records see them: a database password given in a
URL never reaches a terminal, a job log, a report folder or a stored record.

Messages show the URL as SQLAlchemy renders it with ``hide_password=True``
(``postgresql://ablate:***@db-host/ablate``); the study's record keeps it with
no password at all, the form that works with libpq's own ``PGPASSWORD`` and
``~/.pgpass``. ``ABLATE_STORAGE`` gives the URL to `ablate run`, `worker` and
`report` without putting it on a command line, where `ps` shows it to every
user of the machine.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, unquote

ENV = "ABLATE_STORAGE"
HIDDEN = "***"
# scheme://user:password@rest, the password up to the last "@": one typed with a bare "@"
# (not %40) is hidden whole, where SQLAlchemy would read its tail as the host and show it.
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][\w+.-]*://[^:/@]*):(?P<password>.*)@(?P<rest>[^@]*)$", re.S)


def from_env(given: str | None) -> str | None:
    """``--storage``'s value, else ``ABLATE_STORAGE``'s (unset or blank: None)."""
    if given:
        return given
    return os.environ.get(ENV, "").strip() or None


def password(url: str) -> str | None:
    """The password a URL holds, decoded (None where it holds none)."""
    match = _USERINFO.match(url)
    return unquote(match["password"]) if match and match["password"] else None


def for_people(url: str) -> str:
    """The URL to print: its password as ``***``, as SQLAlchemy's
    ``render_as_string(hide_password=True)`` writes it; other URLs unchanged."""
    match = _USERINFO.match(url)
    return f"{match['head']}:{HIDDEN}@{match['rest']}" if match else url


def without_password(url: str) -> str:
    """The URL to store: the same database and user, no password (libpq then
    reads ``PGPASSWORD`` or ``~/.pgpass``)."""
    match = _USERINFO.match(url)
    return f"{match['head']}@{match['rest']}" if match else url


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's error, say) with the URL's password hidden wherever it appears."""
    secret = password(url)
    if not secret:
        return text
    for form in sorted({secret, quote(secret, safe=""), url}, key=len, reverse=True):
        text = text.replace(form, for_people(url) if form == url else HIDDEN)
    return text


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite storage URL, else None; read as SQLAlchemy reads it (a query
    after "?", %-escapes decoded), so a URL it rendered names the same file."""
    if not url.startswith("sqlite:///"):
        return None
    return Path(unquote(url[len("sqlite:///") :].split("?", 1)[0]))


def sqlite_url(path: Path) -> str:
    """The storage URL of an SQLite file anywhere: a folder named with "%" or "?" (which a
    URL would read as an escape or a query) is escaped; the rest is kept as people typed it."""
    return "sqlite:///" + str(path.resolve()).replace("%", "%25").replace("?", "%3F")
