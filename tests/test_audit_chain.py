"""The audit chain (clause 十三, 全程留痕可追溯): every state change appended with who and when; changing, deleting
or reordering a past entry, or dropping the last, is detected and the entry named, by the API and the CLI."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update
from typer.testing import CliRunner

from models.audit import AuditActor, append_audit
from models.clock import utc_now
from models.domain import Role
from models.tables import ApiToken, AuditEntry, AuditHead, Trainee
from monitor.adapters.audit_keys import create_private, load_keyring
from monitor.adapters.storage import Database
from monitor.adapters.tokens import issue_token
from monitor.cli import app as cli
from monitor.services.audit import anchor_head, verify_audit
from tests.helpers import World, auth, face, insert_alert, issue_token_via_api


@pytest.fixture
def world(client_factory: Callable[..., TestClient]) -> World:
    """The test world without a scheduler (check-ins are still verified; the tests seal by hand), so that the chain a
    test reads, tampers with and verifies holds only what the test did: a class changing state, a cross-check or
    the periodic audit check (a minute after start) appended entries after the one a test deleted as the last
    whenever the first clock pass or the test ran late on a busy machine."""
    return World.build(client_factory(scheduler=False))


def entries(world: World) -> list[dict]:
    world.client.app.state.db.seal_audit()  # what the worker does every few seconds
    out, after = [], 0
    while True:
        page = world.client.get(f"/api/v1/audit?after_seq={after}&limit=500", headers=auth(world.admin)).json()
        out += page
        if len(page) < 500:
            return out
        after = page[-1]["seq"]


def verify(world: World) -> dict:
    world.client.app.state.db.seal_audit()
    r = world.client.get("/api/v1/audit/verify", headers=auth(world.admin))
    assert r.status_code == 200, r.text
    return r.json()


def cli_verify(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", "verify", "--data-dir", str(data_dir)])
    return result.exit_code, result.output


def test_registration_uploads_verdicts_dispatch_and_exports_are_in_the_chain(world: World) -> None:
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 201
    world.client.get(f"/api/v1/classes/{world.class_id}/ledger.xlsx", headers=auth(world.admin))
    chain = entries(world)
    actions = [e["action"] for e in chain]
    for expected in ("institutions.insert", "trainees.insert", "face_templates.insert", "classes.insert",
                     "api_tokens.insert", "checkins.insert", "verifications.insert", "checkins.update", "export"):
        assert expected in actions, expected
    upload = next(e for e in chain if e["action"] == "checkins.insert")
    assert (upload["actor"], upload["actor_role"]) == ("站点0", "site")
    with world.client.app.state.db.session() as s:
        site_token_id = s.scalar(select(ApiToken.id).where(ApiToken.name == "站点0"))
    assert upload["token_id"] == site_token_id is not None  # which token made the write
    assert upload["detail"]["photo_sha256"] == r.json()["photo_sha256"]
    verdict = next(e for e in chain if e["action"] == "checkins.update")
    assert verdict["detail"] == {"status": "passed"} and verdict["actor_role"] == "system"
    assert verdict["token_id"] is None
    export = next(e for e in chain if e["action"] == "export")
    assert export["actor"] == "测试管理员" and len(export["detail"]["sha256"]) == 64
    token = next(e for e in chain if e["action"] == "api_tokens.insert")
    assert "token_hash" not in token["detail"]
    with world.client.app.state.db.session() as s:
        id_numbers = list(s.scalars(select(Trainee.id_number)))
    text = str(chain)
    assert id_numbers and not any(number in text for number in id_numbers)  # masked, never whole
    assert [e["seq"] for e in chain] == list(range(1, len(chain) + 1))
    result = verify(world)
    # Whatever the worker wrote meanwhile (its sealer, a check) may have grown the chain past the one read above.
    head = result["head_seq"]
    now = {e["seq"]: e["hash"] for e in entries(world)}
    assert head >= len(chain) and now[len(chain)] == chain[-1]["hash"]  # what was read is a prefix of it
    rows = result["rows_checked"]
    assert rows > 20 and result == {
        "intact": True, "checked": head, "pending": 0, "broken_seq": None, "broken_kind": None,
        "message": f"审计链完整：{head} 条记录，链头第 {head} 条 {now[head]}；记录与审计链一致（{rows} 行）",
        "head_seq": head, "head_hash": now[head], "anchors_checked": 0, "rows_checked": rows, "rows_intact": True,
        "row_findings": [], "row_findings_total": 0}
    assert world.client.get("/api/v1/audit", headers=auth(world.site)).status_code == 403
    assert world.client.get("/api/v1/audit", headers=auth(world.operator)).status_code == 403


@pytest.mark.parametrize("tamper", ["changed", "token", "deleted", "reordered", "last_deleted"])
def test_tampering_with_one_row_is_detected_and_named(world: World, tamper: str) -> None:
    chain = entries(world)
    assert len(chain) > 20
    target = len(chain) // 2
    db = world.client.app.state.db
    with db.session() as s:
        if tamper == "token":
            s.execute(update(AuditEntry).where(AuditEntry.seq == target).values(token_id=424242))
        elif tamper == "changed":
            row = s.scalar(select(AuditEntry).where(AuditEntry.seq == target))
            assert row is not None
            row.detail = {**row.detail, "name": "改过的名字"}
        elif tamper == "deleted":
            s.execute(delete(AuditEntry).where(AuditEntry.seq == target))
        elif tamper == "reordered":
            s.execute(update(AuditEntry).where(AuditEntry.seq == target).values(seq=-1))
            s.execute(update(AuditEntry).where(AuditEntry.seq == target + 1).values(seq=target))
            s.execute(update(AuditEntry).where(AuditEntry.seq == -1).values(seq=target + 1))
        else:
            target = len(chain) + 1
            s.execute(delete(AuditEntry).where(AuditEntry.seq == len(chain)))
    result = verify(world)
    expected_kind = {"changed": "changed", "token": "changed", "deleted": "missing", "reordered": "out_of_order",
                     "last_deleted": "head"}[tamper]
    expected_seq = target if tamper != "last_deleted" else len(chain)
    assert (result["intact"], result["broken_kind"], result["broken_seq"]) == (False, expected_kind, expected_seq)
    assert f"第 {expected_seq} 条" in result["message"]
    code, output = cli_verify(world.client.app.state.settings.data_dir)
    assert code == 1 and f"第 {expected_seq} 条" in output


def test_records_rewritten_behind_the_chain_are_detected_and_named(world: World) -> None:
    """An administrator with database access changes a verdict, deletes a step of an alert's history and inserts a
    staff member, leaving the chain alone: the chain verifies, the records do not, each row is named (API and
    CLI); and every flow of the test world verifies clean beforehand."""
    from models.tables import AlertTransition, CheckIn, Staff, Verification

    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 201 and r.json()["status"] == "passed"
    db = world.client.app.state.db
    alert = add_alert_with_history(world)
    before = verify(world)
    assert before["rows_intact"] and before["intact"], before["row_findings"]
    code, output = cli_verify(world.client.app.state.settings.data_dir)
    assert code == 0 and "记录与审计链一致" in output
    with db.session() as s:  # straight into the tables, as someone with the database's password would
        s.execute(update(Verification).where(Verification.subject_id == r.json()["id"]).values(
            passed=False, face_distance=0.71))
        s.execute(update(CheckIn).where(CheckIn.id == r.json()["id"]).values(status="failed"))
        step = s.scalars(select(AlertTransition.id).where(AlertTransition.alert_id == alert)).first()
        s.execute(delete(AlertTransition).where(AlertTransition.id == step))
        s.add(Staff(name="幽灵检查员", phone="13900000000", level="county", region_code="530102", active=True,
                    created_at=utc_now()))
    with db.engine.begin() as conn:  # (the ORM add above wrote an audit entry: take it out, as a forger would)
        conn.execute(delete(AuditEntry).where(AuditEntry.action == "staff.insert", AuditEntry.seq.is_(None)))
    result = verify(world)
    found = {(f["table"], f["kind"], tuple(f["columns"])) for f in result["row_findings"]}
    assert ("verifications", "changed", ("face_distance", "passed")) in found
    assert ("checkins", "changed", ("status",)) in found
    assert ("alert_transitions", "missing", ()) in found
    assert ("staff", "unrecorded", ()) in found
    assert result["row_findings_total"] == 4 and not result["rows_intact"] and not result["intact"]
    assert result["broken_kind"] == "row" and "与审计链不符" in result["message"]
    code, output = cli_verify(world.client.app.state.settings.data_dir)
    assert code == 1 and "记录与审计链不符：4 行" in output and f"checkins 第 {r.json()['id']} 行的 status" in output


def test_a_row_deleted_whose_number_the_database_gave_again_is_named(world: World) -> None:
    """Outside tester: the newest check-in deleted straight from the database was named `missing`, until the next
    upload took its id (SQLite hands the highest freed id out again); then the replay took the new row's entries
    for the only ones and the check said intact, the first check-in gone without a trace. Two inserts of one id
    with no delete between now name it."""
    from models.tables import CheckIn, OutboxMessage, PhotoHash, Verification

    first = world.checkin(face("people/obama/obama2.jpg"))
    assert first.status_code == 201, first.text
    gone = first.json()["id"]
    db = world.client.app.state.db
    with db.session() as s:  # the newest check-in and everything that names it, as a forger would
        s.execute(delete(Verification).where(Verification.subject_kind == "checkin", Verification.subject_id == gone))
        s.execute(delete(OutboxMessage).where(OutboxMessage.subject_id == gone))
        s.execute(delete(PhotoHash).where(PhotoHash.subject_kind == "checkin", PhotoHash.subject_id == gone))
        s.execute(delete(CheckIn).where(CheckIn.id == gone))
    second = world.checkin(face("people/obama/obama1.jpg"))
    assert second.status_code == 201 and second.json()["id"] == gone  # the same number, a new row
    result = verify(world)
    found = {(f["table"], f["key"], f["kind"]) for f in result["row_findings"]}
    assert ("checkins", str(gone), "reused") in found, result["row_findings"]
    assert not result["rows_intact"] and not result["intact"]
    code, output = cli_verify(world.client.app.state.settings.data_dir)
    assert code == 1 and f"checkins 第 {gone} 行曾被绕过系统删除，其编号又被新记录使用" in output


def test_a_token_hash_swapped_to_hand_a_site_the_admins_role_is_named(world: World) -> None:
    """Someone at the database gives the admin's token row the hash of a site's token (and the site's row the
    admin's): the site's token now authenticates as the admin. The chain records each token's hash (never shown),
    so the row check names both rows."""
    db = world.client.app.state.db
    before = verify(world)
    assert before["rows_intact"], before["row_findings"]
    with db.session() as s:
        admin = s.scalars(select(ApiToken).where(ApiToken.name == "测试管理员")).one()
        site = s.scalars(select(ApiToken).where(ApiToken.name == "站点0")).one()
        admin_id, site_id, admin_hash, site_hash = admin.id, site.id, admin.token_hash, site.token_hash
    with db.engine.begin() as conn:  # three statements, as the unique index on the hash requires
        conn.execute(update(ApiToken).where(ApiToken.id == admin_id).values(token_hash="0" * 64))
        conn.execute(update(ApiToken).where(ApiToken.id == site_id).values(token_hash=admin_hash))
        conn.execute(update(ApiToken).where(ApiToken.id == admin_id).values(token_hash=site_hash))
    assert world.client.get("/api/v1/tokens", headers=auth(world.site)).status_code == 200  # the swap works
    with db.session() as s:  # (the admin's own token is now the site's: verify with an auditor's)
        auditor = issue_token(s, Role.AUDITOR, "审计员")
    db.seal_audit()
    r = world.client.get("/api/v1/audit/verify", headers=auth(auditor))
    assert r.status_code == 200, r.text
    found = {(f["table"], f["key"], f["kind"], tuple(f["columns"])) for f in r.json()["row_findings"]}
    assert found == {("api_tokens", str(admin_id), "changed", ("token_hash",)),
                     ("api_tokens", str(site_id), "changed", ("token_hash",))}
    assert admin_hash not in r.text and site_hash not in r.text
    entries = world.client.get("/api/v1/audit", params={"subject_kind": "api_tokens"}, headers=auth(auditor))
    assert entries.status_code == 200 and entries.json()
    assert admin_hash not in entries.text and "token_hash" not in entries.text  # recorded, never shown


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_cited_figure_or_face_vector_rewritten_in_the_database_is_named(
        database: str, request: pytest.FixtureRequest, client_factory: Callable[..., TestClient]) -> None:
    """The chain does not copy large figures (a verdict's measurements and thresholds, a face vector) but records
    their digest: a face distance made to look like a match, a threshold loosened, or an enrolled face vector
    swapped for someone else's (who could then sign in as the trainee) is a changed row. The digests of the values
    written and read back agree on both databases (nothing else is named)."""
    from models.tables import FaceTemplate, Verification

    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    world = World.build(client_factory(database_url=url) if url else client_factory())
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 201 and r.json()["status"] == "passed"
    db = world.client.app.state.db
    assert verify(world)["rows_intact"]
    with db.session() as s:
        verification = s.scalars(select(Verification).where(Verification.subject_id == r.json()["id"])).one()
        measured = {**verification.measured, "face_distance": 0.12}
        thresholds = {**verification.thresholds, "face_match": 0.9}
        obama = s.scalars(select(FaceTemplate).where(FaceTemplate.person_id == world.obama_id)).first()
        biden = s.scalars(select(FaceTemplate).where(FaceTemplate.person_id == world.biden_id)).first()
        assert obama is not None and biden is not None
        ids = (verification.id, obama.id)
    with db.engine.begin() as conn:  # Core statements: no entry is written, as with a database client
        conn.execute(update(Verification).where(Verification.id == ids[0]).values(measured=measured,
                                                                                  thresholds=thresholds))
        conn.execute(update(FaceTemplate).where(FaceTemplate.id == ids[1]).values(encoding=biden.encoding))
    found = {(f["table"], f["key"], f["kind"], tuple(f["columns"])) for f in verify(world)["row_findings"]}
    # the template's search copy still holds Obama's face, so it no longer matches the (rewritten) encoding either
    assert found == {("verifications", str(ids[0]), "changed", ("measured_sha256", "thresholds_sha256")),
                     ("face_templates", str(ids[1]), "changed", ("encoding_sha256",)),
                     ("face_vectors", str(ids[1]), "copy_differs", ("vector",))}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_face_templates_search_copy_swapped_in_the_database_is_named(
        database: str, request: pytest.FixtureRequest, client_factory: Callable[..., TestClient]) -> None:
    """The 1:N index picks its candidates from each template's float32 copy (`face_vectors`), not from the audited
    encoding: a copy swapped for another face would hide a duplicate enrolment from the search while every audited
    row stays intact (outside tester: not detected). The check names the template; the copies written by enrolment
    agree with their encodings on both databases (nothing else is named)."""
    from models.tables import FaceTemplate
    from monitor.adapters.face_tables import FaceVector, vector_bytes

    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    world = World.build(client_factory(database_url=url, scheduler=False) if url
                        else client_factory(scheduler=False))
    db = world.client.app.state.db
    first = verify(world)
    assert first["rows_intact"] and not first["row_findings"], first["row_findings"]
    with db.session() as s:
        obama = s.scalars(select(FaceTemplate).where(FaceTemplate.person_id == world.obama_id)).first()
        biden = s.scalars(select(FaceTemplate).where(FaceTemplate.person_id == world.biden_id)).first()
        assert obama is not None and biden is not None
        copies = s.scalar(select(func.count()).select_from(FaceVector))
        target = obama.id
    assert copies and copies >= 2
    with db.engine.begin() as conn:  # Core: as with a database client
        conn.execute(update(FaceVector).where(FaceVector.template_id == target)
                     .values(vector=vector_bytes(biden.encoding)))
    result = verify(world)
    assert not result["rows_intact"]
    assert [(f["table"], f["key"], f["kind"]) for f in result["row_findings"]] == [
        ("face_vectors", str(target), "copy_differs")]
    assert "检索副本" in result["row_findings"][0]["message"]


def add_alert_with_history(world: World) -> int:
    """An alert dispatched through the API (so that its history has steps written by the product)."""
    alert_id = insert_alert(world)
    r = world.client.post(f"/api/v1/alerts/{alert_id}/dismiss", headers=auth(world.operator),
                          json={"note": "误报：学员本人签到"})
    assert r.status_code == 200, r.text
    return alert_id


def test_an_intact_chain_passes_the_cli(world: World) -> None:
    entries(world)  # sealed, as the worker does within seconds (the test template's migration entries are unsigned)
    code, output = cli_verify(world.client.app.state.settings.data_dir)
    assert code == 0 and "审计链完整" in output, output


def append_in_parallel(db: Database, threads: int = 6, each: int = 25) -> None:
    """Writers append while sealers seal, all at once; then whatever is left is sealed."""
    def work(n: int) -> None:
        for k in range(each):
            with db.session() as s:
                append_audit(s, "test.append", "test", f"{n}-{k}", {"n": n, "k": k}, AuditActor(f"线程{n}", "system"))
            if k % 5 == 0:
                db.seal_audit()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    db.seal_audit()


def migration_entries(db: Database) -> int:
    """The entries a freshly migrated database's chain starts with (the regions, recorded by migration 0035)."""
    with db.session() as s:
        return len(s.scalars(select(AuditEntry.id)).all())


def test_concurrent_appends_keep_one_chain_on_sqlite(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory()
    db = client.app.state.db
    start = migration_entries(db)
    append_in_parallel(db)
    checked, broken = verify_audit(db, client.app.state.settings.audit_keyring().keys)
    assert broken is None and checked == start + 150


def test_concurrent_appends_keep_one_chain_on_postgresql(postgres_url: str) -> None:
    db = Database(postgres_url)
    db.migrate()
    try:
        start = migration_entries(db)
        append_in_parallel(db)
        checked, broken = verify_audit(db)
        assert broken is None and checked == start + 150
        with db.session() as s:
            s.execute(update(AuditEntry).where(AuditEntry.seq == 77).values(actor="别人"))
        assert verify_audit(db)[1].seq == 77  # type: ignore[union-attr]
    finally:
        db.dispose()


def rewrite_from(db: Database, target: int, key: tuple[str, bytes] | None) -> None:
    """What an administrator with database access could do: change entry `target` (who blacklisted, say) and
    re-compute every digest from there on, and the head, so that the links hold again. With `key` the digests are
    HMACs made with it and the changed entry is signed anew with it (a stolen key); without, plain SHA-256 (the key
    stayed outside the database)."""
    from models.audit_chain import entry_hash, sign_entry
    from models.tables import AuditHead

    with db.session() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.seq >= target).order_by(AuditEntry.seq)).all()
        prev = rows[0].prev_hash or ""
        first = rows[0]
        first.actor = "另一个人"
        if key is not None:
            first.signature = sign_entry(key[0], key[1], "0" * 16, first.at.isoformat(), first.actor,
                                         first.actor_role, first.token_id, first.action, first.subject_kind,
                                         first.subject_id, first.detail)
        for e in rows:
            assert e.seq is not None
            key_id, secret = key if key is not None else (e.key_id, None)
            e.key_id = key_id
            e.prev_hash = prev
            e.hash = entry_hash(prev, e.seq, e.at.isoformat(), e.actor, e.actor_role, e.action, e.subject_kind,
                                e.subject_id, e.detail, e.token_id, secret, key_id, e.signature)
            prev = e.hash
        head = s.get(AuditHead, 1)
        assert head is not None
        head.hash = prev


def test_a_rewritten_and_re_hashed_chain_fails_without_the_key_and_against_the_anchors(world: World) -> None:
    """The key lives outside the database: re-hashing without it breaks at the rewritten entry. With the key
    stolen too, the chain verifies alone, but the anchors noted before contradict it (CLI and API)."""
    db = world.client.app.state.db
    settings = world.client.app.state.settings
    chain = entries(world)
    assert {e["action"] for e in chain} and all(len(e["hash"]) == 64 for e in chain)
    with db.session() as s:
        assert set(s.scalars(select(AuditEntry.key_id))) == {"k1"}  # every entry sealed with the key file's key
    assert oct(settings.audit_keys_path.stat().st_mode & 0o777) == "0o600"
    assert settings.audit_keys_path.read_text() not in str(chain)
    anchor = anchor_head(db, settings.audit_anchor_path, utc_now())  # what the worker does on its schedule
    assert anchor is not None and (anchor.seq, anchor.hash) == (len(chain), chain[-1]["hash"])
    assert anchor_head(db, settings.audit_anchor_path, utc_now()) is None  # the head did not move: no new line
    assert len(settings.audit_anchor_path.read_text().splitlines()) == 1
    published = world.client.get("/public/audit-anchors.json").json()["anchors"]  # no token: public
    assert published[0]["seq"] == len(chain) and published[0]["hash"] == chain[-1]["hash"]

    target = chain[-1]["seq"] - 3  # (an entry the product signed: the migration's in the test template are not)
    rewrite_from(db, target, key=None)
    result = verify(world)
    assert (result["intact"], result["broken_kind"], result["broken_seq"]) == (False, "changed", target)

    rewrite_from(db, target, key=settings.audit_keyring().current)  # the key stolen as well
    assert verify_audit(db, settings.audit_keyring().keys)[1] is None  # alone, the chain cannot tell
    code, output = cli_verify(settings.data_dir)  # the CLI holds it against the center's own anchors file
    assert code == 1 and "锚点不符" in output
    outside = settings.data_dir.parent / "anchors-copy.jsonl"
    outside.write_text(settings.audit_anchor_path.read_text())
    result = CliRunner().invoke(cli, ["audit", "verify", "--data-dir", str(settings.data_dir), "--against",
                                      str(outside)])
    assert result.exit_code == 1 and f"第 {len(chain)} 条记录与" in result.output and "锚点不符" in result.output
    api = verify(world)  # the API holds the chain against the anchors file too
    assert (api["intact"], api["broken_kind"], api["broken_seq"], api["anchors_checked"]) == (
        False, "anchor", len(chain), 1)


def test_a_rotated_key_seals_new_entries_and_old_ones_still_verify(world: World) -> None:
    settings = world.client.app.state.settings
    db = world.client.app.state.db
    entries(world)
    result = CliRunner().invoke(cli, ["audit", "rotate-key", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0 and "k2" in result.output
    db.audit_key = settings.audit_keyring().current  # what a restart does
    with db.session() as s:
        append_audit(s, "test.append", "test", "after-rotation", {"n": 1}, AuditActor("测试", "system"))
    db.seal_audit()
    with db.session() as s:
        assert set(s.scalars(select(AuditEntry.key_id))) == {"k1", "k2"}
    assert verify(world)["intact"] is True
    assert world.client.get("/api/v1/health", headers=auth(world.admin)).json()["audit"]["untrusted"] == 0
    keys = settings.audit_keyring().keys
    assert verify_audit(db, {"k2": keys["k2"]})[1].kind == "key"  # type: ignore[union-attr]


def test_a_process_started_after_a_rotation_is_no_alarm_for_a_sealer_started_before(world: World) -> None:
    """The running sealer read the key file before `monitor audit rotate-key`; a process started after it signs
    with the new key. The sealer reads the key file again for the key it has not seen, rather than doubt those
    entries as signed by a key the center never had (which it does for a key id the file does not hold either)."""
    settings = world.client.app.state.settings
    db = world.client.app.state.db
    entries(world)  # sealed: the sealer has read the keyring (k1 only)
    assert CliRunner().invoke(cli, ["audit", "rotate-key", "--data-dir", str(settings.data_dir)]).exit_code == 0
    restarted = Database(settings.sqlalchemy_url, settings.audit_keyring().current)  # a process started after
    try:
        with restarted.session() as s:
            append_audit(s, "test.append", "test", "after-rotation", {"n": 1}, AuditActor("测试", "system"))
    finally:
        restarted.dispose()
    db.seal_audit()  # the running sealer, still sealing with k1
    with db.session() as s:
        signature = s.scalar(select(AuditEntry.signature).where(AuditEntry.subject_id == "after-rotation"))
        assert signature is not None and signature.startswith("k2:")
    health = world.client.get("/api/v1/health", headers=auth(world.admin)).json()
    assert (health["status"], health["audit"]["untrusted"]) == ("ok", 0)
    assert verify(world)["intact"] is True


def test_a_key_made_by_two_processes_at_once_is_the_first_writers_for_both(tmp_path: Path) -> None:
    """Whoever loses the race to create a key file reads the winner's key instead of keeping its own (a chain sealed,
    an ID number hashed or a password encrypted with a key that was then overwritten could never be read again)."""
    path = tmp_path / "keys" / "k.json"
    assert create_private(path, "first\n") == "first\n"
    assert create_private(path, "second\n") == "first\n"
    assert path.read_text() == "first\n" and oct(path.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in path.parent.iterdir()) == ["k.json"]  # no temporary file left behind
    rings = []
    barrier = threading.Barrier(6)

    def load() -> None:
        barrier.wait()
        rings.append(load_keyring(tmp_path / "race" / "audit-keys.json"))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.keys["k1"] for r in rings}) == 1


def test_a_row_is_judged_against_its_replayed_entries() -> None:
    from models.audit_rows import differing_columns, inserted_again, replay_entries, same_value

    assert inserted_again([("insert", "1", {}), ("update", "1", {}), ("insert", "1", {}), ("insert", "2", {}),
                           ("delete", "2", {}), ("insert", "2", {})]) == {"1"}  # "2" was deleted in the open

    rows = replay_entries([("insert", "1", {"status": "pending", "at": "2026-03-02 01:00:00+00:00", "d": 0.31}),
                           ("update", "1", {"status": "passed"}), ("insert", "2", {"status": "pending"}),
                           ("delete", "2", {}), ("update", "3", {"status": "failed"})])
    assert rows == {"1": {"status": "passed", "at": "2026-03-02 01:00:00+00:00", "d": 0.31}, "2": None,
                    "3": {"status": "failed"}}
    assert same_value("2026-03-02 01:00:00+00:00", "2026-03-02T09:00:00+08:00")  # one instant, two zones
    assert not same_value("2026-03-02 01:00:00", "2026-03-02 01:00:00+00:00")  # a zone-less time is text
    assert same_value(0.31, 0.3100000023841858) and not same_value(0.31, 0.32)  # PostgreSQL REAL keeps 7 digits
    assert not same_value(True, 1) and not same_value(None, 0) and same_value([1, {"a": 2.0}], [1, {"a": 2}])
    assert not same_value(1234567, 1234570) and not same_value(10_000_000, 10_000_001)  # ids and fen: exact
    assert differing_columns(rows["1"], {"status": "passed", "at": "2026-03-02 09:00:00+08:00", "d": 0.5,
                                         "extra": "not recorded, not judged"}) == ("d",)


def test_swapping_two_entries_ids_does_not_hide_a_row_set_back(db: Database) -> None:
    """An entry's id is not in its hash. Someone at the database sets an occupation's name back to what it was
    and swaps the ids of its two updates, so that a replay in id order ends on the old name: the chain is intact,
    and the row check (replaying in the chain's order) still names the row."""
    from models.tables import Occupation
    from monitor.services.audit import verify_rows

    keys = {"k1": b"k" * 32}
    db.seal_audit()  # the template's migration entries, sealed before any signed one (as the product before keys)
    db.audit_key = ("k1", keys["k1"])
    with db.session() as s:
        s.add(Occupation(id=900, code="6-99-01", name="电工"))
    for name in ("焊工", "钳工"):
        with db.session() as s:
            row = s.get(Occupation, 900)
            assert row is not None
            row.name = name
    db.seal_audit()
    assert verify_rows(db, ["occupations"], keys)[1] == []
    with db.session() as s:
        first, second = s.scalars(select(AuditEntry.id).where(
            AuditEntry.subject_kind == "occupations", AuditEntry.action == "occupations.update")
            .order_by(AuditEntry.id)).all()
        s.execute(update(AuditEntry).where(AuditEntry.id == first).values(id=-1))
        s.execute(update(AuditEntry).where(AuditEntry.id == second).values(id=first))
        s.execute(update(AuditEntry).where(AuditEntry.id == -1).values(id=second))
        s.execute(update(Occupation).where(Occupation.id == 900).values(name="焊工"))
    assert verify_audit(db, keys)[1] is None  # the chain itself holds
    findings = verify_rows(db, ["occupations"], keys)[1]
    assert [(f.key, f.kind, f.columns) for f in findings] == [("900", "changed", ("name",))]


def test_a_row_committed_with_its_entry_during_the_check_is_seen_with_both_or_neither(db: Database) -> None:
    """The class clock inserts a class's status (row and entry, one commit) while the check reads that table: the
    check read no entry, then the row, and named it as inserted behind the system's back (the SQLite driver began
    no transaction for a SELECT, so the second read saw a later database). One snapshot for both reads."""
    from sqlalchemy import event

    from models.tables import Occupation
    from monitor.services.audit import verify_rows

    db.seal_audit()
    committed: list[int] = []

    def commit_meanwhile(conn: object, cursor: object, statement: str, *args: object) -> None:
        if not committed and statement.lstrip().startswith("SELECT occupations."):
            with db.session() as s:  # another connection: the row and its entry, committed together
                s.add(Occupation(id=901, code="6-99-02", name="电工"))
            committed.append(901)

    event.listen(db.engine, "before_cursor_execute", commit_meanwhile)
    try:
        checked, findings = verify_rows(db, ["occupations"])
    finally:
        event.remove(db.engine, "before_cursor_execute", commit_meanwhile)
    assert committed == [901] and (checked, findings) == (0, [])
    assert verify_rows(db, ["occupations"]) == (1, [])  # the next check sees both


def forge_entry(db: Database, how: str, subject_id: int, detail: dict) -> int:
    """What an administrator with database access but without the audit key could do to make a rewritten row
    agree with the chain: insert an entry for it, actor 系统, for the sealer to chain with the real key. `how`:
    unsigned (no signature), forged (a made-up one), unknown_key (made up in the name of a key the center never had)
    or copied (an earlier entry of the row, whole, the unique index dropped first: replaying what the product once
    wrote). Returns the entry's id."""
    from sqlalchemy import insert, text

    values = {"at": utc_now(), "actor": "系统", "actor_role": "system", "action": "checkins.update",
              "subject_kind": "checkins", "subject_id": str(subject_id), "detail": detail, "signature": None}
    with db.engine.begin() as conn:
        if how == "forged":
            values["signature"] = f"k1:{'0' * 16}:{'1' * 64}"
        elif how == "unknown_key":
            values["signature"] = f"k0:{'0' * 16}:{'1' * 64}"
        elif how == "copied":
            conn.execute(text("DROP INDEX ix_audit_entries_signature"))
            earlier = conn.execute(select(AuditEntry).where(
                AuditEntry.subject_kind == "checkins", AuditEntry.subject_id == str(subject_id))
                .order_by(AuditEntry.id.desc()).limit(1)).one()._mapping
            values = {k: earlier[k] for k in ("at", "actor", "actor_role", "token_id", "action", "subject_kind",
                                              "subject_id", "detail", "signature")}
        return int(conn.execute(insert(AuditEntry).values(**values).returning(AuditEntry.id)).scalar_one())


@pytest.mark.parametrize("how", ["unsigned", "forged", "unknown_key", "copied"])
def test_an_entry_slipped_in_for_the_sealer_is_named_and_not_believed(world: World, how: str) -> None:
    """Someone rewrites a check-in's status in the database and inserts an entry that says the product did it; the
    worker seals whatever it finds, with the real key. The entry carries no valid writer signature (or repeats
    another's), so verification names it (API and CLI), and the row check does not believe it."""
    from models.tables import CheckIn

    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 201 and r.json()["status"] == "passed"
    db = world.client.app.state.db
    before = verify(world)
    assert before["intact"] and before["rows_intact"], before
    assert world.client.get("/api/v1/health", headers=auth(world.admin)).json()["audit"]["untrusted"] == 0
    with db.session() as s:
        signed = s.scalars(select(AuditEntry.signature).where(AuditEntry.seq.is_not(None))
                           .order_by(AuditEntry.seq)).all()
        since = next(n for n, sig in enumerate(signed) if sig is not None)  # (the test template's migration: none)
        assert all(sig is not None and sig.startswith("k1:") for sig in signed[since:])  # every entry since signed
    with db.engine.begin() as conn:
        conn.execute(update(CheckIn).where(CheckIn.id == r.json()["id"]).values(status="failed"))
    entry = forge_entry(db, how, r.json()["id"], {"status": "failed"})
    result = verify(world)  # sealed now, by the real sealer with the real key
    with db.session() as s:
        seq = s.scalar(select(AuditEntry.seq).where(AuditEntry.id == entry))
    assert seq is not None and result["head_seq"] >= seq  # sealed (the sealer's own note may follow it)
    kind = {"unsigned": "unsigned", "forged": "forged", "unknown_key": "key", "copied": "copied"}[how]
    assert (result["intact"], result["broken_kind"], result["broken_seq"]) == (False, kind, seq), result
    assert result["checked"] == seq - 1  # everything before it holds
    found = {(f["table"], f["kind"], f["entry"]) for f in result["row_findings"]}
    assert ("checkins", "unsigned_entry", entry) in found
    assert ("checkins", "changed", None) in found  # the rewritten status, since the forged entry is not believed
    code, output = cli_verify(world.client.app.state.settings.data_dir)
    assert code == 1 and f"第 {seq} 条" in output and f"编号 {entry}" in output
    # the sealer could tell as it sealed: the wall and /health raise the alarm at once, and the chain says so
    health = world.client.get("/api/v1/health", headers=auth(world.admin)).json()
    assert health["status"] == "degraded" and (health["audit"]["untrusted"], health["audit"]["untrusted_seq"]) == (
        1, seq)
    alarms = world.client.get("/api/v1/overview", headers=auth(world.admin)).json()["alarms"]
    assert [a["code"] for a in alarms] == ["AUDIT_UNTRUSTED"] and f"第 {seq} 条" in alarms[0]["message"]
    noted = [e for e in entries(world) if e["action"] == "audit.untrusted"]
    assert [(e["subject_id"], e["detail"], e["actor_role"]) for e in noted] == [(str(seq), {"seqs": [seq]}, "system")]
    # the head's counter set back to zero at the database silences nothing: the sealer's own entry is in the chain
    with db.engine.begin() as conn:
        conn.execute(update(AuditHead).values(untrusted=0, untrusted_seq=None))
    alarms = world.client.get("/api/v1/overview", headers=auth(world.admin)).json()["alarms"]
    assert [a["code"] for a in alarms] == ["AUDIT_UNTRUSTED"], alarms
    assert f"第 {seq} 条" in alarms[0]["message"] and "计数" in alarms[0]["message"], alarms[0]["message"]
    health = world.client.get("/api/v1/health", headers=auth(world.admin)).json()
    assert health["status"] == "degraded" and (health["audit"]["untrusted"], health["audit"]["untrusted_seq"]) == (
        1, seq)


def test_entries_from_before_signatures_verify_and_an_unsigned_one_after_does_not(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """A database upgraded from before signatures: its unsigned entries verify (rows too); once a signed entry is in
    the chain, an unsigned one after it is named. On SQLite and PostgreSQL."""
    from models.tables import Staff
    from monitor.services.audit import untrusted_alarm, verify_rows

    for url in (f"sqlite:///{tmp_path / 'a.sqlite3'}", request.getfixturevalue("postgres_url")):
        keys = {"k1": b"k" * 32}
        db = Database(url)  # no key: the product before signatures
        db.migrate()
        start = migration_entries(db)
        try:
            with db.session() as s:
                s.add(Staff(name="旧检查员", phone="13900000001", level="county", region_code="530102", active=True,
                            created_at=utc_now()))
            db.audit_key = ("k1", keys["k1"])  # the upgraded product
            with db.session() as s:
                s.add(Staff(name="新检查员", phone="13900000002", level="county", region_code="530102", active=True,
                            created_at=utc_now()))
            # checked before the first seal (a scheduler's check can run first): the entries from before signatures
            # are judged as the sealer will chain them, and an unsigned one after the first signed one is named
            checked, findings = verify_rows(db, ["regions", "staff"], keys)
            assert checked == start - 1 + 2 and findings == [], findings[:3]
            db.audit_key = None
            with db.session() as s:
                ghost = Staff(name="幽灵", phone="13900000009", level="county", region_code="530102", active=True,
                              created_at=utc_now())
                s.add(ghost)
            assert [f.kind for f in verify_rows(db, ["regions", "staff"], keys)[1]] == ["unsigned_entry", "unrecorded"]
            with db.engine.begin() as conn:  # taken out again before any seal (pending entries are not chained yet)
                conn.execute(delete(AuditEntry).where(AuditEntry.subject_kind == "staff",
                                                      AuditEntry.subject_id == str(ghost.id)))
                conn.execute(delete(Staff).where(Staff.id == ghost.id))
            db.audit_key = ("k1", keys["k1"])
            db.seal_audit()
            assert verify_audit(db, keys) == (start + 2, None)
            assert verify_rows(db, ["staff"], keys) == (2, [])
            db.audit_key = None  # a writer without the key (a tool, or someone at the database)
            with db.session() as s:
                s.add(Staff(name="幽灵", phone="13900000003", level="county", region_code="530102", active=True,
                            created_at=utc_now()))
            checked, findings = verify_rows(db, ["staff"], keys)  # not sealed yet: already not believed
            assert checked == 3 and [f.kind for f in findings] == ["unsigned_entry", "unrecorded"]
            db.audit_key = ("k1", keys["k1"])  # the worker's sealer
            db.seal_audit()
            checked, broken = verify_audit(db, keys)
            assert checked == start + 2 and broken is not None and (broken.seq, broken.kind) == (start + 3,
                                                                                                   "unsigned")
            with db.session() as s:
                assert untrusted_alarm(s)["untrusted_seq"] == start + 3  # type: ignore[index]
        finally:
            db.dispose()


def test_rows_and_entries_are_merged_in_key_order_on_both_databases(request: pytest.FixtureRequest,
                                                                     tmp_path: Path) -> None:
    """The row check reads entries and rows in byte order of the row's key ("10" < "100" < "2" < "9") and merges
    them: a row missing, inserted, changed or without its entries is named wherever it falls in that order, and
    nothing else is, on SQLite and PostgreSQL."""
    from sqlalchemy import insert

    from models.tables import Staff
    from monitor.services.audit import verify_rows

    keys = {"k1": b"m" * 32}
    for url in (f"sqlite:///{tmp_path / 'm.sqlite3'}", request.getfixturevalue("postgres_url")):
        db = Database(url, ("k1", keys["k1"]))
        db.migrate()
        try:
            with db.session() as s:
                s.add_all([Staff(id=i, name=f"员{i}", phone="13900000000", level="county", region_code="530102",
                                 active=True, created_at=utc_now()) for i in range(1, 13)])
            db.seal_audit()
            assert verify_rows(db, ["staff"], keys) == (12, [])
            with db.engine.begin() as conn:  # straight into the table
                conn.execute(delete(Staff).where(Staff.id == 10))
                conn.execute(insert(Staff).values(id=100, name="幽灵", phone="13900000000", level="county",
                                                  region_code="530102", active=True, created_at=utc_now()))
                conn.execute(update(Staff).where(Staff.id == 2).values(name="改名"))
                conn.execute(delete(AuditEntry).where(AuditEntry.subject_kind == "staff",
                                                      AuditEntry.subject_id == "9"))
            checked, findings = verify_rows(db, ["staff"], keys)
            assert checked == 12
            assert [(f.key, f.kind, f.columns) for f in findings] == [
                ("10", "missing", ()), ("100", "unrecorded", ()), ("2", "changed", ("name",)),
                ("9", "unrecorded", ())]
        finally:
            db.dispose()


def test_the_scheduler_checks_the_chain_on_its_own_and_the_wall_raises_a_rewrite(
        client_factory: Callable[..., TestClient]) -> None:
    """Nobody has to ask: the scheduler verifies the chain and every record every
    `audit_check_interval_seconds`, keeps the result (GET /api/v1/audit/checks, /health) and notes it in the chain;
    a check-in rewritten in the database is on the wall (AUDIT_BROKEN) at the next check."""
    from models.tables import CheckIn

    client = client_factory(audit_check_interval_seconds=0.5)
    world = World.build(client)
    r = world.checkin(face("people/obama/obama2.jpg"))
    assert r.status_code == 201 and r.json()["status"] == "passed"
    admin = auth(world.admin)

    def latest_after(seen: int) -> dict:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            checks = client.get("/api/v1/audit/checks?limit=1", headers=admin).json()
            if checks and checks[0]["id"] > seen:
                return checks[0]
            time.sleep(0.2)
        raise AssertionError("no audit check ran")

    first = latest_after(0)
    assert first["intact"] and first["rows_checked"] > 10 and first["broken_kind"] is None, first["message"]
    assert client.get("/api/v1/overview", headers=admin).json()["alarms"] == []
    health = client.get("/api/v1/health", headers=admin).json()
    assert health["status"] == "ok" and health["audit"]["last_check"]["intact"] is True
    db = client.app.state.db
    with db.engine.begin() as conn:  # straight into the table
        conn.execute(update(CheckIn).where(CheckIn.id == r.json()["id"]).values(status="failed"))
    broken = latest_after(first["id"])
    while broken["intact"]:  # a check that had already started before the rewrite may still say intact
        broken = latest_after(broken["id"])
    assert (broken["broken_kind"], broken["row_findings"]) == ("row", 1) and "checkins" in broken["message"]
    alarms = client.get("/api/v1/overview", headers=admin).json()["alarms"]
    assert [a["code"] for a in alarms] == ["AUDIT_BROKEN"]
    assert f"checkins 第 {r.json()['id']} 行" in alarms[0]["message"]
    health = client.get("/api/v1/health", headers=admin).json()
    assert health["status"] == "degraded" and health["audit"]["last_check"]["intact"] is False
    db.seal_audit()
    with db.session() as s:
        noted = s.scalars(select(AuditEntry).where(AuditEntry.action == "audit.checked")
                          .order_by(AuditEntry.id)).all()
    checks = client.get("/api/v1/audit/checks?limit=50", headers=admin).json()
    assert noted and noted[0].detail["intact"] is True and any(e.detail["intact"] is False for e in noted), [
        (c["id"], c["intact"], c["message"]) for c in checks]


def test_verifying_while_the_center_writes_and_seals_raises_no_false_alarm(request: pytest.FixtureRequest,
                                                                             tmp_path: Path) -> None:
    """The sealer and writers go on while a check runs: the chain is walked up to the head as read when the check
    began, and the rows with their entries from one snapshot, so a check never reports a dropped tail or a row
    inserted behind the system's back that was merely written meanwhile (SQLite and PostgreSQL)."""
    from models.tables import Staff
    from monitor.services.audit import check_audit

    keys = {"k1": b"r" * 32}
    for url in (f"sqlite:///{tmp_path / 'r.sqlite3'}", request.getfixturevalue("postgres_url")):
        db = Database(url, ("k1", keys["k1"]))
        db.migrate()
        stop = threading.Event()

        def write(db: Database = db, stop: threading.Event = stop) -> None:
            n = 0
            while not stop.is_set():
                with db.session() as s:
                    s.add(Staff(name=f"员{n}", phone="13900000000", level="county", region_code="530102",
                                active=True, created_at=utc_now()))
                db.seal_audit()
                n += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            results = []
            started = time.monotonic()
            # at least four seconds and five checks (a busy machine makes fewer in the time), at most a minute
            while (len(results) < 5 or time.monotonic() - started < 4.0) and time.monotonic() - started < 60.0:
                results.append(check_audit(db, keys, []))
        finally:
            stop.set()
            writer.join()
        try:
            assert len(results) >= 5 and all(r.intact for r in results), [r.message for r in results if not r.intact]
            assert results[-1].checked > results[0].checked  # the chain did grow during the checks
        finally:
            db.dispose()


def test_a_chain_rolled_back_to_drop_entries_and_sealed_again_is_alarmed(world: World) -> None:
    """Someone at the database unseals the last entries, sets the head back, deletes the ones that do not suit them
    and lets the real sealer seal the rest again: every link and signature then holds, and no anchor may have been
    written since. The sealer remembers the head it left: finding it rolled back, it counts it on the head, notes
    it in the chain (`audit.rolled_back`), and the wall and /health raise the alarm."""
    from models.tables import AuditHead

    db = world.client.app.state.db
    world.checkin(face("people/obama/obama2.jpg"))
    db.seal_audit()
    with db.session() as s:
        head = s.get(AuditHead, 1)
        assert head is not None
        top = head.seq
        back_to = top - 3
        back_hash = s.scalar(select(AuditEntry.hash).where(AuditEntry.seq == back_to))
    with db.engine.begin() as conn:
        conn.execute(update(AuditEntry).where(AuditEntry.seq > back_to).values(
            seq=None, prev_hash=None, hash=None, key_id=None))
        dropped = conn.scalars(select(AuditEntry.id).where(AuditEntry.seq.is_(None))
                               .order_by(AuditEntry.id.desc()).limit(1)).all()
        conn.execute(delete(AuditEntry).where(AuditEntry.id.in_(dropped)))
        conn.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=back_to, hash=back_hash))
    db.seal_audit()
    health = world.client.get("/api/v1/health", headers=auth(world.admin)).json()
    assert health["status"] == "degraded" and health["audit"]["untrusted"] == 1, health
    alarms = world.client.get("/api/v1/overview", headers=auth(world.admin)).json()["alarms"]
    assert [a["code"] for a in alarms] == ["AUDIT_UNTRUSTED"] and "回退" in alarms[0]["message"]
    noted = [e for e in entries(world) if e["action"] == "audit.rolled_back"]
    assert [e["detail"]["was_seq"] for e in noted] == [top]


