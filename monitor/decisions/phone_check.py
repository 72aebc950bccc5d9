"""Phone spot checks (clause 十四: 电话抽查时，每班次抽查人数不少于5人): whom to call, drawn reproducibly from a
recorded seed, and whether enough trainees were reached; pure functions."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass


def draw_trainees(signed_in: Sequence[int], how_many: int, seed: str) -> list[int]:
    """`how_many` trainees drawn at random among those signed in (all of them if fewer), in call order; the same
    seed and roster give the same draw."""
    pool = sorted(set(signed_in))
    return random.Random(seed).sample(pool, min(how_many, len(pool)))


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
    message: str  # zh-CN


def judge_phone_check(drawn: Sequence[int], calls: Sequence[Call], min_reached: int) -> PhoneCheckVerdict:
    """Done only when at least `min_reached` drawn trainees were reached (the latest call to each counts)."""
    latest = {c.trainee_id: c for c in calls if c.trainee_id in set(drawn)}
    reached = sum(1 for c in latest.values() if c.reached)
    present = sum(1 for c in latest.values() if c.reached and c.present)
    if reached >= min_reached:
        return PhoneCheckVerdict(True, reached, present, f"已接通 {reached} 人，其中 {present} 人确认在班")
    short = min_reached - reached
    if len(drawn) < min_reached:
        why = f"抽取名单仅 {len(drawn)} 人（当日签到人数不足 {min_reached} 人）"
    else:
        why = f"还需接通 {short} 人"
    return PhoneCheckVerdict(False, reached, present,
                             f"电话抽查须接通不少于 {min_reached} 名学员，已接通 {reached} 人，{why}")
