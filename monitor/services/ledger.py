"""The ledger (台账) and daily reports: built once from the database, shown as JSON and exported as .xlsx/.csv."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.audit import SYSTEM, append_audit
from models.audit_chain import seal_holds, seal_record
from models.clock import SHANGHAI
from models.errors import ApiError
from models.identity import mask_id_number, mask_name
from models.tables import (
    Alert,
    Anomaly,
    AuditEntry,
    AuditHead,
    CheckIn,
    ClassSession,
    CrossCheckRun,
    Inspection,
    Institution,
    OnlineHeartbeat,
    OnlineSession,
    PublicNotice,
    Region,
    RosterEntry,
    Trainee,
    TrainingClass,
    Venue,
    Verification,
)
from models.terms import SubjectKind, UploadStatus
from monitor.adapters.storage import Database
from monitor.decisions.attendance import Mark, scheduled_slots, trainee_attendance
from monitor.decisions.inspection_form import ClassTerm, inspections_short
from monitor.decisions.online import Beat, DailyStudy, counted_in_order, daily_study, verified_minutes, vouched_at
from monitor.services.crosscheck import (
    chunks,
    crosscheck_results,
    crosscheck_results_by_class,
    latest_run,
    open_crosscheck_alerts,
    payment_of,
)
from monitor.services.events import prefecture_of
from monitor.services.inspections import class_visits

log = logging.getLogger(__name__)
LEDGER_COLUMNS = [
    ("index", "序号"), ("name", "姓名"), ("id_number_masked", "身份证号（脱敏）"), ("scheduled", "应到课时数"),
    ("attended", "实到课时数"), ("pending_review", "待复核课时数"), ("rate_percent", "出勤率（%）"),
    ("valid_hours", "有效学时（小时）"),
    ("eligible_text", "补贴资格"), ("reason", "说明"), ("crosscheck_text", "登记数据比对结果"),
    ("verification_ids", "核验记录编号"), ("photo_sha256s", "照片哈希（SHA-256）"),
]
DAILY_COLUMNS = [
    ("level_name", "层级"), ("code", "行政区划代码"), ("name", "名称"), ("classes", "班次数"),
    ("checkins", "签到签退次数"), ("passed", "核验通过次数"), ("pass_rate_percent", "通过率（%）"),
    ("anomalies", "异常数"), ("anomalies_by_rule_text", "异常分类"), ("inspections", "当日检查次数"),
    ("classes_short", "检查不足班次数"),
]


@dataclass(frozen=True)
class CrossVerdict:
    passes: bool
    pending: bool
    text: str
    reason: str


def crosscheck_verdict(found: list[dict[str, Any]], checked: bool) -> CrossVerdict:
    """What a trainee's cross-check findings mean for the subsidy: a confirmed one excludes, an open one holds."""
    confirmed = [f for f in found if f["state"] == "confirmed"]
    pending = [f for f in found if f["state"] == "open"]
    if confirmed:
        text = "；".join(f"{f['message']}（已确认）" for f in confirmed)
        return CrossVerdict(False, False, text, "登记数据比对确认违规")
    if pending:
        return CrossVerdict(False, True, "；".join(f"{f['message']}（待核查）" for f in pending),
                            "登记数据比对异常待核查")
    if not checked:
        return CrossVerdict(True, False, "尚未比对", "")
    cleared = len(found)
    return CrossVerdict(True, False, "通过" + (f"（{cleared} 项异常已排除）" if cleared else ""), "")