def test_an_auditor_asks_for_a_check_and_the_scheduler_runs_it(client_factory: Callable[..., TestClient]) -> None:
    """At province size a whole check takes too long for an HTTP request: an auditor asks for one (202), the
    scheduler runs it within seconds even with no schedule (interval 0), and the request answers with its result;
    asking again while one waits gets the same request; who asked is in the chain."""
    client = client_factory(audit_check_interval_seconds=0)
    world = World.build(client)
    auditor = issue_token_via_api(client, world.admin, "auditor", "省审计员")
    assert client.post("/api/v1/audit/check-requests", headers=auth(world.site)).status_code == 403
    asked = client.post("/api/v1/audit/check-requests", headers=auth(auditor))
    assert asked.status_code == 202 and asked.json()["state"] in ("requested", "running"), asked.text
    again = client.post("/api/v1/audit/check-requests", headers=auth(auditor))
    assert again.json()["id"] == asked.json()["id"] or again.json()["state"] == "requested"
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        answer = client.get(asked.json()["status_url"], headers=auth(auditor)).json()
        if answer["state"] == "done":
            break
        time.sleep(0.3)
    assert answer["state"] == "done", answer
    assert answer["check"]["intact"] is True and answer["check"]["rows_checked"] > 10, answer
    assert client.get("/api/v1/audit/check-requests/999999", headers=auth(auditor)).status_code == 404
    db = client.app.state.db
    db.seal_audit()
    with db.session() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.subject_kind == "audit_check_requests",
                                                     AuditEntry.subject_id == str(asked.json()["id"]))
                            .order_by(AuditEntry.id)).all()
    assert entries[0].action == "audit_check_requests.insert" and entries[0].actor == "省审计员"
    assert entries[-1].detail.get("check_id") == answer["check"]["id"]


