"""The province simulator (issue 21 item 4) at a small scale: every injected cheat is caught at its rule, genuine
uploads and present trainees raise (almost) nothing, and the report prints every label."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from monitor.demo.province import (
    CHECKIN_CHEATS,
    SentCheckin,
    busiest_rate,
    count_cheats,
    draw_arrivals,
    draw_scenarios,
    parse_rates,
    plan_province,
    tally_absent,
    tally_cheats,
    tally_genuine,
)
from tests.helpers import FACES_DIR, REPO

RATES = "wrong_face=0.05,out_of_fence=0.05,mock_gps=0.04,replay=0.04,proxy=0.04,group=0.04,no_face=0.04,absent=0.05"
LABELS = ("CLUSTER:", "PROVINCE:", "MORNING:", "REPORT", "FALSE ALARMS ON GENUINE UPLOADS:",
          "FALSE ALARMS ON PRESENT TRAINEES:", "THROUGHPUT:", "SCALED ROWS:", "MORNING TOOK:",
          "QUERIES AFTER THE MORNING:", "CPU DURING THE MORNING:")
MIN_DETECTED = {"wrong_face": 0.5, "absent": 1.0}  # measured: every kind caught every time; a stranger may be grey
DEFAULT_MIN_DETECTED = 0.75


def test_the_quick_province_catches_every_cheat_at_its_rule() -> None:
    env = {**os.environ, "MONITOR_FACES_DIR": str(FACES_DIR)}
    run = subprocess.run([sys.executable, "scripts/simulate_province.py", "--quick", "--cheat-rate", RATES],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = run.stdout
    assert run.returncode == 0, out[-3000:] + run.stderr[-3000:]
    for label in LABELS:
        assert label in out, (label, out[-3000:])
    lines = {m[0]: (int(m[1]), int(m[2]))
             for m in re.findall(r"^RULE (\w+) -> \w+: injected (\d+), detected (\d+)", out, re.M)}
    assert set(lines) == {*CHECKIN_CHEATS, "absent"}, out[-3000:]
    for cheat, (injected, detected) in lines.items():
        assert injected >= 1, (cheat, out[-3000:])
        assert detected >= MIN_DETECTED.get(cheat, DEFAULT_MIN_DETECTED) * injected, (cheat, out[-3000:])
    genuine = re.search(r"^FALSE ALARMS ON GENUINE UPLOADS: (\d+) of (\d+)", out, re.M)
    assert genuine and int(genuine[2]) >= 50 and int(genuine[1]) <= 0.02 * int(genuine[2]), out[-3000:]
    present = re.search(r"^FALSE ALARMS ON PRESENT TRAINEES: NO_SHOW (\d+), MISSING_SIGNOUT (\d+) of (\d+)", out, re.M)
    assert present and int(present[3]) >= 500, out[-3000:]
    assert int(present[1]) + int(present[2]) <= 0.01 * int(present[3]), out[-3000:]


def test_the_rates_and_the_plan() -> None:
    rates = parse_rates("wrong_face=0.02, absent=0.05,proxy=0")
    assert rates == {"wrong_face": 0.02, "absent": 0.05, "proxy": 0.0}
    for bad in ("nobody=0.1", "wrong_face=1.5", "wrong_face=0.6,group=0.5"):
        try:
            parse_rates(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    counts = count_cheats(100, {"wrong_face": 0.02, "group": 0.001, "proxy": 0.0})
    assert counts == {"wrong_face": 2, "group": 1}  # a chosen rule is tried at least once
    import random

    rng = random.Random(1)
    order = draw_scenarios(100, counts, rng)
    assert len(order) == 100 and order.count("genuine") == 97 and order.count("group") == 1
    times = draw_arrivals(1000, 60.0, rng)
    assert times == sorted(times) and 0 <= times[0] and times[-1] <= 60
    assert sum(1 for t in times if t < 20) > sum(1 for t in times if t >= 40)  # the peak comes early
    plan = plan_province(12, 60, ["530102", "530103", "532901"], rng)
    assert len(plan.classes) == 12 and len(plan.institution_counties) == 3 and plan.trainees == 720
    assert busiest_rate([0.0, 0.5, 1.0, 10.0], 1.0) == 3.0


def test_the_tallies() -> None:
    sent = [SentCheckin("genuine", 1, "sign_in", 202, 1, "passed"),
            SentCheckin("genuine", 2, "sign_in", 202, 2, "failed", ["GPS_IMPLAUSIBLE"]),
            SentCheckin("wrong_face", 1, "sign_in", 202, 3, "failed", ["FACE_MISMATCH"]),
            SentCheckin("wrong_face", 1, "sign_in", 202, 4, "review"),
            SentCheckin("proxy", 2, "sign_in", 202, 5, "failed", ["FACE_MISMATCH", "PROXY_SIGNIN"])]
    lines = {line.cheat: line for line in tally_cheats(sent)}
    assert (lines["wrong_face"].injected, lines["wrong_face"].detected) == (2, 1)
    assert lines["wrong_face"].outcome == {"failed": 1, "review": 1}
    assert lines["wrong_face"].missed_rules == {"none": 1}
    assert (lines["proxy"].injected, lines["proxy"].detected) == (1, 1)
    genuine = tally_genuine(sent)
    assert (genuine.sent, genuine.false_alarms, genuine.by_rule) == (2, 1, {"GPS_IMPLAUSIBLE": 1})
    absent = tally_absent({1, 2}, {3, 4, 5}, no_show={1, 4}, missing_signout={5})
    assert (absent.injected, absent.detected, absent.false_no_show, absent.present, absent.missing_signout) == (
        2, 1, 1, 3, 1)
