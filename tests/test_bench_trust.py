"""The trust benchmark's simulation, small: cheats are held, genuine trainees are not accused."""

import importlib.util
import sys
from pathlib import Path

from monitor.settings import Settings

_SPEC = importlib.util.spec_from_file_location(
    "bench_trust", Path(__file__).resolve().parent.parent / "scripts" / "bench_trust.py")
assert _SPEC and _SPEC.loader
bench_trust = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_trust"] = bench_trust  # dataclasses look their module up
_SPEC.loader.exec_module(bench_trust)


def test_a_week_of_one_class_holds_every_cheat_and_accuses_no_genuine_trainee() -> None:
    rates = {"proxy": 0.03, "wrong_face": 0.02, "replay": 0.02, "out_of_fence": 0.02, "mock_gps": 0.02}
    tally = bench_trust.simulate(classes=1, trainees=60, days=3, seed=5, rates=rates, t=Settings().thresholds())
    assert tally.genuine > 600 and all(tally.injected[c] > 0 for c in rates)
    assert sum(tally.passed_cheats.values()) == 0  # no proxy or wrong face is accepted silently
    for cheat in ("replay", "out_of_fence", "mock_gps"):
        assert tally.caught[cheat] == tally.injected[cheat]
    assert tally.false_alarms["PROXY_SIGNIN"] == 0
    assert tally.genuine_outcome["refused"] <= 0.005 * tally.genuine
