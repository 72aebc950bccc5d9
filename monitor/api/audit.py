"""The audit chain for auditors (全程留痕可追溯): browse entries by subject or sequence, and verify the whole chain."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from models.domain import Role
from models.params import Limit
from models.scope import Scope, access, public_route
from models.tables import AuditEntry
from monitor.adapters.audit_keys import read_anchors
from monitor.api.deps import Db, SettingsDep
from monitor.api.schemas.dispatch import AuditAnchorsOut, AuditEntryOut, AuditVerifyOut
from monitor.services.audit import chain_head, daily_anchors, pending_audit, verify_audit

router = APIRouter(prefix="/api/v1", tags=["audit"])
public = APIRouter(tags=["public"])

Auditors = Annotated[Scope, access(Role.AUDITOR, Role.ADMIN)]


@router.get("/audit", response_model=list[AuditEntryOut], summary="Audit chain entries, oldest first")
def list_audit(scope: Auditors, db: Db, limit: Limit = 50,
               after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
               subject_kind: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
               subject_id: Annotated[str | None, Query(max_length=80, pattern=r"^[0-9A-Za-z_/-]+$")] = None,
               ) -> list[dict[str, Any]]:
    with db.session() as session:
        query = select(AuditEntry).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(limit)
        if subject_kind:
            query = query.where(AuditEntry.subject_kind == subject_kind)
        if subject_id:
            query = query.where(AuditEntry.subject_id == subject_id)
        return [{"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "actor_role": e.actor_role,
                 "token_id": e.token_id, "action": e.action, "subject_kind": e.subject_kind,
                 "subject_id": e.subject_id, "detail": e.detail, "prev_hash": e.prev_hash, "hash": e.hash,
                 "key_id": e.key_id}
                for e in session.scalars(query)]


@router.get("/audit/verify", response_model=AuditVerifyOut, summary="Verify the whole chain with its keys and "
            "against the anchors noted outside the database; name the first break and the head")
def verify(scope: Auditors, db: Db, settings: SettingsDep) -> dict[str, Any]:
    anchors = read_anchors(settings.audit_anchor_path)
    checked, broken = verify_audit(db, settings.audit_keyring(create=False).keys, anchors)
    pending = pending_audit(db)
    head_seq, head_hash = chain_head(db)
    head = {"head_seq": head_seq, "head_hash": head_hash, "anchors_checked": len(anchors)}
    if broken is None:
        return {"intact": True, "checked": checked, "pending": pending, "broken_seq": None, "broken_kind": None,
                "message": f"审计链完整：{checked} 条记录，链头第 {head_seq} 条 {head_hash}"
                + (f"，另有 {pending} 条待封链" if pending else ""), **head}
    return {"intact": False, "checked": checked, "pending": pending, "broken_seq": broken.seq,
            "broken_kind": broken.kind, "message": broken.message, **head}


@public.get("/public/audit-anchors.json", summary="审计链锚点公示：每日链头（序号与哈希），供核对",
            response_model=AuditAnchorsOut, dependencies=[public_route()])
def anchors(settings: SettingsDep) -> dict[str, Any]:
    """The chain's head as anchored outside the database, one per day for the last 30 days: published so that
    anyone can note it and compare later (a rewritten and re-hashed chain contradicts it)."""
    return {"anchors": [{"seq": a.seq, "hash": a.hash, "at": a.at_iso}
                        for a in daily_anchors(settings.audit_anchor_path)]}