def test_the_scheduler_anchors_the_chain_as_soon_as_it_starts(client_factory: Callable[..., TestClient]) -> None:
    """A center restarted after a crash (no anchor on the way out) anchors its head on the scheduler's first pass,
    not an interval (600 s) later: until then, a tail dropped together with its head was not caught by any anchor
    (outside tester)."""
    from monitor.adapters.audit_keys import read_anchors
    from monitor.services.audit import chain_head

    client = client_factory(audit_anchor_interval_seconds=3600.0)
    db, path = client.app.state.db, client.app.state.settings.audit_anchor_path
    deadline = time.monotonic() + 30
    while not read_anchors(path) and time.monotonic() < deadline:
        time.sleep(0.2)
    anchors = read_anchors(path)
    assert anchors, "no anchor within 30 s of start with a 3600 s interval"
    seq, _ = chain_head(db)
    assert 0 < anchors[0].seq <= seq


def test_a_check_s_record_rewritten_or_deleted_at_the_database_keeps_the_alarm(world: World) -> None:
    """Outside tester: setting the latest failed periodic check to intact in the database silenced the wall's alarm
    and /health until the next check (up to an hour). Each check is sealed with the audit key, and the chain notes
    it: a record whose seal fails, or a check the chain notes and the table no longer has, is itself the alarm."""
    from models.audit_rows import RowFinding
    from models.tables import AuditCheckRow
    from monitor.services.audit import AuditCheck, record_check

    db = world.client.app.state.db
    admin = auth(world.admin)

    def result(findings: list[RowFinding]) -> AuditCheck:
        return AuditCheck(checked=10, broken=None, pending=0, head_seq=10, head_hash="0" * 64, anchors_checked=0,
                          rows_checked=5, findings=findings)

    def alarms() -> list[str]:
        return [a["message"] for a in world.client.get("/api/v1/overview", headers=admin).json()["alarms"]
                if a["code"] == "AUDIT_BROKEN"]

    broken = record_check(db, result([RowFinding("checkins", "1", "changed", ("status",))]), utc_now(), utc_now())
    assert len(alarms()) == 1 and "checkins 第 1 行" in alarms()[0]
    with db.engine.begin() as conn:  # the alarm silenced at the database
        conn.execute(update(AuditCheckRow).where(AuditCheckRow.id == broken).values(
            intact=True, row_findings=0, broken_kind=None, message="审计链完整"))
    assert len(alarms()) == 1 and "与其签名不符" in alarms()[0], alarms()
    health = world.client.get("/api/v1/health", headers=admin).json()
    assert health["status"] == "degraded" and "与其签名不符" in health["audit"]["check_doubt"]
    clean = record_check(db, result([]), utc_now(), utc_now())
    assert alarms() == []  # a real, sealed check that found nothing
    assert world.client.get("/api/v1/health", headers=admin).json()["audit"]["check_doubt"] == ""
    later = record_check(db, result([RowFinding("checkins", "1", "changed", ("status",))]), utc_now(), utc_now())
    with db.engine.begin() as conn:  # the later failed check deleted, to leave the older intact one the latest
        conn.execute(delete(AuditCheckRow).where(AuditCheckRow.id == later))
    assert later > clean and len(alarms()) == 1 and f"编号 {later}" in alarms()[0], alarms()
