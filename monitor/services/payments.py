"""Marking a class payable (可拨付) once its ledger is decided and no cross-check alert on it is open (clause 八:
before a subsidy is paid), and the payment list that states the cross-check and the register periods relied on."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models.clock import SHANGHAI, utc_now
from models.domain import AnomalyCode, TraineeCategory
from models.errors import ApiError
from models.identity import mask_id_number
from models.tables import ClassPayment, RosterEntry, Trainee, TrainingClass
from models.terms import CATEGORY_LABELS, RULE_CATALOGUE
from monitor.adapters.storage import Database
from monitor.services.crosscheck import (
    SOURCE_NAMES,
    latest_run,
    open_crosscheck_alerts,
    payment_of,
    run_crosscheck,
)
from monitor.services.ledger import build_class_ledger
from monitor.settings import Settings

PAYMENT_COLUMNS = [
    ("index", "序号"), ("name", "姓名"), ("id_number_masked", "身份证号（脱敏）"), ("category_text", "人员类别"),
    ("voucher_no", "培训券编号"), ("attended", "实到课时数"), ("scheduled", "应到课时数"),
    ("rate_percent", "出勤率（%）"), ("valid_hours", "有效学时（小时）"), ("crosscheck_text", "登记数据比对结果"),
]


def ledger_digest(rows: list[dict[str, Any]]) -> str:
    """SHA-256 of what the decision rests on per trainee (id, attendance, eligibility, cross-check text)."""
    basis = [[r["trainee_id"], r["scheduled"], r["attended"], r["eligible"], r["crosscheck_text"]] for r in rows]
    return hashlib.sha256(json.dumps(basis, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def mark_payable(db: Database, settings: Settings, class_id: int, author: str, note: str,
                 now: datetime | None = None) -> dict[str, Any]:
    """Cross-check the class once more, then record it payable with the eligible trainees; refused (409) while it
    runs, while a cross-check alert on it is open, while a trainee's eligibility awaits a review, or without any
    register to have been checked against."""
    now = now or utc_now()
    with db.session() as session:
        cls = session.get(TrainingClass, class_id)
        if cls is None:
            raise ApiError(404, "UNKNOWN_CLASS", f"班次 {class_id} 不存在")
        if cls.end_date >= now.astimezone(SHANGHAI).date():
            raise ApiError(409, "CLASS_NOT_ENDED", f"班次培训至 {cls.end_date:%Y-%m-%d} 结束，结束后方可标记为可拨付")
        if payment_of(session, class_id) is not None:
            raise ApiError(409, "ALREADY_PAYABLE", "该班次已标记为可拨付")
    run_crosscheck(db, settings, [class_id], now)
    with db.session() as session:
        run = latest_run(session, class_id)
        if run is None or not run.imports:
            raise ApiError(409, "CROSSCHECK_MISSING", "尚未导入任何登记数据（社保、就业失业、证书、师资库、培训券），"
                           "无法比对，不能标记为可拨付")
        alerts = open_crosscheck_alerts(session, class_id)
        if alerts:
            names = "、".join(dict.fromkeys(RULE_CATALOGUE[AnomalyCode(a.rule)][0] for a in alerts))
            raise ApiError(409, "CROSSCHECK_OPEN", f"该班次有 {len(alerts)} 条登记数据比对预警尚未处置（{names}），"
                           "处置完毕前不能标记为可拨付", alert_ids=[a.id for a in alerts])
        ledger = build_class_ledger(session, class_id, now, settings.min_attendance_rate)
        undecided = [r for r in ledger["rows"] if r["undecided"]]
        if undecided:
            raise ApiError(409, "LEDGER_UNDECIDED", f"有 {len(undecided)} 名学员的补贴资格待复核，复核完毕前不能标记为"
                           "可拨付", trainee_ids=[r["trainee_id"] for r in undecided])
        row = ClassPayment(class_id=class_id, marked_by=author, marked_at=now, note=note,
                           eligible_trainee_ids=[r["trainee_id"] for r in ledger["rows"] if r["eligible"]],
                           crosscheck_run_id=run.id, crosscheck_at=run.ran_at,
                           register_periods={s: i["period"] for s, i in run.imports.items()},
                           ledger_sha256=ledger_digest(ledger["rows"]))
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            raise ApiError(409, "ALREADY_PAYABLE", "该班次已标记为可拨付") from None
        out = payment_of(session, class_id)
        assert out is not None
        return out


def payment_list(db: Database, settings: Settings, class_id: int, now: datetime | None = None
                 ) -> tuple[dict[str, Any], list[tuple[str, str]], list[dict[str, Any]]]:
    """The payable class's list of eligible trainees, with the statement of what it relied on: (class and decision,
    preamble lines, rows)."""
    now = now or utc_now()
    with db.session() as session:
        payment = payment_of(session, class_id)
        if payment is None:
            raise ApiError(409, "NOT_PAYABLE", "该班次尚未标记为可拨付，没有拨付清单")
        ledger = build_class_ledger(session, class_id, now, settings.min_attendance_rate)
        declared = {r.trainee_id: r for r in session.scalars(
            select(RosterEntry).where(RosterEntry.class_id == class_id))}
        numbers = dict(session.execute(select(Trainee.id, Trainee.id_number).join(
            RosterEntry, RosterEntry.trainee_id == Trainee.id).where(RosterEntry.class_id == class_id)).all())
    eligible = set(payment["eligible_trainee_ids"])
    rows: list[dict[str, Any]] = []
    for r in ledger["rows"]:
        if r["trainee_id"] not in eligible:
            continue
        d = declared.get(r["trainee_id"])
        category = TraineeCategory(d.category) if d and d.category else None
        rows.append({**r, "index": len(rows) + 1, "id_number_masked": mask_id_number(numbers.get(r["trainee_id"], "")),
                     "category_text": CATEGORY_LABELS[category] if category else "未申报",
                     "voucher_no": d.voucher_no if d and d.voucher_no else ""})
    at = datetime.fromisoformat(payment["crosscheck_at"]).astimezone(SHANGHAI)
    marked = datetime.fromisoformat(payment["marked_at"]).astimezone(SHANGHAI)
    periods = payment["register_periods"]
    statement = [
        ("班次", f"{ledger['class']['code']} {ledger['class']['name']}（{ledger['class']['institution']}）"),
        ("培训期间", f"{ledger['class']['start_date']} 至 {ledger['class']['end_date']}"),
        ("标记可拨付", f"{marked:%Y-%m-%d %H:%M}（北京时间），{payment['marked_by']}"),
        ("登记数据比对时间", f"{at:%Y-%m-%d %H:%M}（北京时间），比对记录 {payment['crosscheck_run_id']}"),
        ("所依据的登记数据期间", "；".join(f"{SOURCE_NAMES.get(s, s)} {periods[s]}" if s in periods
                                         else f"{SOURCE_NAMES.get(s, s)} 未导入" for s in SOURCE_NAMES)),
        ("符合补贴条件人数", f"{len(rows)} / {ledger['trainees']}"),
        ("台账摘要（SHA-256）", payment["ledger_sha256"]),
    ]
    return ledger["class"], statement, rows