def build_class_ledger(session: Session, class_id: int, now: datetime, min_rate: float) -> dict[str, Any]:
    """Per trainee of the class: sessions scheduled and attended, rate, valid hours, eligibility and evidence."""
    cls = session.get(TrainingClass, class_id)
    if cls is None:
        raise LookupError(class_id)
    institution = session.get(Institution, cls.institution_id)
    sessions = [(s.id, s.name, s.start_local, s.end_local) for s in session.scalars(
        select(ClassSession).where(ClassSession.class_id == class_id).order_by(ClassSession.start_local))]
    slots = scheduled_slots(cls.start_date, cls.end_date, sessions, now.astimezone(SHANGHAI))
    marks: dict[int, list[Mark]] = defaultdict(list)
    for checkin in session.execute(  # columns, not entities: a class's term holds thousands of check-ins
        select(CheckIn.id, CheckIn.trainee_id, CheckIn.kind, CheckIn.captured_at, CheckIn.session_id,
               CheckIn.photo_sha256, CheckIn.status, Verification.id.label("verification_id"))
        .join(Verification,
              (Verification.subject_kind == SubjectKind.CHECKIN) & (Verification.subject_id == CheckIn.id))
        .where(CheckIn.class_id == class_id, CheckIn.status.in_([UploadStatus.PASSED, UploadStatus.REVIEW]))
        .order_by(CheckIn.captured_at)
    ):
        marks[checkin.trainee_id].append(Mark(checkin.kind, checkin.captured_at, checkin.session_id,
                                              checkin.id, checkin.photo_sha256, checkin.verification_id,
                                              pending=checkin.status == UploadStatus.REVIEW))
    trainees = session.scalars(
        select(Trainee).join(RosterEntry, RosterEntry.trainee_id == Trainee.id)
        .where(RosterEntry.class_id == class_id).order_by(Trainee.id)).all()
    cross = crosscheck_results(session, class_id)
    run = latest_run(session, class_id)
    rows = []
    for index, trainee in enumerate(trainees, start=1):
        a = trainee_attendance(slots, marks[trainee.id], min_rate)
        evidence = [m for s in a.sessions for m in s.evidence]
        found = cross.get(trainee.id, [])
        verdict = crosscheck_verdict(found, run is not None)
        eligible = a.eligible and verdict.passes
        undecided = a.undecided or (a.eligible and verdict.pending)
        reason = "；".join(r for r in (a.reason, verdict.reason) if r)
        rows.append({
            "index": index, "trainee_id": trainee.id, "name": trainee.name,
            "id_number_masked": mask_id_number(trainee.id_number), "scheduled": a.scheduled,
            "attended": a.attended, "rate": a.rate,
            "rate_percent": round(a.rate * 100, 1) if a.rate is not None else None,
            "valid_hours": a.valid_hours, "eligible": eligible, "undecided": undecided,
            "eligible_text": "符合" if eligible else "待复核" if undecided else "不符合",
            "reason": reason, "pending_review": a.pending,
            "crosscheck": found, "crosscheck_text": verdict.text,
            "sessions": [{"day": s.slot.day.isoformat(), "session": s.slot.name, "signed_in": s.signed_in,
                          "signed_out": s.signed_out, "minutes": s.minutes, "attended": s.attended}
                         for s in a.sessions],
            "evidence": [{"checkin_id": m.checkin_id, "kind": m.kind, "at": m.at.isoformat(),
                          "verification_id": m.verification_id, "photo_sha256": m.photo_sha256} for m in evidence],
            "verification_ids": " ".join(str(m.verification_id) for m in evidence),
            "photo_sha256s": " ".join(m.photo_sha256 for m in evidence),
        })
    return {
        "class": {"id": cls.id, "code": cls.code, "name": cls.name, "institution": institution.name if institution
                  else "", "start_date": cls.start_date.isoformat(), "end_date": cls.end_date.isoformat()},
        "generated_at": now.isoformat(),
        "sessions_scheduled": len(slots),
        "trainees": len(rows),
        "eligible": sum(1 for r in rows if r["eligible"]),
        "rows": rows,
        "crosscheck": {"ran_at": run.ran_at.isoformat() if run else None,
                       "registers": run.imports if run else {},
                       "open_alerts": [{"id": a.id, "rule": a.rule, "state": a.state}
                                       for a in open_crosscheck_alerts(session, class_id)],
                       "teachers": cross.get(None, [])},
        "payment": payment_of(session, class_id),
        # The spot checks filed for the class (clause 十四: at least two; their signed forms are subsidy evidence).
        "inspections": [{"id": i.id, "kind": i.kind, "inspected_at": i.inspected_at.isoformat(),
                         "inspector": i.inspector, "responsible_name": i.responsible_name,
                         "pdf_sha256": i.pdf_sha256, "pdf_url": f"/api/v1/inspections/{i.id}/form.pdf",
                         "fence_result": str((i.fix or {}).get("fence_result", "unproven"))}
                        for i in session.scalars(select(Inspection).where(Inspection.class_id == class_id)
                                                 .order_by(Inspection.inspected_at))],
    }


