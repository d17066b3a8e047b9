"""Storage URLs: checked before any work, shown without credentials, failures made clear.

A search's ``storage`` is an SQLAlchemy database URL (``sqlite:///study.db``,
``postgresql://user:password@host/db``) or ``journal:PATH``.  :func:`check_storage`
refuses what cannot work before a trial runs; :func:`mask_password` is the one way a URL
is shown (results, messages); :func:`storage_errors` turns the database driver's and
Optuna's errors on opening a study into one :class:`StorageError` that names the storage
(masked) and the likely fix.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

__all__ = [
    "StorageError",
    "StorageFailure",
    "check_storage",
    "check_study_name",
    "from_storage",
    "mask_password",
    "storage_cause",
    "storage_errors",
    "storage_failed",
]

# SQLAlchemy's own dialects (a "+driver" may follow); "postgres" is our alias
DATABASES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
SECRET_KEYS = {"password", "passwd", "pwd", "pass", "sslpassword", "secret", "token"}
SQLITE_MAGIC = b"SQLite format 3\x00"
STORAGE_HELP = (
    "use a database URL (sqlite:///study.db, postgresql://user:password@host/db) "
    "or journal:PATH (a local journal file)"
)


class StorageError(ValueError):
    """A storage cannot be opened or used; the message names it (masked) and the fix."""


def _split(url: str) -> tuple[str, str, str, str]:
    """``scheme://auth@rest?query`` -> (scheme, auth, rest, query)."""
    scheme, _, after = url.partition("://")
    base, _, query = after.partition("?")
    auth, _, rest = base.rpartition("@")  # rpartition: an unescaped @ in a password
    return scheme, auth, rest, query


def mask_password(url: str | None) -> str | None:
    """``url`` with every credential replaced by ``***``: the password after ``user:``
    and the value of ``password=`` (and similar keys) in the query string."""
    if not isinstance(url, str) or "://" not in url:
        return url
    scheme, auth, rest, query = _split(url)
    if auth:
        user, colon, _ = auth.partition(":")
        rest = f"{user}{':***' if colon else ''}@{rest}"
    if query:
        parts = []
        for item in query.split("&"):
            key, eq, _ = item.partition("=")
            parts.append(f"{key}=***" if eq and key.lower() in SECRET_KEYS else item)
        rest = f"{rest}?{'&'.join(parts)}"
    return f"{scheme}://{rest}"


def _secrets(url: str) -> list[str]:
    if "://" not in url:
        return []
    _, auth, _, query = _split(url)
    found = [auth.partition(":")[2]] if ":" in auth else []
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        if eq and key.lower() in SECRET_KEYS:
            found.append(value)
    found = [s for s in found if s]
    return sorted({*found, *map(unquote, found)}, key=len, reverse=True)


def scrub(text: str, url: str | None) -> str:
    """``text`` (a driver's message) with the URL masked and every secret of it removed."""
    if not url:
        return text
    text = text.replace(url, mask_password(url) or "")
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def check_storage(url: str | None) -> None:
    """Refuse a storage that cannot work, before any work: the form, the database kind,
    the URL's syntax, and an existing file that is not an SQLite database or a journal."""
    if url is None:
        return
    if not isinstance(url, str) or not (
        (url.startswith("journal:") and len(url) > len("journal:")) or "://" in url
    ):
        raise ValueError(f"storage {mask_password(url)!r}: {STORAGE_HELP}")
    if url.startswith("journal:"):
        _check_journal(url[len("journal:") :])
        return
    masked = mask_password(url)
    scheme = url.partition("://")[0]
    if scheme.partition("+")[0].lower() not in DATABASES:
        raise StorageError(
            f"storage {masked!r}: {scheme!r} is not a database this search can use ("
            f"{', '.join(DATABASES)}); {STORAGE_HELP}"
        )
    _check_url_syntax(url)
    if scheme.lower().startswith("sqlite"):
        _check_sqlite(url, masked)


STUDY_NAME_MAX = 512  # Optuna's database tables keep names of at most 512 characters


