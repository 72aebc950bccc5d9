"""Benchmark: a province's register extracts imported and every class cross-checked against them (issue 20 item 5:
"a province extract of millions of rows imports in minutes with bounded memory").

On a fresh SQLite database in a temporary folder it makes a province-like world directly in the database (one
institution and venue per Yunnan county, `--classes` classes of `--trainees-per-class` trainees with valid GB 11643 ID
numbers, their teachers, declared categories and vouchers; a third of the classes ended over six months ago and marked
payable, for the post-training employment), writes `--rows` rows per register as GB18030 CSV files (a share
`--match-share` of them names the world's people, and a share `--plant-share` of those contradicts the declarations;
the rest are other people), imports each (preview: validate, hash, stage; then commit), then cross-checks every
class (`run_crosscheck`, twice: the second run raises nothing) and recomputes the institutions' employment
(`refresh_employment`).

Usage: .venv/bin/python scripts/bench_crosscheck.py [--rows 1000000] [--classes 3000] [--trainees-per-class 60]
       [--registers insurance,employment,certificates,teachers,vouchers] [--keep DIR]

Prints, per phase, the time, the throughput and the peak RSS of that phase (Linux: VmHWM, reset between phases).
A quick run: --rows 20000 --classes 100 (well under a minute).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, insert, select  # noqa: E402

from models.audit import AuditActor, current_actor  # noqa: E402
from models.clock import utc_now  # noqa: E402
from models.tables import (  # noqa: E402
    Anomaly,
    ClassPayment,
    Institution,
    Occupation,
    RosterEntry,
    Teacher,
    Trainee,
    TrainingClass,
    Venue,
)
from monitor.adapters.storage import Database  # noqa: E402
from monitor.decisions.geodesy import distance_m  # noqa: E402
from monitor.demo.world import make_id_number  # noqa: E402
from monitor.services.crosscheck import county_centres, refresh_employment, run_crosscheck  # noqa: E402
from monitor.services.registers import commit_import, preview_import  # noqa: E402
from monitor.settings import Settings  # noqa: E402

REGISTERS = ("insurance", "employment", "certificates", "teachers", "vouchers")
OCCUPATIONS = [("4-03-02-01", "中式烹调师"), ("6-31-01-03", "电工"), ("4-10-01-03", "育婴员"), ("6-18-02-04", "焊工"),
               ("4-03-02-07", "茶艺师")]
CATEGORIES = ("unemployed", "rural", "graduate", "employee", "other", None)
LEVEL_NAMES = {1: "一级", 2: "二级", 3: "三级", 4: "四级", 5: "五级"}
KUNMING, MANGSHI = "530102", "533103"
BIRTH0 = date(1960, 1, 1)


# -- memory ------------------------------------------------------------------------------------------------------
def _status(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> None:
    """Reset the process's peak RSS (Linux: writing 5 to clear_refs resets VmHWM), so each phase reports its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    """The peak RSS since the last reset_peak (VmHWM), else the process's peak (getrusage)."""
    hwm = _status("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


PEAKS: list[float] = []


def measured(body: Callable[[], Any]) -> tuple[Any, float, float]:
    """The body's result, its seconds and its peak RSS (MiB)."""
    reset_peak()
    t0 = time.perf_counter()
    result = body()
    secs, peak = time.perf_counter() - t0, peak_rss_mib()
    PEAKS.append(peak)
    return result, secs, peak


# -- the world ---------------------------------------------------------------------------------------------------
def yunnan_counties() -> list[str]:
    data = json.loads((REPO / "monitor" / "data" / "yunnan_regions.json").read_text(encoding="utf-8"))
    return [c["code"] for p in data["prefectures"] for c in p["counties"]]