def build_daily_report(session: Session, day: date, min_inspections: int, visit_unit: str = "day") -> dict[str, Any]:
    """Per prefecture and county for one local day: classes running, check-ins, pass rate, anomalies by rule,
    inspections filed, and the running classes short of `min_inspections` visits (clause 十四; on different days or
    sessions as `visit_unit` says), listed too."""
    since = datetime.combine(day, time(0), SHANGHAI).astimezone(UTC)  # stored times are UTC
    until = datetime.combine(day, time(23, 59, 59, 999999), SHANGHAI).astimezone(UTC)
    names = dict(session.execute(select(Region.code, Region.name)).all())
    county_of: dict[int, str] = {}
    classes: Counter[str] = Counter()
    for cls_id, county in session.execute(
        select(TrainingClass.id, Venue.region_code).join(Venue, Venue.id == TrainingClass.venue_id)
        .where(TrainingClass.start_date <= day, TrainingClass.end_date >= day)
    ):
        county_of[cls_id] = county
        classes[county] += 1
    checkins: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    for cls_id, status, n in session.execute(
        select(CheckIn.class_id, CheckIn.status, func.count())
        .where(CheckIn.received_at >= since, CheckIn.received_at <= until)
        .group_by(CheckIn.class_id, CheckIn.status)
    ):
        if in_county := county_of.get(cls_id):
            checkins[in_county] += n
            passed[in_county] += n if status == UploadStatus.PASSED else 0
    by_rule: dict[str, Counter[str]] = defaultdict(Counter)
    for cls_id, rule, n in session.execute(
        select(Anomaly.class_id, Anomaly.rule, func.count())
        .where(Anomaly.created_at >= since, Anomaly.created_at <= until).group_by(Anomaly.class_id, Anomaly.rule)
    ):
        if in_county := county_of.get(cls_id):
            by_rule[in_county][rule] += n
    inspected: Counter[str] = Counter()
    for cls_id, n in session.execute(
        select(Inspection.class_id, func.count())
        .where(Inspection.inspected_at >= since, Inspection.inspected_at <= until).group_by(Inspection.class_id)
    ):
        if in_county := county_of.get(cls_id):
            inspected[in_county] += n
    filed = class_visits(session, visit_unit, list(county_of), until)
    terms = [ClassTerm(cls_id, start, end) for cls_id, start, end in session.execute(
        select(TrainingClass.id, TrainingClass.start_date, TrainingClass.end_date)
        .where(TrainingClass.id.in_(list(county_of))))]
    short = inspections_short(terms, filed, day, min_inspections)
    short_in: Counter[str] = Counter(county_of[cls_id] for cls_id, _ in short)

    def row(level: str, code: str, counties: list[str]) -> dict[str, Any]:
        c = sum(checkins[k] for k in counties)
        p = sum(passed[k] for k in counties)
        rules: Counter[str] = Counter()
        for k in counties:
            rules.update(by_rule[k])
        return {"level": level, "level_name": {"prefecture": "州市", "county": "县区"}[level], "code": code,
                "name": names.get(code, code), "classes": sum(classes[k] for k in counties), "checkins": c,
                "passed": p, "pass_rate": round(p / c, 4) if c else None,
                "pass_rate_percent": round(100 * p / c, 1) if c else None,
                "anomalies": sum(rules.values()), "anomalies_by_rule": dict(sorted(rules.items())),
                "anomalies_by_rule_text": "，".join(f"{k} {v}" for k, v in sorted(rules.items())),
                "inspections": sum(inspected[k] for k in counties),
                "classes_short": sum(short_in[k] for k in counties)}

    counties = sorted(set(classes) | set(checkins))
    rows = []
    for pref in sorted({prefecture_of(c) for c in counties}):
        mine = [c for c in counties if prefecture_of(c) == pref]
        rows.append(row("prefecture", pref, mine))
        rows.extend(row("county", c, [c]) for c in mine)
    codes = dict(session.execute(select(TrainingClass.id, TrainingClass.code).where(
        TrainingClass.id.in_([cls_id for cls_id, _ in short]))).all())
    return {"day": day.isoformat(), "rows": rows, "inspections_required": min_inspections,
            "classes_short": [{"class_id": cls_id, "class_code": codes.get(cls_id, ""),
                               "county_code": county_of[cls_id], "filed": n} for cls_id, n in short]}


