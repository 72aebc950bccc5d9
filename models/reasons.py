"""Why a heartbeat was judged as it was, in zh-CN, read from its verification and the anomalies raised on it since:
what the site's platform, the wall's day timeline and an operator are each told."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.domain import AnomalyCode
from models.tables import Anomaly, OnlineHeartbeat, Verification
from models.terms import SubjectKind, UploadStatus


def heartbeat_reasons(session: Session, beats: Sequence[OnlineHeartbeat]) -> dict[int, list[dict[str, Any]]]:
    """Why each judged heartbeat failed, or why it went to an operator (while it waits), by heartbeat id: its
    verification's reasons, then any anomaly raised on it since (an operator's rejection)."""
    out: dict[int, list[dict[str, Any]]] = {}
    status = {b.id: b.status for b in beats}
    ids = list(status)
    for part in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        for subject_id, reasons, measured in session.execute(
                select(Verification.subject_id, Verification.reasons, Verification.measured).where(
                    Verification.subject_kind == SubjectKind.HEARTBEAT, Verification.subject_id.in_(part))):
            review = (measured or {}).get("review")
            waiting = [{"code": review["code"], "message": review["message"]}] if review and status[
                subject_id] == UploadStatus.REVIEW else []
            out[subject_id] = list(reasons) + waiting
        for subject_id, rule, message in session.execute(
                select(Anomaly.subject_id, Anomaly.rule, Anomaly.message).where(  # by the (rule, kind, id) key
                    Anomaly.rule.in_([c.value for c in AnomalyCode]), Anomaly.subject_kind == SubjectKind.HEARTBEAT,
                    Anomaly.subject_id.in_(part))
                .order_by(Anomaly.id)):
            known = out.setdefault(subject_id, [])
            if all(r["code"] != rule for r in known):
                known.append({"code": rule, "message": message})
    return out