def check_study_name(name: Any, url: str | None) -> None:
    """Refuse a study name a storage cannot keep, before any work (a name too long for a
    database's column failed when the study was created, blamed on the server)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"study_name must be a non-empty string, got {name!r}")
    if url is not None and "://" in url and len(name) > STUDY_NAME_MAX:
        raise StorageError(
            f"study name {name[:20] + '...'!r} is {len(name)} characters long; a database "
            f"storage ({mask_password(url)!r}) keeps names of at most {STUDY_NAME_MAX}: "
            "choose a shorter study name"
        )


def _check_url_syntax(url: str) -> None:
    try:
        from sqlalchemy.engine import make_url
    except ImportError:  # Optuna missing: opening the study says what to install
        return
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a port that is not a number fails here
    except Exception as exc:  # ArgumentError, ValueError
        raise StorageError(
            f"storage {mask_password(url)!r} is not a valid database URL: {scrub(str(exc), url)}"
            f"; {STORAGE_HELP}"
        ) from None


def _check_sqlite(url: str, masked: str | None) -> None:
    path = url.partition("://")[2].partition("?")[0]
    path = path[1:] if path.startswith("/") else path  # sqlite:///rel, sqlite:////abs
    if not path or path == ":memory:":
        return
    if os.path.isdir(path):
        raise StorageError(f"storage {masked!r}: {path} is a directory, not a database file")
    if os.path.exists(path):
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
        if head and head != SQLITE_MAGIC:
            raise StorageError(
                f"storage {masked!r}: {path} is not an SQLite database; give the path of a "
                "study database or of a new file"
            )
    elif not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise StorageError(
            f"storage {masked!r}: the directory of {path} does not exist; create it first"
        )


def _check_journal(path: str) -> None:
    if os.path.isdir(path):
        raise StorageError(f"storage 'journal:{path}': {path} is a directory, not a journal file")
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return  # a new journal
    with open(path, "rb") as f:
        first = f.readline(1 << 16)
    try:
        record = json.loads(first)
    except ValueError:
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise StorageError(
            f"storage 'journal:{path}': {path} is not an Optuna journal (its first line is not a "
            "journal record); give the journal of an earlier search or a new file name"
        )


def _hint(url: str, cause: str = "") -> str:
    if cause.startswith(("DataError", "StringDataRightTruncation")) or "too long" in cause:
        # the server answered: it is running; a value (the study name) does not fit
        return (
            "the database refused a value as too long for its column: is the study name "
            f"longer than {STUDY_NAME_MAX} characters?"
        )
    scheme = url.partition("://")[0].lower()
    if url.startswith("journal:"):
        return "is it the journal of an earlier search, and readable?"
    if scheme.startswith("sqlite"):
        return "is it an SQLite database file that you may write?"
    return (
        "is the database server running and reachable from here, and are the host, port, "
        "user, password and database name right?"
    )


_FOREIGN = ("sqlalchemy", "optuna", "psycopg", "sqlite3", "json", "pymysql", "MySQLdb")


@contextmanager
def storage_errors(url: str | None) -> Iterator[None]:
    """Turn the driver's or Optuna's error on opening ``url`` into a clear StorageError."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        if url is None or not (
            isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in _FOREIGN
        ):
            raise
        cause = storage_cause(exc, url)
        raise StorageError(
            f"cannot open the storage {mask_password(url)!r}: {cause}. {_hint(url, cause)}"
        ) from None


def opens_storage(open_study: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``open_study(cfg)``: its storage errors become :class:`StorageError`."""

    @functools.wraps(open_study)
    def wrapper(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        with storage_errors(cfg.storage):
            return open_study(cfg, *args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------
# a storage that fails mid-search (issue 22 item 18)


class StorageFailure(Exception):
    """A worker process's storage error, as its message (the parent names the storage)."""


def from_storage(exc: BaseException) -> bool:
    """Whether ``exc`` (an Exception) came from the storage: raised by the database driver,
    SQLAlchemy or Optuna, or an OSError raised inside them (a journal file)."""
    if isinstance(exc, StorageFailure):
        return True
    if not isinstance(exc, Exception):
        return False
    if type(exc).__module__.split(".")[0] in _FOREIGN:
        return True
    tb = exc.__traceback__
    while tb is not None:
        if isinstance(exc, OSError) and _module(tb).split(".")[0] in _FOREIGN:
            return True
        tb = tb.tb_next
    return False


def _module(tb: Any) -> str:
    return str(tb.tb_frame.f_globals.get("__name__", ""))


def _failure_hint(url: str) -> str:
    scheme = url.partition("://")[0].lower()
    if url.startswith("journal:"):
        return "is the journal file still there, readable and writable, and the disk not full?"
    if scheme.startswith("sqlite"):
        return (
            "is the database file still there and writable (not removed, replaced or "
            "locked by another program), and the disk not full?"
        )
    return "is the database server still running and reachable from here?"


def storage_cause(exc: BaseException, url: str | None) -> str:
    """``Type: message`` of the error at the bottom of ``exc``'s chain (the driver's),
    without credentials."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        # Optuna wraps the driver's error in a guess ("e.g. exceeding max length"): the
        # driver's own message says what happened
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc).strip()
    detail = scrub(text.splitlines()[0] if text else "", url).rstrip(".")
    return detail if isinstance(exc, StorageFailure) else f"{type(exc).__name__}: {detail}"


def storage_failed(url: str | None, exc: BaseException, finished: int, total: int) -> str:
    """The message for a storage that failed after ``finished`` of ``total`` trials."""
    return (
        f"the storage {mask_password(url)!r} failed during the search, after {finished} of "
        f"{total} trials had finished: {storage_cause(exc, url)}. {_failure_hint(url or '')} "
        "The finished trials are kept (SearchError.trials); once the storage works again, "
        "rerun the same search to resume it"
    )