def public_notice(session: Session, now: datetime, min_rate: float, batch: int = 200,
                  class_ids: Collection[int] | None = None) -> list[dict[str, Any]]:
    """The 公示 list: per class (of `class_ids`, else every class, in id order), trainees, eligible count and masked
    names of the eligible; no ID numbers.

    What `build_class_ledger` decides for each trainee (attendance over the ended sessions, the cross-check
    verdict), read for `batch` classes at a time in a handful of queries (columns, not rows as objects) instead
    of a ledger's nine queries per class."""
    local = now.astimezone(SHANGHAI)
    query = (select(TrainingClass.id, TrainingClass.code, TrainingClass.name, TrainingClass.start_date,
                    TrainingClass.end_date, Institution.name.label("institution"))
             .outerjoin(Institution, Institution.id == TrainingClass.institution_id).order_by(TrainingClass.id))
    if class_ids is None:
        classes = list(session.execute(query).all())
        checked = set(session.scalars(select(CrossCheckRun.class_id).distinct()))
    else:
        classes, checked = [], set()
        for part in chunks(sorted(class_ids)):
            classes.extend(session.execute(query.where(TrainingClass.id.in_(part))).all())
            checked.update(session.scalars(select(CrossCheckRun.class_id).distinct()
                                           .where(CrossCheckRun.class_id.in_(part))))
    out = []
    for start in range(0, len(classes), batch):
        part = classes[start:start + batch]
        ids = [c.id for c in part]
        sessions: dict[int, list[tuple[int, str, str, str]]] = defaultdict(list)
        for s in session.execute(select(ClassSession.id, ClassSession.class_id, ClassSession.name,
                                        ClassSession.start_local, ClassSession.end_local)
                                 .where(ClassSession.class_id.in_(ids)).order_by(ClassSession.start_local)):
            sessions[s.class_id].append((s.id, s.name, s.start_local, s.end_local))
        marks: dict[tuple[int, int], list[Mark]] = defaultdict(list)
        for c in session.execute(
            select(CheckIn.id, CheckIn.class_id, CheckIn.trainee_id, CheckIn.kind, CheckIn.captured_at,
                   CheckIn.session_id, CheckIn.photo_sha256, CheckIn.status, Verification.id.label("verification_id"))
            .join(Verification,
                  (Verification.subject_kind == SubjectKind.CHECKIN) & (Verification.subject_id == CheckIn.id))
            .where(CheckIn.class_id.in_(ids), CheckIn.status.in_([UploadStatus.PASSED, UploadStatus.REVIEW]))
            .order_by(CheckIn.captured_at)
        ):
            marks[(c.class_id, c.trainee_id)].append(Mark(c.kind, c.captured_at, c.session_id, c.id, c.photo_sha256,
                                                          c.verification_id, pending=c.status == UploadStatus.REVIEW))
        roster: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for class_id, trainee_id, name in session.execute(
                select(RosterEntry.class_id, Trainee.id, Trainee.name)
                .join(Trainee, Trainee.id == RosterEntry.trainee_id)
                .where(RosterEntry.class_id.in_(ids)).order_by(Trainee.id)):
            roster[class_id].append((trainee_id, name))
        cross = crosscheck_results_by_class(session, ids)
        for cls in part:
            slots = scheduled_slots(cls.start_date, cls.end_date, sessions[cls.id], local)
            found = cross.get(cls.id, {})
            eligible = []
            for trainee_id, name in roster[cls.id]:
                a = trainee_attendance(slots, marks[(cls.id, trainee_id)], min_rate)
                if a.eligible and crosscheck_verdict(found.get(trainee_id, []), cls.id in checked).passes:
                    eligible.append(mask_name(name))
            out.append({"class_code": cls.code, "class_name": cls.name, "institution": cls.institution or "",
                        "start_date": cls.start_date.isoformat(), "end_date": cls.end_date.isoformat(),
                        "trainees": len(roster[cls.id]), "eligible": len(eligible),
                        "subsidy_status": "待申领" if cls.end_date < local.date() else "培训中",
                        "eligible_names": eligible})
    return out


