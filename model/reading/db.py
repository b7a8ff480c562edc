"""The reading store's database: one interface over SQLite (one workstation) and PostgreSQL (several), its schema
migrations, and the database's own refusal to update or delete anything.

A database is named by a URL:

* ``sqlite:///ABSOLUTE/PATH.sqlite``: a file on this workstation, in WAL mode with ``synchronous=FULL`` (a
  committed read survives a power cut); writes take the file's write lock at once (``BEGIN IMMEDIATE``), so two
  processes committing the same case are serialised, never refused. Not for a network share: SQLite's locking is
  unreliable on NFS and SMB.
* ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME``: a site's server, through psycopg 3, for several
  workstations. A commit locks its case's row (``SELECT ... FOR UPDATE``), so two readers committing one case at
  the same moment are serialised and both succeed.

The schema is created by the first connection and migrated by numbered steps (``schema_migrations``); a
database from a newer version of B-Cir Review is refused rather than read half-understood. Every table that
holds what readers did refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL) in the database itself, with
triggers, so no client, old, new or hand-typed, can rewrite a read: a change is a new row that points to the
one it replaces.

Every failure reaches the caller as :class:`model.errors.ReadStoreError` with one line that names the database
without its password: a server that cannot be reached or that dropped the connection, a read-only or damaged
file, a newer schema.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from model.errors import ReadStoreError

DB_ENV = "BCIR_READS_DB"
SCHEMA_VERSION = 1
APPEND_ONLY = ("readers", "cases", "events", "reads", "arbitrations", "case_status", "truth", "ai_results", "settings")
CONNECT_TIMEOUT_S = 5
BUSY_TIMEOUT_MS = 30_000  # SQLite: how long a writer waits for another's transaction before giving up

_SCHEMA_1 = """
CREATE TABLE readers (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    login TEXT,
    added_at TEXT NOT NULL
);
CREATE TABLE cases (
    case_id TEXT PRIMARY KEY,
    images TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE events (
    seq {serial},
    case_id TEXT REFERENCES cases(case_id),
    reader TEXT REFERENCES readers(code),
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE reads (
    seq {serial},
    read_id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    reader TEXT NOT NULL REFERENCES readers(code),
    role TEXT NOT NULL,
    replaces TEXT UNIQUE REFERENCES reads(read_id),
    opened_at TEXT NOT NULL,
    committed_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX reads_by_case ON reads(case_id, seq);
CREATE INDEX reads_by_reader ON reads(reader);
CREATE TABLE arbitrations (
    seq {serial},
    arbitration_id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    arbiter TEXT NOT NULL REFERENCES readers(code),
    replaces TEXT UNIQUE REFERENCES arbitrations(arbitration_id),
    decided_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX arbitrations_by_case ON arbitrations(case_id, seq);
CREATE TABLE case_status (
    seq {serial},
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    state TEXT NOT NULL,
    since TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX case_status_by_case ON case_status(case_id, seq);
CREATE TABLE truth (
    seq {serial},
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    side TEXT NOT NULL,
    cancer INTEGER NOT NULL,
    source TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE ai_results (
    seq {serial},
    case_id TEXT NOT NULL REFERENCES cases(case_id),
    side TEXT NOT NULL,
    model_version TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE settings (
    seq {serial},
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    set_by TEXT NOT NULL REFERENCES readers(code),
    set_at TEXT NOT NULL
);
"""

_SERIAL = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgresql": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"}


def _append_only_sql(dialect: str, table: str) -> list[str]:
    """The triggers that make ``table`` append-only in the database itself."""
    if dialect == "sqlite":
        return [f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} BEGIN "
                f"SELECT RAISE(ABORT, 'the reading store is append-only: {op} on {table} refused'); END"
                for op in ("UPDATE", "DELETE")]
    return [f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION bcir_append_only()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION bcir_append_only()"]


def _migration_1(dialect: str) -> list[str]:
    statements = [s.strip() for s in _SCHEMA_1.format(serial=_SERIAL[dialect]).split(";") if s.strip()]
    if dialect == "postgresql":
        statements.append(
            "CREATE FUNCTION bcir_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'the reading store is append-only: % on % refused', TG_OP, TG_TABLE_NAME; END $$")
    for table in APPEND_ONLY:
        statements += _append_only_sql(dialect, table)
    return statements


MIGRATIONS = {1: _migration_1}  # version -> statements for a dialect; a new version appends a step, never edits one


def default_url() -> str:
    """``$BCIR_READS_DB``, else ``reads.sqlite`` in this user's data folder (one workstation)."""
    from model.fileio import user_data_dir

    return os.environ.get(DB_ENV, "").strip() or f"sqlite:///{user_data_dir() / 'reads.sqlite'}"


def display_url(url: str) -> str:
    """The URL as a line may show it: never the password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


class Database:
    """One connection to the reading database. :meth:`write` and :meth:`read` are transactions; SQL is written
    with ``?`` placeholders for both dialects."""

    def __init__(self, url: str):
        self.url = url
        scheme = urlsplit(url).scheme.lower()
        if scheme == "sqlite":
            self.dialect = "sqlite"
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
        else:
            raise ReadStoreError(f"reading database {display_url(url)!r}: use sqlite:///PATH or "
                                 "postgresql://USER@HOST:PORT/DBNAME")
        self.name = display_url(url)
        self._conn = None
        self._connect()
        self._migrate()

    # -- connecting -------------------------------------------------------------------------------------------

    def _sqlite_path(self) -> Path:
        path = urlsplit(self.url).path
        if path.startswith("//"):
            path = path[1:]  # sqlite:////abs/path, as SQLAlchemy writes it, and sqlite:///abs/path alike
        if not path or path == "/":
            raise ReadStoreError(f"reading database {self.name!r} names no file: use sqlite:///ABSOLUTE/PATH")
        return Path(path)

    def _connect(self) -> None:
        if self.dialect == "sqlite":
            path = self._sqlite_path()
            if not path.parent.is_dir():
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ReadStoreError(f"reading database {path}: its folder cannot be made ({_one_line(exc)})") from None
            try:
                conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                       check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA foreign_keys = ON")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                conn.execute("PRAGMA synchronous = FULL")
            except sqlite3.Error as exc:
                raise self._sqlite_error(exc) from None
            if str(mode).lower() != "wal" and os.access(path, os.W_OK):
                conn.close()
                raise ReadStoreError(f"reading database {path}: WAL mode cannot be used here (journal {mode}); "
                                     "a network share is not a place for it: use a PostgreSQL server")
            self._conn = conn
            return
        import psycopg

        try:
            self._conn = psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=False)
        except psycopg.Error as exc:
            raise ReadStoreError(f"the reading database {self.name} cannot be reached: {_one_line(exc)}") from None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    # -- errors ----------------------------------------------------------------------------------------------

    def _sqlite_error(self, exc: sqlite3.Error) -> ReadStoreError:
        text = _one_line(exc)
        where = self._sqlite_path()
        if "readonly" in text.replace(" ", "").lower() or "read-only" in text:
            return ReadStoreError(f"the reading database {where} is read-only: nothing can be committed to it")
        if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            return ReadStoreError(f"the reading database {where} is damaged ({text}): restore it from a backup")
        if "locked" in text or "busy" in text:
            return ReadStoreError(f"the reading database {where} stayed locked by another workstation process "
                                  f"for {BUSY_TIMEOUT_MS // 1000} s: try again")
        if "append-only" in text:
            return ReadStoreError(f"the reading database {where} refused a change: {text}")
        return ReadStoreError(f"the reading database {where} failed: {text}")

    def _pg_error(self, exc: BaseException) -> ReadStoreError:
        import psycopg

        diag = getattr(exc, "diag", None)
        text = _one_line(getattr(diag, "message_primary", None) or exc)  # without the server's CONTEXT lines
        if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
            return ReadStoreError(f"the reading database {self.name} is read-only: nothing can be committed to it")
        if isinstance(exc, psycopg.OperationalError) or (self._conn is not None and self._conn.closed):
            return ReadStoreError(f"the connection to the reading database {self.name} was lost ({text}): "
                                  "nothing of this step was saved")
        if "append-only" in text:
            return ReadStoreError(f"the reading database {self.name} refused a change: {text}")
        return ReadStoreError(f"the reading database {self.name} failed: {text}")

    # -- transactions ----------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator["Tx"]:
        """One transaction: all of it is committed, or none of it (an error rolls it back and becomes a
        ReadStoreError; a ReadStoreError raised inside, such as a refusal, rolls back and passes on)."""
        if self._conn is None or (self.dialect == "postgresql" and self._conn.closed):
            self._conn = None
            self._connect()  # a server that came back: the next step reconnects
        conn = self._conn
        if self.dialect == "sqlite":
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise self._sqlite_error(exc) from None
            try:
                yield Tx(self, conn)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback_quietly(conn)
                raise self._sqlite_error(exc) from None
            except BaseException:
                _rollback_quietly(conn)
                raise
            return
        import psycopg

        try:
            conn.read_only = None if write else True  # a write leaves a read-only server or database to say so
            with conn.transaction():
                yield Tx(self, conn)
        except psycopg.Error as exc:
            if conn.closed:
                self._conn = None
            raise self._pg_error(exc) from None

    def _migrate(self) -> None:
        with self.transaction() as tx:
            if self.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(4242013)")  # two first starts at once: one creates
            tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            have = tx.one("SELECT MAX(version) FROM schema_migrations")[0] or 0
            if have > SCHEMA_VERSION:
                raise ReadStoreError(f"the reading database {self.name} has schema version {have}, newer than this "
                                     f"B-Cir Review knows ({SCHEMA_VERSION}): update B-Cir Review on this workstation")
            for version in range(have + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version](self.dialect):
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (version, _now()))
            if self.dialect == "sqlite":
                missing = [t for t in APPEND_ONLY if not tx.one(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (t,))[0]]
            else:
                missing = [t for t in APPEND_ONLY if not tx.one(
                    "SELECT COUNT(*) FROM pg_trigger WHERE tgname = ?", (f"{t}_append_only",))[0]]
            if missing:
                raise ReadStoreError(f"the reading database {self.name} lost the guard that keeps "
                                     f"{', '.join(missing)} append-only: it was changed outside B-Cir Review")


def _rollback_quietly(conn) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # no transaction left to roll back (SQLite ended it itself)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


_PLACEHOLDER = re.compile(r"\?")


class Tx:
    """The statements of one transaction."""

    def __init__(self, db: Database, conn):
        self.db, self._conn = db, conn

    def execute(self, sql: str, params: Sequence = ()) -> list[tuple]:
        if not params:  # no placeholders: PostgreSQL's own % (RAISE's format) stays as it is
            cursor = self._conn.execute(sql)
        else:
            if self.db.dialect == "postgresql":
                sql = _PLACEHOLDER.sub("%s", sql)
            cursor = self._conn.execute(sql, tuple(params))
        return list(cursor.fetchall()) if cursor.description else []

    def one(self, sql: str, params: Sequence = ()) -> tuple | None:
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def lock_case(self, case_id: str) -> bool:
        """Serialise the commits on one case (PostgreSQL: its row; SQLite: BEGIN IMMEDIATE did it). False when the
        case is unknown."""
        if self.db.dialect == "postgresql":
            return self.one("SELECT case_id FROM cases WHERE case_id = ? FOR UPDATE", (case_id,)) is not None
        return self.one("SELECT case_id FROM cases WHERE case_id = ?", (case_id,)) is not None


def now() -> str:
    """The store's clock: ISO 8601 UTC with microseconds."""
    return _now()


__all__ = ["APPEND_ONLY", "DB_ENV", "Database", "SCHEMA_VERSION", "Tx", "default_url", "display_url", "now"]
