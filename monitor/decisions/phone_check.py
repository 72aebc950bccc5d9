"""Phone spot checks (clause 十四: 电话抽查时，每班次抽查人数不少于5人): whom to call, drawn reproducibly from a
recorded seed out of the whole roster, how a call is timed by the page, whether enough trainees were reached, and
which calls a call center's detail records confirm; pure functions."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from models.clock import SHANGHAI

# Where a drawn trainee stands today, shown next to the name (the draw itself ignores it: a check that only called
# those who passed would never call the ones most worth calling).
TRAINEE_STATES = {"passed": "已签到（核验通过）", "review": "已签到（待复核）", "refused": "签到未通过",
                  "pending": "签到核验中", "absent": "今日未签到"}

MIN_REACHED_CALL_S = 5  # a "reached" call shorter than this cannot have asked whether the trainee is in class
MAX_CALL_S = 4 * 3600
CALL_TIME_TOLERANCE_S = 5  # on the server's clock, a call may seem to start this much before the draw (rounding,
# the network's delay of the page's own clock reading), or to overlap the inspector's previous call by this much


def draw_trainees(roster: Sequence[int], how_many: int, seed: str) -> list[int]:
    """`how_many` trainees drawn at random from the class's roster (all of them if fewer), in call order; the same
    seed and roster give the same draw."""
    pool = sorted(set(roster))
    return random.Random(seed).sample(pool, min(how_many, len(pool)))


def required_reached(drawn: int, min_reached: int) -> int:
    """Trainees a check must reach: `min_reached` (clause 十四: 不少于5人), or everyone drawn when the class is
    smaller than that (a class of 3 calls all 3)."""
    return min(min_reached, drawn)


def state_of_trainee(statuses: Sequence[str]) -> str:
    """A trainee's state today from the statuses of their sign-ins (passed beats review beats pending beats
    refused); `absent` with none."""
    for state, status in (("passed", "passed"), ("review", "review"), ("pending", "pending"), ("refused", "failed")):
        if status in statuses:
            return state
    return "absent"


@dataclass(frozen=True)
class CallTiming:
    """A call's start and end on the server's clock, measured by the page (the tel: link opened, the page shown
    again), and its length."""

    started_at: datetime
    ended_at: datetime
    duration_s: int


def time_call(started_at: datetime, ended_at: datetime, page_now: datetime, server_now: datetime,
              check_started_at: datetime) -> CallTiming | str:
    """The call's times moved onto the server's clock (by how far the page's clock runs from it when it sends),
    or why they cannot be true (zh-CN): a call ending before it starts, after the page sent it, longer than four
    hours, before the check was drawn, or a page clock far off."""
    skew = server_now - page_now
    if abs(skew.total_seconds()) > 24 * 3600:
        return "手机时钟与服务器相差超过一天，请校准手机时间后重试"
    if ended_at < started_at:
        return "通话结束时间早于开始时间"
    if ended_at > page_now + timedelta(seconds=5):
        return "通话结束时间晚于提交时间"
    duration = (ended_at - started_at).total_seconds()
    if duration > MAX_CALL_S:
        return "通话时长超过 4 小时"
    start, end = started_at + skew, ended_at + skew
    if start < check_started_at - timedelta(seconds=CALL_TIME_TOLERANCE_S):
        return "通话开始时间早于本次电话抽查的抽取时间"
    return CallTiming(start, end, round(duration))


def refuse_overlap(call: CallTiming, earlier: Sequence[tuple[datetime, datetime]]) -> str | None:
    """Why a call cannot have been made then (zh-CN), or None: one inspector makes one call at a time, so a call
    may not overlap another call of the same check (the page times each from its tel: link to its return)."""
    slack = timedelta(seconds=CALL_TIME_TOLERANCE_S)
    for start, end in earlier:
        if call.started_at < end - slack and start + slack < call.ended_at:
            return (f"该通话时间与本次抽查已记录的另一通电话重叠（北京时间 {start.astimezone(SHANGHAI):%H:%M:%S}–"
                    f"{end.astimezone(SHANGHAI):%H:%M:%S}），一次只能拨打一通电话")
    return None


def refuse_reached(reached: bool, has_phone: bool, duration_s: int) -> str | None:
    """Why a call cannot be recorded as reached (zh-CN), or None: nobody is reached on a number that is not on
    file, nor in a call too short to ask anything."""
    if not reached:
        return None
    if not has_phone:
        return "该学员没有登记手机号，不能记为接通"
    if duration_s < MIN_REACHED_CALL_S:
        return f"通话仅 {duration_s} 秒（少于 {MIN_REACHED_CALL_S} 秒），不能记为接通"
    return None


@dataclass(frozen=True)
class Call:
    trainee_id: int
    reached: bool
    present: bool | None  # did the trainee confirm being in class


@dataclass(frozen=True)
class PhoneCheckVerdict:
    done: bool
    reached: int
    confirmed_present: int
    required: int
    message: str  # zh-CN


def judge_phone_check(drawn: Sequence[int], calls: Sequence[Call], min_reached: int) -> PhoneCheckVerdict:
    """Done only when enough drawn trainees were reached (the latest call to each counts): `min_reached`, or all of
    them when fewer were drawn because the class is smaller."""
    latest = {c.trainee_id: c for c in calls if c.trainee_id in set(drawn)}
    reached = sum(1 for c in latest.values() if c.reached)
    present = sum(1 for c in latest.values() if c.reached and c.present)
    required = required_reached(len(drawn), min_reached)
    small = len(drawn) < min_reached
    rule = f"（本班名册仅 {len(drawn)} 人，不足 {min_reached} 人，须全部接通）" if small else ""
    if drawn and reached >= required:
        return PhoneCheckVerdict(True, reached, present, required,
                                 f"已接通 {reached} 人，其中 {present} 人确认在班{rule}")
    return PhoneCheckVerdict(False, reached, present, required,
                             f"电话抽查须接通不少于 {required} 名学员{rule}，已接通 {reached} 人，"
                             f"还需接通 {required - reached} 人")


# -- call detail records (话单) from a call center --------------------------------------------------------------
@dataclass(frozen=True)
class CdrRecord:
    """One row of a call center's detail records: who called whom, when (UTC) and for how long (talk seconds)."""

    row: int
    caller: str
    callee: str
    start: datetime
    duration_s: int


@dataclass(frozen=True)
class RecordedCall:
    """A call as the inspector's page recorded it, on the server's clock."""

    id: int
    callee: str
    reached: bool
    started_at: datetime
    duration_s: int


CDR_TOLERANCE_S = 120  # the call center's clock and the page's may differ this much, and ringing counts in neither


def match_cdrs(calls: Sequence[RecordedCall], cdrs: Sequence[CdrRecord], tolerance_s: int = CDR_TOLERANCE_S
               ) -> dict[int, tuple[str, CdrRecord | None]]:
    """For each recorded call the file covers (its start within the file's first and last record, widened by the
    tolerance): `confirmed` with the record that shows it (same callee, a start within the tolerance and, for a
    reached call, a talk time within the tolerance of the page's measure), or `unconfirmed`. A record confirms one
    call at most; calls outside the file's time span are left out (neither)."""
    if not cdrs:
        return {}
    tolerance = timedelta(seconds=tolerance_s)
    first = min(r.start for r in cdrs) - tolerance
    last = max(r.start + timedelta(seconds=r.duration_s) for r in cdrs) + tolerance
    by_callee: dict[str, list[CdrRecord]] = {}  # a call looks only at records of its own number
    for record in cdrs:
        by_callee.setdefault(record.callee, []).append(record)
    used: set[int] = set()
    out: dict[int, tuple[str, CdrRecord | None]] = {}
    for call in sorted(calls, key=lambda c: c.started_at):
        if not first <= call.started_at <= last:
            continue
        best: CdrRecord | None = None
        for record in by_callee.get(call.callee, ()):
            if record.row in used:
                continue
            gap = abs((record.start - call.started_at).total_seconds())
            if gap > tolerance_s:
                continue
            if call.reached and (record.duration_s < 1 or abs(record.duration_s - call.duration_s) > tolerance_s):
                continue
            if best is None or gap < abs((best.start - call.started_at).total_seconds()):
                best = record
        if best is not None:
            used.add(best.row)
        out[call.id] = ("confirmed", best) if best is not None else ("unconfirmed", None)
    return out