def notice_version(session: Session, now: datetime, min_rate: float) -> tuple[Any, ...]:
    """What the public notice depends on, as the database shows it to any process: every row it reads (classes,
    sessions, rosters, trainees, check-ins and their verifications, cross-check findings and alerts, payments) is
    audited, each change writing its audit entry in its own transaction, so the highest entry id and the sealed
    sequence (which moves when an entry committed late, after a higher id, is sealed) change with any of them;
    and time, through the local day and the latest session end passed (slots count once they have ended)."""
    local = now.astimezone(SHANGHAI)
    ended = session.scalar(select(func.max(ClassSession.end_local)).where(
        ClassSession.end_local <= local.strftime("%H:%M")))
    audited = session.scalar(select(func.max(AuditEntry.id)))
    sealed = session.scalar(select(AuditHead.seq).where(AuditHead.id == 1))
    return local.date(), ended, audited, sealed, min_rate


@dataclass(frozen=True)
class NoticeKey:
    """`notice_version` read back from a stored build's version text."""

    day: str
    ended: str | None  # the latest session end (HH:MM, local) passed that day
    audited: int | None  # the highest audit entry id
    sealed: int | None  # the chain head's sequence number
    min_rate: float


def parse_version(text: str) -> NoticeKey | None:
    """A stored build's version text as a NoticeKey; None for text that is not one (an old or rewritten row)."""
    try:
        day, ended, audited, sealed, min_rate = json.loads(text)
        key = NoticeKey(str(day), ended, audited, sealed, float(min_rate))
    except (ValueError, TypeError):
        return None
    if not (key.ended is None or isinstance(key.ended, str)) or not all(
            v is None or type(v) is int for v in (key.audited, key.sealed)):
        return None
    return key


def can_update_notice(before: NoticeKey, after: NoticeKey) -> bool:
    """Whether the build at `before` can be brought to `after` class by class: the same local day (a new day moves
    every class's subsidy status) and minimum rate, and a chain that only grew (a head or highest entry that went
    back, a restored database, hides which entries are new)."""
    return (before.day == after.day and before.min_rate == after.min_rate
            and (after.sealed or 0) >= (before.sealed or 0) and (after.audited or 0) >= (before.audited or 0)
            and (after.ended or "") >= (before.ended or ""))


NOTICE_INPUTS: dict[str, frozenset[str]] = {
    "classes": frozenset({"code", "name", "start_date", "end_date", "institution_id"}),
    "institutions": frozenset({"name"}),
    "class_sessions": frozenset({"class_id", "name", "start_local", "end_local"}),
    "roster": frozenset({"class_id", "trainee_id"}),
    "trainees": frozenset({"name"}),
    "checkins": frozenset({"class_id", "trainee_id", "kind", "captured_at", "session_id", "photo_sha256", "status"}),
    "verifications": frozenset({"subject_kind", "subject_id"}),
    "crosscheck_runs": frozenset({"class_id"}),
    "anomalies": frozenset({"class_id", "trainee_id", "subject_kind", "alert_id", "rule", "message", "state",
                            "evidence_sha256", "created_at"}),
    "alerts": frozenset({"class_id", "state", "outcome"}),
}
"""Every table `public_notice` reads (tests/test_hot_paths.py holds it to the queries a build runs) and the columns
it reads of each: a change to a row of one of them, as the audit chain records it, names the classes whose line of
the notice is built again; an update of other columns only (a class's status twice a day, an alert's deadline)
names none."""
CLASS_OF: dict[str, tuple[Any, Any]] = {
    model.__tablename__: (model.id, model.class_id) for model in (CheckIn, ClassSession, CrossCheckRun, Anomaly, Alert)}
"""Tables whose rows carry their class's id: (primary key, class id) columns."""


