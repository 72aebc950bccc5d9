"""The figures /metrics exposes, read from the database at scrape time (so every API process of a cluster answers the
same) plus what only this process knows (its live clients): uploads and verdicts today, the queue's lag, relay
re-sends and handler failures, verification time, active alerts by rule and state, free disk."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from models.clock import local_day_start
from models.tables import Alert, CheckIn, OutboxMessage, Snapshot, Verification
from models.terms import SubjectKind, UploadStatus
from monitor.services.alerts import ACTIVE

LATENCY_WINDOW = timedelta(minutes=5)  # verification time is measured over the uploads of the last minutes
LATENCY_ROWS = 20_000
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass
class Figures:
    uploads: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, status) → today
    oldest_pending_s: float = 0.0
    outbox_unprocessed: int = 0
    relay_resends: int = 0
    handler_failures: int = 0
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule, state) → active alerts
    latencies_s: list[float] = field(default_factory=list)


def histogram(values: list[float], buckets: tuple[float, ...] = LATENCY_BUCKETS) -> tuple[list[tuple[str, int]], float]:
    """Cumulative bucket counts (Prometheus `le` labels, +Inf last) and the sum."""
    out = [(str(b), sum(1 for v in values if v <= b)) for b in buckets]
    out.append(("+Inf", len(values)))
    return out, float(sum(values))


def read_figures(session: Session, now: datetime) -> Figures:
    """Today's figures (local day) and the last minutes' verification times."""
    f = Figures()
    since = local_day_start(now)
    for model, kind in ((CheckIn, "checkin"), (Snapshot, "snapshot")):
        for status, n in session.execute(select(model.status, func.count()).where(model.received_at >= since)
                                         .group_by(model.status)):
            f.uploads[(kind, str(status))] += int(n)
        oldest = session.scalar(select(func.min(model.received_at)).where(
            model.status == UploadStatus.PENDING, model.received_at >= now - timedelta(days=2)))
        if oldest is not None:
            f.oldest_pending_s = max(f.oldest_pending_s, (now - oldest).total_seconds())
    recent = or_(OutboxMessage.processed_at.is_(None), OutboxMessage.processed_at >= since)
    unprocessed, resends, failures = session.execute(select(
        func.count().filter(OutboxMessage.processed_at.is_(None)),
        func.coalesce(func.sum(OutboxMessage.attempts - 1).filter(OutboxMessage.attempts > 1), 0),
        func.coalesce(func.sum(OutboxMessage.failures), 0)).where(recent)).one()
    f.outbox_unprocessed, f.relay_resends, f.handler_failures = int(unprocessed), int(resends), int(failures)
    for rule, state, n in session.execute(select(Alert.rule, Alert.state, func.count())
                                          .where(Alert.state.in_(ACTIVE)).group_by(Alert.rule, Alert.state)):
        f.alerts[(rule, state)] += int(n)
    rows = session.execute(
        select(CheckIn.received_at, Verification.created_at)
        .join(Verification,
              (Verification.subject_kind == SubjectKind.CHECKIN) & (Verification.subject_id == CheckIn.id))
        .where(CheckIn.received_at >= now - LATENCY_WINDOW).order_by(CheckIn.received_at.desc()).limit(LATENCY_ROWS))
    f.latencies_s = [max(0.0, (done - received).total_seconds()) for received, done in rows]
    return f
