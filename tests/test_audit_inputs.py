"""What decisions read is held to the chain too (an administrator at the database rewriting history): a rule's
fired key slipped in to keep it from firing, a stored photo's replay hash deleted so a re-sent selfie passes, a
county moved to another prefecture, an institution's employment figures, a register extract's rows, and the public
notice served to everyone. Each is named by the audit check (or, for the notice, refused and built again)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from models.clock import utc_now
from models.tables import (
    AuditEntry,
    InstitutionEmployment,
    Occupation,
    PhotoHash,
    PublicNotice,
    Region,
    RegisterImport,
    RegisterInsurance,
    RuleSubject,
)
from monitor.adapters.storage import _MIGRATIONS, Database
from monitor.cli import app as cli
from monitor.settings import Settings
from tests.helpers import FACES_DIR, World, auth, face
from tests.test_registers import IDS, insurance_xlsx


def verify(world: World) -> dict:
    world.client.app.state.db.seal_audit()
    r = world.client.get("/api/v1/audit/verify", headers=auth(world.admin))
    assert r.status_code == 200, r.text
    return r.json()


def findings(world: World) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {(f["table"], f["key"], f["kind"], tuple(f["columns"])) for f in verify(world)["row_findings"]}


def test_inputs_of_decisions_rewritten_at_the_database_are_named(world: World) -> None:
    """A NO_SHOW key inserted before the rule judged the trainee (the absence would never be raised), the replay
    hash of a stored selfie deleted (the same photo sent again would pass as new), 五华区 moved under 红河州 (its
    classes would leave 昆明市's inspectors and counts), an institution's employment shortfall zeroed (its classes
    would weigh less in the draw): four rows, each named; the flows of the world verify clean before."""
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 201 and r.json()["status"] == "passed"
    db = world.client.app.state.db
    with db.session() as s:  # the employment figures as a cross-check leaves them (through the product)
        s.add(InstitutionEmployment(institution_id=world.ids["institution"], insurance_period="2026-01", completed=40,
                                    employed=10, median_rate=0.6, shortfall=0.58, computed_at=utc_now()))
    before = verify(world)
    assert before["intact"] and before["rows_intact"], before["row_findings"]
    assert before["rows_checked"] > 150  # the regions (recorded by the migration) among them
    with db.engine.begin() as conn:  # Core statements: no entry, as with a database client
        key = f"NO_SHOW:{world.class_id}:1:2026-12-06:{world.biden_id}"
        conn.execute(RuleSubject.__table__.insert().values(key=key, created_at=utc_now()))
        hash_id = conn.scalar(select(PhotoHash.id).where(PhotoHash.subject_id == r.json()["id"]))
        conn.execute(delete(PhotoHash).where(PhotoHash.id == hash_id))
        conn.execute(update(Region).where(Region.code == "530102").values(parent_code="532500"))
        conn.execute(update(InstitutionEmployment).where(
            InstitutionEmployment.institution_id == world.ids["institution"]).values(shortfall=0.0))
        subject = conn.scalar(select(RuleSubject.id).where(RuleSubject.key == key))
    assert findings(world) == {
        ("rule_subjects", str(subject), "unrecorded", ()),
        ("photo_hashes", str(hash_id), "missing", ()),
        ("regions", "530102", "changed", ("parent_code",)),
        ("institution_employment", str(world.ids["institution"]), "changed", ("shortfall",)),
    }


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_register_extracts_rows_rewritten_at_the_database_are_named(
        database: str, request: pytest.FixtureRequest, client_factory: Callable[..., TestClient]) -> None:
    """The register rows are not audited one by one (millions): the import record keeps their digest. An
    insurance row's employer rewritten (a trainee employed elsewhere would look eligible), a row deleted, or one
    inserted: the check names the import; the digest of the rows as staged and as read back agree on both
    databases (the clean extract is not named)."""
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    world = World.build(client_factory(database_url=url) if url else client_factory())
    r = world.client.post("/api/v1/registers/imports", params={"source": "insurance", "period": "2026-01"},
                          files={"file": ("参保.xlsx", insurance_xlsx(IDS[:4]), "application/octet-stream")},
                          headers=auth(world.admin))
    assert r.status_code == 201, r.text
    import_id = r.json()["id"]
    r = world.client.post("/api/v1/registers/commits", json={"import_id": import_id}, headers=auth(world.admin))
    assert r.status_code == 200, r.text
    db = world.client.app.state.db
    with db.session() as s:
        assert s.get(RegisterImport, import_id).rows_sha256  # type: ignore[union-attr]
    clean = verify(world)
    assert clean["rows_intact"], clean["row_findings"]
    with db.engine.begin() as conn:
        first = conn.scalar(select(RegisterInsurance.id).where(RegisterInsurance.import_id == import_id)
                            .order_by(RegisterInsurance.row_number))
        conn.execute(update(RegisterInsurance).where(RegisterInsurance.id == first).values(employer="某某培训学校"))
    expected = {("register_insurance", str(import_id), "extract_changed", ())}
    assert findings(world) == expected
    result = verify(world)
    assert "登记表导入" in result["row_findings"][0]["message"] and not result["intact"]
    with db.engine.begin() as conn:  # put back, then a row deleted: named again
        conn.execute(update(RegisterInsurance).where(RegisterInsurance.id == first).values(
            employer="昆明某某有限公司1"))
    assert verify(world)["rows_intact"]
    with db.engine.begin() as conn:
        conn.execute(delete(RegisterInsurance).where(RegisterInsurance.id == first))
    assert findings(world) == expected


def test_a_public_notice_rewritten_at_the_database_is_not_served(world: World) -> None:
    """The notice is a stored build every API process serves: someone at the database rewrites a class's
    eligible count in it. A process that reads it (here: one with no copy of its own) finds the seal broken,
    builds it again and serves the genuine figures; the chain notes it."""
    from monitor.api.reports import NOTICES

    db = world.client.app.state.db
    genuine = world.client.get("/public/notice.json")
    assert genuine.status_code == 200, genuine.text
    with db.session() as s:
        row = s.get(PublicNotice, 1)
        assert row is not None and row.seal and row.classes
        forged = [{**c, "eligible": 99, "eligible_names": ["假**"] * 99} for c in row.classes]
    with db.engine.begin() as conn:
        conn.execute(update(PublicNotice).where(PublicNotice.id == 1).values(classes=forged))
    assert world.client.get("/public/notice.json").json() == genuine.json()  # this process's own copy
    NOTICES.pop(db, None)  # another process, which holds no copy: reads the stored build
    served = world.client.get("/public/notice.json")
    assert served.status_code == 200
    assert served.json()["classes"] == genuine.json()["classes"] and "假**" not in served.text
    with db.session() as s:
        assert s.scalar(select(AuditEntry.id).where(AuditEntry.action == "public_notices.seal_broken"))
        assert s.get(PublicNotice, 1).classes == genuine.json()["classes"]  # type: ignore[union-attr]


def test_the_first_command_after_an_upgrade_signs_the_migration_it_runs(tmp_path: Path) -> None:
    """The center ran 0034 with its key; the code is upgraded, and the first thing run is `monitor audit verify`,
    which migrates to 0035 (regions recorded in the chain). Reading commands create no key file, but they sign with
    the center's key when there is one: the regions' entries are the center's, and the check is clean (where it
    flagged 147 rows as written behind the system's back). Without a key file none is made."""
    settings = Settings(data_dir=tmp_path / "data", faces_dir=FACES_DIR)
    ring = settings.audit_keyring()
    db = Database(settings.sqlalchemy_url, ring.current)
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0034")
    with db.session() as s:
        s.add(Occupation(code="6-01-01", name="电工"))  # a signed entry: the chain was in use
    db.seal_audit()
    db.dispose()
    result = CliRunner().invoke(cli, ["audit", "verify", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0 and "记录与审计链一致" in result.output, result.output
    db = Database(settings.sqlalchemy_url, ring.current)
    with db.session() as s:
        regions = s.scalars(select(AuditEntry.signature).where(AuditEntry.subject_kind == "regions")).all()
    db.dispose()
    assert len(regions) > 100 and all(sig is not None and sig.startswith(f"{ring.current_id}:") for sig in regions)
    bare = Settings(data_dir=tmp_path / "bare", faces_dir=FACES_DIR)
    bare.data_dir.mkdir()
    Database(bare.sqlalchemy_url).migrate()
    assert CliRunner().invoke(cli, ["token", "list", "--data-dir", str(bare.data_dir)]).exit_code == 0
    assert not bare.audit_keys_path.exists()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_trigger_rule_or_policy_put_in_the_database_is_named(backend: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    """Someone at the database adds a trigger that passes every verdict as it is written (the row and its entry
    would then agree), and on PostgreSQL a rewrite rule and a row-level security policy that hides rows from the
    check: the product defines none, so the audit check names each."""
    from monitor.services.audit import check_audit

    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/h.sqlite3"
    keys = {"k1": b"k" * 32}
    db = Database(url, ("k1", keys["k1"]))
    db.migrate()
    try:
        assert db.hooks() == [] and not [f for f in check_audit(db, keys, []).findings if f.kind == "trigger"]
        with db.engine.begin() as conn:
            if backend == "sqlite":
                conn.exec_driver_sql("CREATE TRIGGER always_pass AFTER INSERT ON verifications BEGIN "
                                     "UPDATE verifications SET passed = 1 WHERE id = NEW.id; END")
            else:
                conn.exec_driver_sql("CREATE FUNCTION always_pass() RETURNS trigger AS $$ BEGIN "
                                     "NEW.passed := true; RETURN NEW; END $$ LANGUAGE plpgsql")
                conn.exec_driver_sql("CREATE TRIGGER always_pass BEFORE INSERT ON verifications "
                                     "FOR EACH ROW EXECUTE FUNCTION always_pass()")
                conn.exec_driver_sql("CREATE RULE keep_alerts AS ON DELETE TO alerts DO INSTEAD NOTHING")
                conn.exec_driver_sql("CREATE POLICY hide_some ON checkins USING (id > 1)")
        result = check_audit(db, keys, [])
        named = [(f.kind, f.table, f.key) for f in result.findings]
        expected = [("trigger", "verifications", "always_pass")] + (
            [("rule", "alerts", "keep_alerts"), ("policy", "checkins", "hide_some")] if backend == "postgresql" else [])
        assert named == expected and not result.intact
        assert "触发器 always_pass" in result.message
    finally:
        db.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_row_deleted_with_the_foreign_key_check_off_is_named_where_it_is_referred_to(
        database: str, request: pytest.FixtureRequest, client_factory: Callable[..., TestClient]) -> None:
    """Someone at the database deletes a stored selfie's evidence row (and so its size and type) with the foreign
    key check off (the sqlite3 shell's default; PostgreSQL's replica role): the evidence table is not audited
    row by row, but the check-in still names it, and the check names the check-in's reference as dangling."""
    from models.tables import CheckIn, Evidence

    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    world = World.build(client_factory(database_url=url) if url else client_factory())
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 201, r.text
    assert verify(world)["rows_intact"]
    db = world.client.app.state.db
    with db.engine.connect() as conn:  # one connection: the switch is the connection's own
        sha = conn.scalar(select(CheckIn.photo_sha256).where(CheckIn.id == r.json()["id"]))
        conn.commit()
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF" if database == "sqlite"
                             else "SET session_replication_role = replica")
        conn.execute(delete(Evidence).where(Evidence.sha256 == sha))
        conn.commit()
        conn.exec_driver_sql("PRAGMA foreign_keys=ON" if database == "sqlite"
                             else "SET session_replication_role = DEFAULT")
        conn.commit()
    result = verify(world)
    dangling = [f for f in result["row_findings"] if f["kind"] == "dangling"]
    with db.session() as s:
        hash_id = s.scalar(select(PhotoHash.id).where(PhotoHash.sha256 == sha))
    assert {(f["table"], f["key"], tuple(f["columns"])) for f in dangling} == {
        ("checkins", str(r.json()["id"]), ("photo_sha256",)), ("photo_hashes", str(hash_id), ("sha256",))}
    assert all("evidence.sha256" in f["message"] for f in dangling) and not result["intact"]
