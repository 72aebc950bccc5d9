"""Storage on both databases: migrations, seeded regions, constraints, and the whole flow on PostgreSQL."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from models.clock import SHANGHAI, utc_now
from models.tables import ApiToken, Event, Institution, Region
from monitor.adapters.storage import Database
from tests.helpers import World, face


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'm.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    db.migrate()
    yield db
    db.dispose()


def test_migrations_seed_regions_and_are_repeatable(database: Database) -> None:
    database.migrate()  # a second start changes nothing
    with database.session() as s:
        counts = dict(s.execute(select(Region.level, func.count()).group_by(Region.level)).all())
        assert counts == {"province": 1, "prefecture": 16, "county": 129}
        assert s.get(Region, "532901").name == "大理市"
        assert s.get(Region, "532901").parent_code == "532900"


def test_unique_and_foreign_keys_are_enforced(database: Database) -> None:
    with database.session() as s:
        s.add(Institution(name="甲", licence_no="L-1", region_code="530102", blacklisted=False,
                          blacklist_reason="", created_at=utc_now()))
    with pytest.raises(IntegrityError), database.session() as s:
        s.add(Institution(name="乙", licence_no="L-1", region_code="530102", blacklisted=False,
                          blacklist_reason="", created_at=utc_now()))
    with pytest.raises(IntegrityError), database.session() as s:
        s.add(Institution(name="丙", licence_no="L-2", region_code="999999", blacklisted=False,
                          blacklist_reason="", created_at=utc_now()))
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(Institution)) == 1


def test_times_round_trip_as_utc(database: Database) -> None:
    now = utc_now().astimezone(SHANGHAI)  # written in any zone, stored and returned as UTC
    with database.session() as s:
        s.add(Event(kind="verdict", region_code="530102", class_id=1, payload={"名称": "中文"}, created_at=now))
    with database.session() as s:
        row = s.scalar(select(Event))
        assert row.created_at.utcoffset() == timedelta(0)  # read back aware, in UTC, on both databases
        assert abs((row.created_at - now).total_seconds()) < 0.001
        assert row.payload == {"名称": "中文"}


def test_sqlite_runs_in_wal_mode_and_a_commit_survives_a_power_cut(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    with db.session() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
        # FULL: each commit fsyncs the WAL, so an acknowledged upload's row is as durable as its photo (NORMAL may
        # lose the last commits on a power cut)
        assert s.execute(text("PRAGMA synchronous")).scalar() == 2


def test_whole_flow_on_postgresql(client_factory: Callable[..., TestClient], postgres_url: str) -> None:
    client = client_factory(database_url=postgres_url)
    assert client.app.state.db.engine.dialect.name == "postgresql"
    world = World.build(client)
    assert world.checkin(face("people/obama/obama2.jpg")).json()["status"] == "passed"
    body = world.checkin(face("people/kit_harington/john2.jpeg")).json()
    assert [r["code"] for r in body["reasons"]] == ["FACE_MISMATCH"]
    with client.app.state.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) >= 4
        assert s.scalar(select(func.count()).select_from(Event).where(Event.kind == "anomaly")) == 1
    from sqlalchemy import update

    from models.tables import Verification
    from monitor.services.audit import verify_rows  # the rows held to the chain on PostgreSQL too (REAL, timestamptz)

    checked, findings = verify_rows(client.app.state.db)
    assert checked > 20 and findings == [], findings
    with client.app.state.db.session() as s:
        s.execute(update(Verification).where(Verification.id == 1).values(passed=False))
    assert [(f.table, f.kind, f.columns) for f in verify_rows(client.app.state.db)[1]] == [
        ("verifications", "changed", ("passed",))]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_upgrade_ends_the_extra_open_sessions_before_holding_one_open_per_trainee(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Migration 0039 adds the unique index for one open online session per trainee. A database from before it may
    hold two open sessions of one trainee (the race it closes): all but the newest are ended first, at their last
    heartbeat (or their start), so the upgrade runs, and the newest stays open."""
    from alembic import command
    from alembic.config import Config

    from monitor.adapters.storage import _MIGRATIONS

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/u.sqlite3"
    db = Database(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0038")
    t0 = utc_now() - timedelta(hours=2)
    with db.engine.begin() as conn:  # the rows alone (their class, trainee and photos are beside the point)
        conn.exec_driver_sql("PRAGMA foreign_keys = OFF" if backend == "sqlite"
                             else "SET session_replication_role = replica")
        for sid, trainee, minutes in ((1, 7, 0), (2, 7, 30), (3, 7, 60), (4, 8, 0)):
            conn.execute(text("INSERT INTO online_sessions (id, class_id, trainee_id, institution_id, started_at) "
                              "VALUES (:id, 1, :t, 1, :at)"), {"id": sid, "t": trainee,
                                                               "at": t0 + timedelta(minutes=minutes)})
        conn.execute(text("INSERT INTO online_heartbeats (id, session_id, captured_at, received_at, photo_sha256, "
                          "status) VALUES (1, 1, :at, :at, :sha, 'passed')"),
                     {"at": t0 + timedelta(minutes=12), "sha": "a" * 64})
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with db.engine.connect() as conn:
        ended = dict(conn.execute(text("SELECT id, ended_at FROM online_sessions ORDER BY id")).all())
    db.dispose()
    assert ended[3] is None and ended[4] is None  # the newest of trainee 7, and trainee 8's only one

    def minute(value: object) -> str:  # SQLite keeps text, PostgreSQL a time with its zone: both to a UTC minute
        if isinstance(value, datetime):
            value = value.astimezone(UTC) if value.tzinfo else value
            return value.strftime("%Y-%m-%d %H:%M")
        return str(value).replace("T", " ")[:16]

    assert minute(ended[1]) == minute(t0 + timedelta(minutes=12))  # ended at its last heartbeat
    assert minute(ended[2]) == minute(t0 + timedelta(minutes=30))  # no heartbeat: at its start
