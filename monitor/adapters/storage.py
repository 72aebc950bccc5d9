"""Database engine and sessions: SQLite (WAL) by default, PostgreSQL when configured; migrations."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from models.audit import record_flush, seal_audit, set_writer_key
from models.tables import Event

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


HOOK_QUERIES = {  # (kind, the query of its (name, table) pairs) per dialect: see `Database.hooks`
    "sqlite": [("trigger", "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")],
    "postgresql": [
        ("trigger", "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace ORDER BY t.tgname"),
        ("rule", "SELECT rulename, tablename FROM pg_rules WHERE schemaname = current_schema() ORDER BY rulename"),
        ("policy", "SELECT policyname, tablename FROM pg_policies WHERE schemaname = current_schema() "
                   "ORDER BY policyname"),
    ],
}


def create_db_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: a failed statement's message must not carry its values (ID numbers, names) into logs.
        # A connection per worker thread (40 by default): re-opening them, pragmas and all, cost more than using them.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True,
                               pool_size=20, max_overflow=40)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # FULL: a commit fsyncs the WAL, so an acknowledged upload's row survives a power cut as its evidence
            # file does (NORMAL may lose the last commits); measured free of cost at 110-117 uploads/s
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, hide_parameters=True)


def begin_snapshot(conn: Connection) -> None:
    """Have every read of `conn`'s transaction see one snapshot. PostgreSQL does so at REPEATABLE READ; SQLite's
    driver opens no transaction for a SELECT, so each statement that runs to its end reads the database as it is
    then (a row committed with its audit entry between two reads was seen without it): `BEGIN` makes the first
    read's snapshot the transaction's. No-op once the transaction has begun."""
    _begin_on_sqlite(conn, "BEGIN")


def _begin_on_sqlite(conn: Connection, statement: str) -> None:
    """Begin `conn`'s transaction with `statement` now, on SQLite, unless it has begun."""
    if conn.dialect.name != "sqlite":
        return
    raw = conn.connection.dbapi_connection
    if raw is not None and not raw.in_transaction:
        conn.exec_driver_sql(statement)


def begin_write(target: Session | Connection) -> None:
    """Take the database's write lock now, before the read a decision rests on. On SQLite, `SELECT … FOR UPDATE`
    does nothing and a transaction starts deferred (reads take no lock), so two requests could both read "open" and
    both accept: the transaction starts with `BEGIN IMMEDIATE` instead, and the other writer (in any process) waits
    for it (busy timeout). On PostgreSQL nothing: the row locks (`with_for_update`) do it. No-op once the
    transaction has begun (it then already holds what it wrote)."""
    _begin_on_sqlite(target.connection() if isinstance(target, Session) else target, "BEGIN IMMEDIATE")


def migrate_database(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (creates the regions on first start)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


EVENTS_WRITTEN = "events_written"  # a session's info flag: its commit wakes the live feed


def note_events_written(session: Session) -> None:
    """The session wrote live events (however inserted): once it commits, the live feed is told at once."""
    session.info[EVENTS_WRITTEN] = True


class Database:
    """The engine plus a session factory; `session()` commits on success and rolls back on error.

    `on_events_committed` callbacks run after any commit that wrote live events (the feed wakes on them).
    """

    def __init__(self, url: str, audit_key: tuple[str, bytes] | None = None,
                 audit_keyring: Callable[[], Mapping[str, bytes]] | None = None) -> None:
        self.url = url
        self._load_keyring = audit_keyring  # every audit key the center has (read again when an entry names a new one)
        self._keyring: dict[str, bytes] | None = None
        self.engine = create_db_engine(url)
        self.factory = sessionmaker(self.engine, expire_on_commit=False)
        self.on_events_committed: list[Callable[[], None]] = []
        self.audit_key = audit_key
        self._sealed_head: tuple[int, str] | None = None  # the head this process's sealer left (a rollback shows)
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext())

        event.listen(self.factory, "after_flush", record_flush)  # every audited change joins the chain

        @event.listens_for(self.factory, "after_flush")
        def _note_events(session: Session, _context: object) -> None:
            if any(isinstance(obj, Event) for obj in session.new):
                note_events_written(session)

        @event.listens_for(self.factory, "after_commit")
        def _announce_events(session: Session) -> None:
            if session.info.pop(EVENTS_WRITTEN, False):
                for callback in self.on_events_committed:
                    try:
                        callback()
                    except Exception:  # noqa: BLE001 - the feed's fallback poll still finds the events
                        log.warning("events-committed callback failed", exc_info=True)

        @event.listens_for(self.factory, "after_rollback")
        def _forget_events(session: Session) -> None:
            session.info.pop(EVENTS_WRITTEN, None)

    @property
    def audit_key(self) -> tuple[str, bytes] | None:
        """The audit HMAC key (id, bytes) this process signs entries with when writing them and seals them with;
        set where the process is composed, from the key file outside the database."""
        return self._audit_key

    @audit_key.setter
    def audit_key(self, key: tuple[str, bytes] | None) -> None:
        self._audit_key = key
        set_writer_key(self.engine, key)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A Core connection in a transaction (committed on success): for hot paths that need no ORM."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A Core connection for a short write transaction. SQLite has one writer at a time: writers of this
        process queue on a lock here instead of in SQLite's busy handler, which sleeps up to 100 ms between
        tries; PostgreSQL needs no such lock."""
        with self._write_lock, self.engine.begin() as conn:
            begin_write(conn)  # other processes' writers wait for this one, rather than both reading then writing
            yield conn

    def seal_audit(self) -> int:
        """Chain the audit entries committed since the last seal with the audit key (`audit_key`, set where the
        process is composed); returns how many (the worker calls it often)."""
        sealed = 0
        while True:
            with self.writing() as conn:
                batch, self._sealed_head = seal_audit(conn, key=self.audit_key, sealed_before=self._sealed_head,
                                                      keyring=self._keys_named if self._load_keyring else None)
            sealed += batch
            if batch < 5000:
                return sealed

    def audit_keys(self, key_ids: set[str]) -> Mapping[str, bytes]:
        """The audit keys to check a seal or signature naming `key_ids` with: the center's keyring (read again for a
        key id new to this process), or this process's own key when it was given no keyring."""
        if self._load_keyring is not None:
            return self._keys_named(key_ids)
        return {self.audit_key[0]: self.audit_key[1]} if self.audit_key is not None else {}

    def _keys_named(self, key_ids: set[str]) -> Mapping[str, bytes]:
        """The center's audit keys, the key file read again when an entry names a key this process has not seen
        (a rotation by `monitor audit rotate-key` while it runs): only a key id the file does not hold either is
        one the center never had."""
        assert self._load_keyring is not None
        if self._keyring is None or not key_ids <= self._keyring.keys():
            self._keyring = dict(self._load_keyring())
        return self._keyring

    def hooks(self) -> list[tuple[str, str, str]]:
        """(kind, table, name) of everything in the database that runs on its own when rows are written or read:
        triggers, and on PostgreSQL rewrite rules and row-level security policies. The product defines none."""
        with self.engine.connect() as conn:
            return [(kind, str(table), str(name)) for kind, sql in HOOK_QUERIES[self.engine.dialect.name]
                    for name, table in conn.exec_driver_sql(sql)]

    def migrate(self) -> None:
        migrate_database(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
