"""The demo's register extracts (issue 20, clause 八/九): the first class's trainees declare categories and vouchers
and the class its level, then small extracts of the five registers naming the demo's own people are imported through
the real preview and commit (files made in memory, GB18030 CSV as the departments deliver them), and every class is
cross-checked, so the wall shows one of each kind of register finding on live-looking data:

- the first trainee (by id) declared 登记失业人员 while insured as an employee near the venue: CATEGORY_CONTRADICTED;
- the second declared 企业职工 but insured by an employer in 德宏州芒市 during the class: EMPLOYED_ELSEWHERE;
- the third declared a voucher issued to the fourth: VOUCHER_INVALID (the fourth's own voucher is fine);
- the fifth holds a certificate of the class's occupation and level from 100 days ago: REPEAT_SUBSIDY;
- the class's practical teacher failed this year's annual check: TEACHER_CHECK_FAILED (every other teacher passed).

Idempotent on a kept database: declarations are set again to the same values, an extract whose content (SHA-256) is
already its source's active one is not imported again, and a finding is raised once."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from models.audit import AuditActor, current_actor
from models.tables import Occupation, RosterEntry, Teacher, Trainee, TrainingClass
from monitor.adapters.storage import Database
from monitor.services.crosscheck import RunSummary, refresh_employment, run_crosscheck
from monitor.services.registers import active_imports, commit_import, preview_import
from monitor.settings import Settings

AUTHOR = "演示数据（部门登记表）"
DEMO_LEVEL = 5  # the first class is 中式烹调师（初级）: 五级
FAR_COUNTY = "533103"  # 德宏州芒市, ~420 km from 五华区
HEADERS = {
    "insurance": ["公民身份号码", "参保单位名称", "参保地行政区划代码", "缴费期间", "参保身份"],
    "employment": ["身份证号码", "登记状态", "登记日期", "登记地行政区划代码"],
    "certificates": ["身份证号码", "职业编码", "等级", "证书编号", "发证日期"],
    "teachers": ["身份证号码", "资质", "年审结果", "年审年度"],
    "vouchers": ["培训券编号", "持券人身份证号码", "职业编码", "状态", "发放日期"],
}


@dataclass
class Seeded:
    """What seeding did: the extracts imported this time (source → import id) and the cross-check's summary."""

    imported: dict[str, int]
    crosscheck: RunSummary


def csv_bytes(header: list[str], rows: Sequence[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("gb18030")


def extracts(session: Any, class_id: int) -> dict[str, list[list[object]]] | None:
    """The demo's rows of each register for the first class (its roster in order of enrolment), after setting the
    declarations and level they contradict; None when the class has too few trainees."""
    cls = session.get(TrainingClass, class_id)
    roster = list(session.scalars(select(RosterEntry).where(RosterEntry.class_id == class_id)
                                  .order_by(RosterEntry.trainee_id)))
    if cls is None or len(roster) < 5:
        return None
    occupation = session.get(Occupation, cls.occupation_id)
    ids = dict(session.execute(select(Trainee.id, Trainee.id_number).where(
        Trainee.id.in_([r.trainee_id for r in roster]))).all())
    contradicted, far, borrower, holder, certified = roster[:5]
    vouchers = {borrower.trainee_id: "YN-DEMO-0001", holder.trainee_id: "YN-DEMO-0002"}
    declared = {contradicted.trainee_id: "unemployed", far.trainee_id: "employee", borrower.trainee_id: "rural",
                holder.trainee_id: "unemployed", certified.trainee_id: "graduate"}
    for entry in roster:
        if entry.trainee_id in declared:
            entry.category, entry.voucher_no = declared[entry.trainee_id], vouchers.get(entry.trainee_id)
    cls.level = DEMO_LEVEL
    months = f"{cls.start_date:%Y-%m}~{cls.end_date:%Y-%m}"
    before = cls.start_date - timedelta(days=100)
    teachers = {t.id: t.id_number for t in session.scalars(select(Teacher).where(Teacher.id.in_(
        select(TrainingClass.theory_teacher_id).union(select(TrainingClass.practical_teacher_id)))))}
    year = str(cls.start_date.year)
    return {
        "insurance": [
            [ids[contradicted.trainee_id], "昆明滇味餐饮有限公司（演示）", "530102", months, "企业职工"],
            [ids[far.trainee_id], "德宏瑞丽边贸有限公司（演示）", FAR_COUNTY, months, "企业职工"],
            [ids[holder.trainee_id], "五华区社保中心（个人缴费）", "530102", months, "城乡居民"],
        ],
        "employment": [[ids[e.trainee_id], "失业登记", (cls.start_date - timedelta(days=60)).isoformat(), "530102"]
                       for e in (contradicted, borrower, holder)],
        "certificates": [[ids[certified.trainee_id], occupation.code, str(DEMO_LEVEL), "Y0000530100DEMO1",
                          before.isoformat()]],
        "teachers": [[number, "高级技师", "不合格" if tid == cls.practical_teacher_id else "合格", year]
                     for tid, number in sorted(teachers.items())],
        "vouchers": [[vouchers[borrower.trainee_id], ids[holder.trainee_id], occupation.code, "已发放",
                      (cls.start_date - timedelta(days=30)).isoformat()],
                     [vouchers[holder.trainee_id], ids[holder.trainee_id], occupation.code, "已发放",
                      (cls.start_date - timedelta(days=30)).isoformat()]],
    }


def seed_crosschecks(db: Database, settings: Settings, class_id: int, today: date | None = None) -> Seeded:
    """Declare, import and cross-check as the module says; on a kept database only what changed is imported."""
    token = current_actor.set(AuditActor(AUTHOR, "admin"))
    try:
        with db.session() as session:
            rows = extracts(session, class_id)
            active = {source: (imp.sha256, imp.period) for source, imp in active_imports(session).items()}
        imported: dict[str, int] = {}
        if rows is not None:
            key = settings.register_hash_key()
            specs = settings.register_specs()
            month = f"{today or date.today():%Y-%m}"
            for source, body in rows.items():
                data = csv_bytes(HEADERS[source], body)
                sha256, period = active.get(source, ("", month))
                if sha256 == hashlib.sha256(data).hexdigest():
                    continue  # a kept database already has this very extract
                period = max(period, month)  # never older than the active extract (a commit would refuse it)
                import_id = preview_import(db, io.BytesIO(data), f"演示{source}.csv", source, period, specs[source],
                                           key, AUTHOR)
                commit_import(db, import_id, key, AUTHOR)
                imported[source] = import_id
        summary = run_crosscheck(db, settings)
        refresh_employment(db, settings)
        return Seeded(imported, summary)
    finally:
        current_actor.reset(token)
