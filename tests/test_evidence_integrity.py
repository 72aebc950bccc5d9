"""Evidence files are what their digests say, or nobody is shown or judged on them: a photo or form PDF altered or
removed on disk is refused (410) wherever it is read (serving, the form PDF, public verification, the worker),
recorded once in the audited `evidence_faults`, and the wall's EVIDENCE_ALTERED until the genuine bytes are back."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from ingest.adapters.evidence import EvidenceFault, EvidenceStore
from ingest.outbox import CHECKIN_TOPIC, SUBJECT_KEYS
from models.tables import AuditEntry, CheckIn, EvidenceFaultRow, Verification
from monitor.cli import app as cli_app
from monitor.services.evidence_health import check_evidence
from monitor.services.failures import guard_handler
from monitor.services.worker import PIPELINES, Worker
from tests.helpers import World, auth, face


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_store_reads_only_bytes_that_hash_to_their_name(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    data = b"genuine photo bytes" * 1000
    path = store.put(sha(data), data)
    assert store.get(sha(data)) == data
    path.write_bytes(b"a substituted photo")
    with pytest.raises(EvidenceFault) as altered:
        store.get(sha(data))
    assert altered.value.kind == "altered" and altered.value.found_sha256 == sha(b"a substituted photo")
    store.put(sha(data), data)  # the same content uploaded again restores the genuine file
    assert store.get(sha(data)) == data
    path.unlink()
    with pytest.raises(EvidenceFault) as missing:
        store.get(sha(data))
    assert missing.value.kind == "missing" and missing.value.found_sha256 is None


def alarms(world: World) -> list[dict[str, str]]:
    r = world.client.get("/api/v1/overview", headers=auth(world.operator))
    assert r.status_code == 200, r.text
    return [a for a in r.json()["alarms"] if a["code"] == "EVIDENCE_ALTERED"]


def test_an_altered_photo_is_refused_recorded_once_and_alarmed_until_restored(world: World) -> None:
    body = world.checkin(face("people/biden/biden2.jpg")).json()
    digest = body["photo_sha256"]
    url = f"/api/v1/evidence/{digest}"
    app = world.client.app
    genuine = world.client.get(url, headers=auth(world.operator))
    assert genuine.status_code == 200 and sha(genuine.content) == digest
    assert alarms(world) == []
    path = app.state.evidence.path_for(digest)
    path.write_bytes(face("people/obama/obama3.jpg"))  # someone with disk access swaps the photo

    for _ in range(2):
        r = world.client.get(url, headers=auth(world.operator))
        assert r.status_code == 410 and r.json()["code"] == "EVIDENCE_ALTERED", r.text
        assert "改动" in r.json()["message"] and r.content != face("people/obama/obama3.jpg")
    with app.state.db.session() as s:
        faults = s.scalars(select(EvidenceFaultRow)).all()
        assert [(f.sha256, f.kind, f.detected_by) for f in faults] == [(digest, "altered", "serve")]
        assert faults[0].found_sha256 == sha(face("people/obama/obama3.jpg"))
        chained = s.scalars(select(AuditEntry.action).where(AuditEntry.subject_kind == "evidence_faults")).all()
        assert chained == ["evidence_faults.insert"]
    [alarm] = alarms(world)
    assert digest[:12] in alarm["message"] and "被改动" in alarm["message"]
    health = world.client.get("/api/v1/health", headers=auth(world.operator)).json()
    assert health["status"] == "degraded" and digest[:12] in health["storage"]["evidence_faults"]

    result = check_evidence(app.state.db, app.state.evidence, sample=None)  # still altered: stays open
    assert (result.faults, result.restored) == (1, 0) and len(alarms(world)) == 1
    path.write_bytes(genuine.content)  # the original restored from a backup
    result = check_evidence(app.state.db, app.state.evidence, sample=None)
    assert result.restored == 1 and result.faults == 0 and result.checked >= 1
    assert alarms(world) == []
    assert world.client.get(url, headers=auth(world.operator)).status_code == 200
    with app.state.db.session() as s:
        fault = s.scalars(select(EvidenceFaultRow)).one()
        assert fault.restored_at is not None
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.subject_kind == "evidence_faults")).all()
        assert actions == ["evidence_faults.insert", "evidence_faults.update"]


def test_a_missing_photo_is_a_410_and_found_by_the_sampled_check(world: World) -> None:
    body = world.checkin(face("people/obama/obama2.jpg")).json()
    digest = body["photo_sha256"]
    app = world.client.app
    app.state.evidence.path_for(digest).unlink()
    result = check_evidence(app.state.db, app.state.evidence, sample=10_000)
    assert result.faults == 1
    r = world.client.get(f"/api/v1/evidence/{digest}", headers=auth(world.operator))
    assert r.status_code == 410 and r.json()["code"] == "EVIDENCE_MISSING"
    with app.state.db.session() as s:  # found by the sweep first; serving it again adds nothing
        assert [(f.kind, f.detected_by) for f in s.scalars(select(EvidenceFaultRow))] == [("missing", "sweep")]
    assert "缺失" in alarms(world)[0]["message"]


def test_the_worker_does_not_judge_a_substituted_selfie(client_factory: Callable[..., TestClient]) -> None:
    client = client_factory(run_worker=False, verdict_wait_seconds=0)
    world = World.build(client)
    r = world.checkin(face("people/obama/obama2.jpg"))  # the enrolled trainee's own face: it would pass
    assert r.status_code == 202
    app = client.app
    app.state.evidence.path_for(r.json()["photo_sha256"]).write_bytes(face("people/obama/obama3.jpg"))
    worker = Worker(app.state.settings, app.state.db, app.state.bus, app.state.evidence, app.state.engine)
    run = guard_handler(worker.ctx, CHECKIN_TOPIC, SUBJECT_KEYS[CHECKIN_TOPIC], PIPELINES[CHECKIN_TOPIC])
    run({SUBJECT_KEYS[CHECKIN_TOPIC]: r.json()["id"]})
    with app.state.db.session() as s:
        checkin = s.get(CheckIn, r.json()["id"])
        assert checkin is not None and checkin.status == "failed"
        verification = s.scalar(select(Verification).where(Verification.subject_id == checkin.id))
        assert verification is not None and verification.reasons[0]["code"] == "VERIFICATION_FAILED"
        assert "改动" in verification.reasons[0]["message"]
        assert [f.detected_by for f in s.scalars(select(EvidenceFaultRow))] == ["worker"]


def test_the_cli_checks_every_file_and_fails_while_one_is_altered(world: World) -> None:
    body = world.checkin(face("people/biden/biden2.jpg")).json()
    app = world.client.app
    settings = app.state.settings
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["evidence", "verify", "--data-dir", str(settings.data_dir)])
    assert ok.exit_code == 0, ok.output
    assert "0 份与登记的校验码不符" in ok.output
    app.state.evidence.path_for(body["photo_sha256"]).write_bytes(b"\xff\xd8 not the photo")
    bad = runner.invoke(cli_app, ["evidence", "verify", "--data-dir", str(settings.data_dir)])
    assert bad.exit_code == 1 and "1 份与登记的校验码不符" in bad.output, bad.output
    assert body["photo_sha256"][:12] in bad.output
