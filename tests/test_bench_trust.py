"""The trust benchmark's simulation, small: cheats are held, genuine trainees are not accused."""

import importlib.util
import sys
from pathlib import Path

import pytest

from monitor.adapters.face_models import load_manifest
from monitor.settings import Settings

_SPEC = importlib.util.spec_from_file_location(
    "bench_trust", Path(__file__).resolve().parent.parent / "scripts" / "bench_trust.py")
assert _SPEC and _SPEC.loader
bench_trust = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_trust"] = bench_trust  # dataclasses look their module up
_SPEC.loader.exec_module(bench_trust)


@pytest.mark.parametrize("model", ["faceplugin-arcface", "dlib-resnet"])
def test_a_week_of_one_class_holds_every_cheat_and_accuses_no_genuine_trainee(model: str) -> None:
    rates = {"proxy": 0.03, "wrong_face": 0.02, "replay": 0.02, "out_of_fence": 0.02, "mock_gps": 0.02}
    t = Settings().thresholds(load_manifest(model))
    tally = bench_trust.simulate(classes=1, trainees=60, days=3, seed=5, rates=rates, t=t, model=model)
    assert tally.genuine > 600 and all(tally.injected[c] > 0 for c in rates)
    assert sum(tally.passed_cheats.values()) == 0  # no proxy or wrong face is accepted silently
    for cheat in ("replay", "out_of_fence", "mock_gps"):
        assert tally.caught[cheat] == tally.injected[cheat]
    assert tally.false_alarms["PROXY_SIGNIN"] == 0
    assert tally.genuine_outcome["refused"] <= 0.005 * tally.genuine


def test_the_default_model_passes_genuine_trainees_and_refuses_classmate_proxies() -> None:
    """Issue 17's goal on the synthetic East Asian class: >= 94 % of genuine sign-ins pass without review, and
    >= 90 % of classmate proxies are refused outright, none passing; the review band holds <= 5 % of either."""
    rates = {"proxy": 0.05, "wrong_face": 0.0, "replay": 0.0, "out_of_fence": 0.0, "mock_gps": 0.0}
    t = Settings().thresholds(load_manifest("faceplugin-arcface"))
    tally = bench_trust.simulate(classes=2, trainees=60, days=2, seed=11, rates=rates, t=t,
                                 model="faceplugin-arcface")
    genuine, proxies = tally.genuine_outcome, tally.cheat_outcome["proxy"]
    assert genuine["passed"] >= 0.94 * tally.genuine and genuine["review"] <= 0.05 * tally.genuine
    assert proxies["passed"] == 0 and proxies["refused"] >= 0.90 * tally.injected["proxy"]
    assert proxies["review"] <= 0.05 * tally.injected["proxy"]