@dataclass
class World:
    """Who is who, computed rather than stored: person p's ID number, trainee t's class, class c's term."""

    classes: int
    per_class: int
    counties: list[str]
    today: date

    @property
    def trainees(self) -> int:
        return self.classes * self.per_class

    @property
    def teachers(self) -> int:
        return max(2, self.classes // 5)

    def id_number(self, p: int) -> str:
        """Person p's ID number (unique for p below ~2 billion): county by p, birth date and sequence by the rest."""
        county = self.counties[p % len(self.counties)]
        rest = p // len(self.counties)
        return make_id_number(county, BIRTH0 + timedelta(days=rest // 1000), rest % 1000)

    def trainee_person(self, t: int) -> int:
        return t

    def teacher_person(self, k: int) -> int:
        return self.trainees + k

    def other_person(self, n: int) -> int:
        return self.trainees + self.teachers + 1000 + n

    def county(self, c: int) -> str:
        return self.counties[c % len(self.counties)]

    def paid(self, c: int) -> bool:
        return c % 3 == 0

    def term(self, c: int) -> tuple[date, date]:
        if self.paid(c):  # ended 7-12 months ago: its trainees' employment can be observed
            end = self.today - timedelta(days=215 + c % 150)
        else:  # ended within the look-back or in session
            end = self.today + timedelta(days=5) - timedelta(days=c % 150)
        return end - timedelta(days=19), end

    def level(self, c: int) -> int:
        return c % 5 + 1

    def occupation(self, c: int) -> str:
        return OCCUPATIONS[c % len(OCCUPATIONS)][0]

    def category(self, t: int) -> str | None:
        return CATEGORIES[(t * 2654435761 >> 8) % len(CATEGORIES)]  # mixed: no pattern shared with the plants

    def voucher(self, t: int) -> str | None:
        return f"YN{t:010d}" if t % 4 == 0 else None

    def class_of(self, t: int) -> int:
        return t // self.per_class


def build_world(db: Database, w: World) -> None:
    """Institutions, venues, occupations, teachers, trainees, classes and rosters, by bulk inserts."""
    now = utc_now()
    centres = county_centres()
    with db.session() as session:
        conn = session.connection()
        conn.execute(insert(Occupation), [{"code": code, "name": name} for code, name in OCCUPATIONS])
        occ_ids = dict(session.execute(select(Occupation.code, Occupation.id)).all())
        conn.execute(insert(Institution), [
            {"name": f"{county}职业技能培训学校", "licence_no": f"BENCH-{county}", "region_code": county,
             "created_at": now} for county in w.counties])
        inst_ids = dict(session.execute(select(Institution.region_code, Institution.id)).all())
        venues = []
        for county in w.counties:
            lat, lon = centres.get(county) or centres.get(county[:4] + "00") or (25.04, 102.71)
            venues.append({"institution_id": inst_ids[county], "name": f"{county}教学楼", "region_code": county,
                           "datum": "WGS-84", "shape": "circle", "center_lat": lat, "center_lon": lon,
                           "radius_m": 150.0, "polygon": None, "original": {}, "created_at": now})
        conn.execute(insert(Venue), venues)
        venue_ids = dict(session.execute(select(Venue.region_code, Venue.id)).all())
        conn.execute(insert(Teacher), [{"id": k + 1, "id_number": w.id_number(w.teacher_person(k)),
                                        "name": f"教师{k}", "qualifications": ["技师"], "created_at": now}
                                       for k in range(w.teachers)])
        for lo in range(0, w.trainees, 20_000):
            conn.execute(insert(Trainee), [{"id": t + 1, "id_number": w.id_number(w.trainee_person(t)),
                                            "name": f"学员{t}", "created_at": now}
                                           for t in range(lo, min(w.trainees, lo + 20_000))])
        rows = []
        for c in range(w.classes):
            start, end = w.term(c)
            county = w.county(c)
            rows.append({"id": c + 1, "code": f"BENCH-{c:06d}", "name": f"{OCCUPATIONS[c % 5][1]}培训班{c}",
                         "institution_id": inst_ids[county], "venue_id": venue_ids[county],
                         "occupation_id": occ_ids[w.occupation(c)], "mode": "offline", "start_date": start,
                         "end_date": end, "theory_teacher_id": c % w.teachers + 1,
                         "practical_teacher_id": (c + 1) % w.teachers + 1, "status": "scheduled",
                         "liveness_required": False, "level": w.level(c), "created_at": now})
        conn.execute(insert(TrainingClass), rows)
        for lo in range(0, w.trainees, 20_000):
            conn.execute(insert(RosterEntry), [
                {"class_id": w.class_of(t) + 1, "trainee_id": t + 1, "category": w.category(t),
                 "voucher_no": w.voucher(t)} for t in range(lo, min(w.trainees, lo + 20_000))])
        conn.execute(insert(ClassPayment), [
            {"class_id": c + 1, "marked_by": "bench", "marked_at": now, "note": "",
             "eligible_trainee_ids": list(range(c * w.per_class + 1, (c + 1) * w.per_class + 1)),
             "crosscheck_run_id": 0, "crosscheck_at": now, "register_periods": {}, "ledger_sha256": "0" * 64}
            for c in range(w.classes) if w.paid(c)])


# -- the extracts ------------------------------------------------------------------------------------------------
HEADERS = {
    "insurance": ["序号", "公民身份号码", "参保单位名称", "参保地行政区划代码", "缴费期间", "参保身份"],
    "employment": ["序号", "身份证号码", "登记状态", "登记日期", "登记地行政区划代码"],
    "certificates": ["序号", "身份证号码", "职业编码", "等级", "证书编号", "发证日期"],
    "teachers": ["序号", "身份证号码", "资质", "年审结果", "年审年度"],
    "vouchers": ["序号", "培训券编号", "持券人身份证号码", "职业编码", "状态", "发放日期"],
}


def month(d: date, shift: int = 0) -> str:
    m = d.year * 12 + d.month - 1 + shift
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


class Extracts:
    """Each register's rows: the first `matched` name the world's people (every `plant`-th of them a planted
    contradiction), the rest other people."""

    def __init__(self, w: World, rows: int, match_share: float, plant_share: float) -> None:
        self.w, self.rows = w, rows
        self.matched = int(rows * match_share)
        self.plant = max(1, round(1 / plant_share)) if plant_share > 0 else 0
        centres = county_centres()
        self.far = {county: max((KUNMING, MANGSHI), key=lambda o: distance_m(centres.get(county, (25.04, 102.71)),
                                                                              centres[o]))
                    for county in w.counties}

    def planted(self, n: int) -> bool:
        return bool(self.plant) and n % self.plant == 0

    def other(self, n: int) -> str:
        return self.w.id_number(self.w.other_person(n))

    def insurance(self, n: int) -> list[object]:
        w = self.w
        if n >= self.matched:
            county = w.counties[n % len(w.counties)]
            return [self.other(n), f"云南某某有限公司{n % 5000}", county, "2025-07~2026-01", "企业职工"]
        t = n % w.trainees
        c = w.class_of(t)
        start, end = w.term(c)
        county = w.county(c)
        if self.planted(n) and not w.paid(c):  # insured as an employee far away during the class
            return [w.id_number(t), f"德宏某某贸易有限公司{n % 50}", self.far[county],
                    f"{month(start)}~{month(end)}", "企业职工"]
        if w.paid(c):  # employed after the class, or not (the rate varies by institution)
            if t % 10 < 3 + c % 5:
                return [w.id_number(t), f"{county}某某餐饮有限公司", county, f"{month(end, 2)}~{month(end, 5)}",
                        "企业职工"]
            return [w.id_number(t), f"{county}社保中心（个人缴费）", county, f"{month(end, -12)}~{month(end, 5)}",
                    "城乡居民"]
        return [w.id_number(t), f"{county}某某有限公司", county, f"{month(start, -24)}~{month(start, -3)}", "企业职工"]

    def employment(self, n: int) -> list[object]:
        w = self.w
        p = w.trainee_person(n % w.trainees) if n < self.matched else w.other_person(n)
        return [w.id_number(p), "失业登记" if n % 3 else "就业登记",
                (w.today - timedelta(days=30 + n % 700)).isoformat(), w.counties[n % len(w.counties)]]

    def certificates(self, n: int) -> list[object]:
        w = self.w
        if n >= self.matched:
            return [self.other(n), OCCUPATIONS[n % 5][0], LEVEL_NAMES[n % 5 + 1], f"Y{n:012d}",
                    (w.today - timedelta(days=n % 3000)).isoformat()]
        t = n % w.trainees
        c = w.class_of(t)
        start, _ = w.term(c)
        if self.planted(n):  # the same occupation and level 100 days before the class
            return [w.id_number(t), w.occupation(c), LEVEL_NAMES[w.level(c)], f"Y{n:012d}",
                    (start - timedelta(days=100)).isoformat()]
        return [w.id_number(t), w.occupation(c), LEVEL_NAMES[w.level(c) % 5 + 1], f"Y{n:012d}",
                (start - timedelta(days=100)).isoformat()]

    def teachers(self, n: int) -> list[object]:
        w = self.w
        if n < w.teachers and n % 97 != 1:  # every teacher but a few (not in the pool)
            failed = n % 10 == 3
            return [w.id_number(w.teacher_person(n)), "高级技师", "不合格" if failed else "合格", str(w.today.year)]
        return [self.other(n), "技师", "合格", str(w.today.year - n % 3)]

    def vouchers(self, n: int) -> list[object]:
        w = self.w
        declared = (w.trainees + 3) // 4
        if n < max(self.matched, declared):  # every declared voucher is in the register (as many as rows allow)
            t = 4 * (n % declared)  # a trainee who declared a voucher
            c = w.class_of(t)
            start, _ = w.term(c)
            holder = self.other(n) if self.planted(n) else w.id_number(t)  # planted: another person's voucher
            return [w.voucher(t), holder, w.occupation(c), "已发放", (start - timedelta(days=30)).isoformat()]
        return [f"YX{n:010d}", self.other(n), OCCUPATIONS[n % 5][0], "已发放" if n % 4 else "已使用",
                (w.today - timedelta(days=n % 700)).isoformat()]

    def write(self, source: str, path: Path) -> None:
        make: Callable[[int], list[object]] = getattr(self, source)
        with path.open("w", encoding="gb18030", newline="") as f:
            out = csv.writer(f)
            out.writerow(HEADERS[source])
            for n in range(self.rows):
                out.writerow([n + 1, *make(n)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per register extract")
    parser.add_argument("--classes", type=int, default=3000)
    parser.add_argument("--trainees-per-class", type=int, default=60)
    parser.add_argument("--registers", default=",".join(REGISTERS), help="which extracts to make and import")
    parser.add_argument("--match-share", type=float, default=0.1, help="share of rows naming the world's people")
    parser.add_argument("--plant-share", type=float, default=0.01, help="share of those rows that contradict")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    sources = [s.strip() for s in args.registers.split(",") if s.strip()]
    if unknown := set(sources) - set(REGISTERS):
        parser.error(f"unknown registers: {', '.join(sorted(unknown))}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-crosscheck-"))
    work.mkdir(parents=True, exist_ok=True)
    current_actor.set(AuditActor("基准测试", "admin"))
    settings = Settings(data_dir=work / "data", database_url="")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.sqlalchemy_url, settings.audit_keyring().current)
    db.migrate()
    w = World(args.classes, args.trainees_per_class, yunnan_counties(), date.today())
    _, secs, peak = measured(lambda: build_world(db, w))
    print(f"world: {w.classes:,} classes, {w.trainees:,} trainees, {w.teachers:,} teachers, {len(w.counties)} "
          f"counties/venues; made in {secs:.1f} s; peak RSS {peak:.0f} MiB")
    key = settings.register_hash_key()
    specs = settings.register_specs()
    period = month(w.today)
    extracts = Extracts(w, args.rows, args.match_share, args.plant_share)
    total_rows, total_s = 0, 0.0
    for source in sources:
        path = work / f"{source}.csv"
        _, secs, peak = measured(lambda: extracts.write(source, path))  # noqa: B023 - called at once
        print(f"{source}: {args.rows:,} rows ({extracts.matched:,} of the world's people), "
              f"{path.stat().st_size / 1e6:.1f} MB GB18030 CSV, written in {secs:.1f} s")

        def load() -> tuple[int, float]:
            with path.open("rb") as f:  # noqa: B023 - called at once
                import_id = preview_import(db, f, path.name, source, period, specs[source], key,  # noqa: B023
                                           "基准测试")
            t0 = time.perf_counter()
            commit_import(db, import_id, key, "基准测试")
            return import_id, time.perf_counter() - t0

        (import_id, commit_s), secs, peak = measured(load)
        total_rows, total_s = total_rows + args.rows, total_s + secs
        print(f"  import {import_id}: preview + commit {secs:.1f} s (commit {commit_s:.2f} s), "
              f"{args.rows / secs:,.0f} rows/s; peak RSS {peak:.0f} MiB")
        if not args.keep:
            path.unlink()
    if total_s:
        print(f"import, all registers: {total_rows:,} rows in {total_s:.1f} s, {total_rows / total_s:,.0f} rows/s")
    with db.session() as session:
        class_ids = list(session.scalars(select(TrainingClass.id).order_by(TrainingClass.id)))
    now = datetime.now().astimezone()
    summary, secs, peak = measured(lambda: run_crosscheck(db, settings, class_ids, now=now))
    print(f"cross-check: {summary.classes:,} classes, {summary.trainees:,} trainees in {secs:.1f} s — "
          f"{summary.classes / secs:,.0f} classes/s, {summary.trainees / secs:,.0f} trainees/s; "
          f"{summary.findings:,} findings, {summary.raised:,} raised; peak RSS {peak:.0f} MiB")
    with db.session() as session:
        by_rule = dict(session.execute(select(Anomaly.rule, func.count()).where(Anomaly.subject_kind == "crosscheck")
                                       .group_by(Anomaly.rule).order_by(Anomaly.rule)).all())
    print("  findings by rule: " + (", ".join(f"{rule} {n:,}" for rule, n in by_rule.items()) or "none"))
    again, secs, peak = measured(lambda: run_crosscheck(db, settings, class_ids, now=now))
    print(f"cross-check again: {secs:.1f} s, {again.classes / secs:,.0f} classes/s; {again.findings:,} findings, "
          f"{again.raised} raised, {again.resolved} resolved; peak RSS {peak:.0f} MiB")
    rates, secs, peak = measured(lambda: refresh_employment(db, settings))
    completed = sum(r.completed for r in rates)
    employed = sum(r.employed for r in rates)
    short = sum(1 for r in rates if r.shortfall > 0)
    print(f"employment: {len(rates)} institutions, {completed:,} completed trainees ({employed:,} employed), "
          f"{short} below the median, in {secs:.1f} s; peak RSS {peak:.0f} MiB")
    print(f"peak RSS over all phases {max(PEAKS):.0f} MiB; data in {work}{'' if args.keep else ' (removed)'}")
    db.dispose()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
