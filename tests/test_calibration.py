"""scripts/calibrate_faces.py on a labelled folder: the curve, the thresholds and the refusal on too few pairs."""

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import FACES_DIR

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "calibrate_faces.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(FACES_DIR / "people"), "--processes", "0", *args],
                          capture_output=True, text=True, timeout=300)


def test_calibration_prints_the_curve_of_a_labelled_folder() -> None:
    r = run("--json", "--target-fmr", "0.01", "--model", "dlib-resnet")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["people"] == 6 and out["photos"] == 20 and out["skipped"] == []
    cal = out["calibration"]
    assert cal["genuine_pairs"] == 44 and cal["impostor_pairs"] == 146
    by_threshold = {p["threshold"]: p for p in out["curve"]}
    # The sample faces: same person <= 0.525, different people >= 0.70 (shared/faces/README.md).
    assert by_threshold[0.52]["fnmr"] == 0.0 and by_threshold[0.5]["false_non_matches"] == 2
    assert by_threshold[0.68]["fmr"] == 0.0 and by_threshold[0.7]["false_matches"] == 1
    assert out["enough_pairs"] is False and out["metric"] == "euclidean"


def test_calibration_of_the_default_model_in_its_own_metric() -> None:
    r = run("--json", "--target-fmr", "0.01")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model_version"].startswith("faceplugin-arcface@") and out["metric"] == "cosine"
    by_threshold = {p["threshold"]: p for p in out["curve"]}
    # ArcFace on the sample faces: same person <= 0.46, different people >= 0.84 (cosine distance).
    assert by_threshold[0.5]["fnmr"] == 0.0 and by_threshold[0.8]["fmr"] == 0.0
    assert out["rank_one"] == 1.0 and out["review_share_genuine"] == 0.0


def test_too_few_pairs_recommend_no_thresholds() -> None:
    r = run("--target-fmr", "0.001")
    assert r.returncode == 3
    assert "FMR" in r.stdout and "0.50" in r.stdout and "not enough" in r.stdout
    assert "MONITOR_FACE_MATCH_THRESHOLD" not in r.stdout