def classes_changed(session: Session, before: NoticeKey, after: NoticeKey) -> set[int]:
    """The classes whose line of the notice may differ between the builds at `before` and `after`: those named by an
    audit entry of a table the notice reads that was not sealed when `before` was read (sealed after it, or not
    yet), and those with a session that ended in between. An entry sealed by then was committed before the build at
    `before` read its rows."""
    touched: set[int] = set()
    lookup: dict[str, set[int]] = defaultdict(set)
    since = before.sealed if before.sealed is not None else -1
    for kind, subject, action, detail in session.execute(
            select(AuditEntry.subject_kind, AuditEntry.subject_id, AuditEntry.action, AuditEntry.detail)
            .where((AuditEntry.seq > since) | AuditEntry.seq.is_(None),
                   AuditEntry.subject_kind.in_(list(NOTICE_INPUTS)))
            .execution_options(yield_per=5000)):
        first = subject.split("/", 1)[0]
        if not first.isdigit() or (action == f"{kind}.update" and isinstance(detail, dict)
                                   and NOTICE_INPUTS[kind].isdisjoint(detail)):
            continue
        if kind in ("classes", "roster"):  # a class's own row; a roster row's key is class_id/trainee_id
            touched.add(int(first))
            continue
        named = detail.get("class_id") if isinstance(detail, dict) else None
        if type(named) is int:  # an insert or a delete records the whole row; an update, what changed
            touched.add(named)
        if kind == "verifications" and isinstance(detail, dict) and detail.get("subject_kind") == SubjectKind.CHECKIN \
                and type(detail.get("subject_id")) is int:
            lookup["checkins"].add(detail["subject_id"])
        elif named is None:
            lookup[kind].add(int(first))
    for part in chunks(sorted(lookup.pop("verifications", set()))):
        lookup["checkins"].update(session.scalars(select(Verification.subject_id).where(
            Verification.id.in_(part), Verification.subject_kind == SubjectKind.CHECKIN)))
    for kind, ids in lookup.items():
        for part in chunks(sorted(ids)):
            if kind in CLASS_OF:
                key, class_id = CLASS_OF[kind]
                touched.update(session.scalars(select(class_id).where(key.in_(part))))
            elif kind == "trainees":
                touched.update(session.scalars(select(RosterEntry.class_id).where(RosterEntry.trainee_id.in_(part))))
            elif kind == "institutions":
                touched.update(session.scalars(select(TrainingClass.id).where(TrainingClass.institution_id.in_(part))))
    if after.ended is not None and after.ended != before.ended:
        ended = ClassSession.end_local <= after.ended
        if before.ended is not None:
            ended &= ClassSession.end_local > before.ended
        touched.update(session.scalars(select(ClassSession.class_id).distinct().where(ended)))
    return touched


def update_notice(session: Session, now: datetime, min_rate: float, before: list[dict[str, Any]],
                  changed: set[int]) -> list[dict[str, Any]]:
    """The notice at `now` from the build `before`: the lines of the `changed` classes (and of any class the build
    does not hold) built again, every other line kept; classes in id order, as `public_notice` gives them."""
    kept = {row["class_code"]: row for row in before}
    current = session.execute(select(TrainingClass.id, TrainingClass.code).order_by(TrainingClass.id)).all()
    again = changed | {class_id for class_id, code in current if code not in kept}
    fresh = {row["class_code"]: row for row in public_notice(session, now, min_rate, class_ids=again)}
    return [fresh[code] if class_id in again else kept[code] for class_id, code in current
            if class_id not in again or code in fresh]


CLAIM_STALE_AFTER = timedelta(minutes=10)  # a claim this old was left by a process that died while building
CLOCK_SKEW = timedelta(minutes=1)  # how far apart the cluster's clocks may be
NEVER_BUILT = datetime(1970, 1, 1, tzinfo=UTC)  # `built_at` of the row claimed for the first build, until it is stored
FIRST_BUILD_RETRY_S = 30  # what a refusal during the first build asks the reader to wait, seconds


def first_build_pending() -> ApiError:
    """The answer while the first notice ever is built by another request: there is no earlier one to give."""
    return ApiError(503, "NOTICE_BEING_BUILT", "公示名单正在首次生成，请稍后刷新",
                    headers={"Retry-After": str(FIRST_BUILD_RETRY_S)})


def version_text(version: tuple[Any, ...]) -> str:
    """`notice_version` as stored with a build (JSON: dates and times as text)."""
    return json.dumps(list(version), default=str)


def notice_fields(version: str, built_at: datetime, classes: list[dict[str, Any]]) -> list[Any]:
    """What a stored notice's seal covers."""
    return [version, built_at.astimezone(UTC).isoformat(), classes]


def notice_seal(db: Database, version: str, built_at: datetime, classes: list[dict[str, Any]]) -> str | None:
    """A build's seal with this process's audit key (None for a tool without one)."""
    if db.audit_key is None:
        return None
    return seal_record(db.audit_key[0], db.audit_key[1], notice_fields(version, built_at, classes))


class NoticeCache:
    """The public notice, built once for the whole cluster and kept in the database (`public_notices`) with the
    version it was built at (`notice_version`). Asked again with nothing changed, any process answers the stored
    build without reading a ledger. After a change, one process at a time (the one whose request claims the row)
    builds it again, at most once every `min_interval_s` seconds; every other request, in that process or another,
    gets the last build with its own time meanwhile. The route is public and a build at province size takes most of
    a minute: neither requests nor API processes may each start one. Each process keeps the last build it read."""

    def __init__(self, min_interval_s: float = 60.0) -> None:
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._built_at: datetime | None = None  # the stored build this process holds parsed
        self._classes: list[dict[str, Any]] = []
        self.builds = 0  # builds made by this process
        self.lines_built = 0  # classes whose line the last of them built (the others were kept from the build before)

    def get(self, db: Database, now: datetime, min_rate: float) -> tuple[list[dict[str, Any]], datetime]:
        """The notice's classes and when they were built."""
        with db.session() as session:  # the version first: what is built is never older than its key
            key = version_text(notice_version(session, now, min_rate))
            row = session.execute(select(PublicNotice.version, PublicNotice.built_at)
                                  .where(PublicNotice.id == 1)).first()
        if row is None:  # the first build ever: one request in the cluster claims it, the others are told to wait
            if not self._claim_first(db, now):
                raise first_build_pending()
        elif row.version == key or not self._claim(db, now):
            if row.built_at == NEVER_BUILT:
                raise first_build_pending()
            stored = self._stored(db, row.built_at)
            if stored is not None:
                return stored
        return self._build(db, now, min_rate, key, row)

    def _claim_first(self, db: Database, now: datetime) -> bool:
        """Whether this request builds the first notice: it inserts the row, claimed and never built, before any
        other (at province size a build takes most of a minute: N API processes starting must not make N)."""
        values = {"id": 1, "version": "", "built_at": NEVER_BUILT, "classes": [], "building_since": now}
        with db.session() as session:
            insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
            inserted = session.scalar(insert(PublicNotice).values(values).on_conflict_do_nothing(
                index_elements=["id"]).returning(PublicNotice.id))
            return inserted is not None

    def _claim(self, db: Database, now: datetime) -> bool:
        """Whether this request builds the next notice: none is being built (or its builder died) and the last
        build is at least `min_interval_s` old. One conditional update decides, in any number of processes. A claim
        or build time in the future (set at the database) counts as nobody's: it must not hold the notice for ever."""
        with db.session() as session:
            ahead = now + CLOCK_SKEW  # a time further ahead than the cluster's clocks differ was not written by it
            claimed = session.execute(update(PublicNotice).where(
                PublicNotice.id == 1,
                (PublicNotice.built_at <= now - timedelta(seconds=self.min_interval_s))
                | (PublicNotice.built_at > ahead),
                PublicNotice.building_since.is_(None) | (PublicNotice.building_since < now - CLAIM_STALE_AFTER)
                | (PublicNotice.building_since > ahead),
            ).values(building_since=now))
            return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]

    def _build(self, db: Database, now: datetime, min_rate: float, key: str, last: Any
               ) -> tuple[list[dict[str, Any]], datetime]:
        """Build the notice at `key`: from the last build (`last`: its version and time), when its seal holds and it
        can be brought forward, only the lines of the classes changed since; else every class."""
        started = monotonic()
        try:
            before, after = (parse_version(last.version) if last is not None else None), parse_version(key)
            base = self._stored(db, last.built_at) if before and after and can_update_notice(before, after) else None
            with db.session() as session:
                if base is not None and before is not None and after is not None:
                    changed = classes_changed(session, before, after)
                    classes = update_notice(session, now, min_rate, base[0], changed)
                    self.lines_built = len(changed)
                else:
                    classes = public_notice(session, now, min_rate)
                    self.lines_built = len(classes)
        except BaseException:
            with db.session() as session:  # the claim is let go: the next request tries again
                session.execute(update(PublicNotice).where(PublicNotice.id == 1).values(building_since=None))
            raise
        try:
            seal = notice_seal(db, key, now, classes)
            with db.session() as session:
                row = session.get(PublicNotice, 1)
                if row is None:
                    session.add(PublicNotice(id=1, version=key, built_at=now, classes=classes, building_since=None,
                                             seal=seal))
                else:
                    row.version, row.built_at, row.classes, row.building_since = key, now, classes, None
                    row.seal = seal
        except IntegrityError:  # two first builds ever at once: the other one's is stored, as good as this one
            pass
        with self._lock:
            self._built_at, self._classes = now, classes
            self.builds += 1
        log.info("public notice built: %d of %d classes' lines in %.1f s", self.lines_built, len(classes),
                 monotonic() - started)
        return classes, now

    def _stored(self, db: Database, built_at: datetime) -> tuple[list[dict[str, Any]], datetime] | None:
        """The stored build, read (a few MB of JSON at province size) only when it is not the one held; None when its
        seal does not hold (rewritten at the database: the caller builds it again, and the chain notes it)."""
        with self._lock:
            if self._built_at == built_at:
                return self._classes, built_at
        with db.session() as session:
            row = session.execute(select(PublicNotice.classes, PublicNotice.built_at, PublicNotice.version,
                                         PublicNotice.seal).where(PublicNotice.id == 1)).one()
            if db.audit_key is not None and not seal_holds(
                    row.seal, db.audit_keys({row.seal.rsplit(":", 1)[0]} if row.seal else set()),
                    notice_fields(row.version, row.built_at, row.classes)):
                log.error("public notice built at %s fails its seal: not served, built again", row.built_at)
                append_audit(session, "public_notices.seal_broken", "public_notices", 1,
                             {"built_at": row.built_at, "version": row.version}, actor=SYSTEM)
                return None
        with self._lock:
            self._built_at, self._classes = row.built_at, list(row.classes)
            return self._classes, self._built_at


def online_sessions_of_day(session: Session, trainee_id: int, day: date, max_gap_min: float) -> list[tuple[int, float]]:
    """(class id, verified minutes) of each of the trainee's online sessions started on a local day, in the order
    they started, whichever class (and institution) each was for."""
    since = datetime.combine(day, time(0), SHANGHAI)
    until = datetime.combine(day, time(23, 59, 59, 999999), SHANGHAI)
    out = []
    for s in session.scalars(select(OnlineSession).where(
            OnlineSession.trainee_id == trainee_id, OnlineSession.started_at >= since,
            OnlineSession.started_at <= until).order_by(OnlineSession.started_at, OnlineSession.id)):
        beats = [Beat(vouched_at(b.captured_at, b.received_at), b.status == UploadStatus.PASSED)
                 for b in session.scalars(select(OnlineHeartbeat).where(
                     OnlineHeartbeat.session_id == s.id, OnlineHeartbeat.status != UploadStatus.PENDING))]
        out.append((s.class_id, verified_minutes(s.started_at, s.ended_at, beats, max_gap_min)))
    return out


def online_day(session: Session, trainee_id: int, day: date, max_gap_min: float, cap_min: float,
               now: datetime) -> DailyStudy:
    """One trainee's verified and counted online minutes on a local day (sessions started that day, every class):
    the 8-hour cap is the person's day, not one class's."""
    return daily_study([m for _, m in online_sessions_of_day(session, trainee_id, day, max_gap_min)], cap_min)


def online_minutes_report(session: Session, class_id: int, day: date, max_gap_min: float, cap_min: float,
                          now: datetime) -> dict[str, Any]:
    """Per rostered trainee of a class: the online minutes verified in this class on the day and those counted (the
    day's first `cap_min` minutes count, in the order studied, whichever class they were for), and the 8-hour flag
    of the trainee's whole day. Study for another class is not this class's: a trainee on two rosters was paid
    twice when each class listed the day's every minute."""
    rows = []
    for trainee in session.scalars(select(Trainee).join(RosterEntry, RosterEntry.trainee_id == Trainee.id)
                                   .where(RosterEntry.class_id == class_id).order_by(Trainee.id)):
        sessions = online_sessions_of_day(session, trainee.id, day, max_gap_min)
        counted = counted_in_order([m for _, m in sessions], cap_min)
        mine = [k for k, (c, _) in enumerate(sessions) if c == class_id]
        study = daily_study([m for _, m in sessions], cap_min)
        rows.append({"trainee_id": trainee.id, "name": trainee.name,
                     "verified_minutes": round(sum(sessions[k][1] for k in mine), 2),
                     "counted_minutes": round(sum(counted[k] for k in mine), 2), "over_cap": study.over_cap,
                     "day_verified_minutes": study.verified_min})
    return {"class_id": class_id, "day": day.isoformat(), "daily_cap_minutes": cap_min, "rows": rows}
