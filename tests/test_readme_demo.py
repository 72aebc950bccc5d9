"""The README's "Trying it by hand" check-ins, sent as its curl lines send them to a demo started as the README
starts it (`monitor demo`, what scripts/demo.sh runs after set-up): each answers as the README says. A fresh clone
followed to the letter once got PHOTO_REPLAY for the first, "passed" one (its photo is a demo trainee's enrolment
photo)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port
from tests.helpers import FACES_DIR, REPO, stop_group

MONITOR = REPO / ".venv" / "bin" / "monitor"


def demo_env(path: Path, proc: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    """The variables `source var/demo/demo-env.sh` sets, once the demo has written the file."""
    deadline = time.monotonic() + 120
    while not path.is_file():
        assert proc.poll() is None, log.read_text(encoding="utf-8", errors="replace")[-2000:]
        assert time.monotonic() < deadline, "the demo wrote no demo-env.sh"
        time.sleep(0.5)
    time.sleep(0.5)  # written whole in one call; give it a moment all the same
    return dict(re.findall(r"^export (\w+)=(.*)$", path.read_text(encoding="utf-8"), re.M))


def checkin(env: dict[str, str], photo: Path, lat: str, lon: str) -> Any:
    """The README's `checkin()` shell function."""
    form = {"trainee_id": env["TRAINEE_ID"], "class_id": env["CLASS_ID"], "kind": "sign_in",
            "captured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "latitude": lat, "longitude": lon,
            "accuracy_m": "15", "device_id": "my-phone"}
    return httpx.post(f"{env['BASE']}/api/v1/check-ins", data=form, timeout=60,
                      files={"photo": (photo.name, photo.read_bytes(), "image/jpeg")},
                      headers={"Authorization": f"Bearer {env['SITE_TOKEN']}",
                               "Idempotency-Key": f"manual-{time.time_ns()}"})


def test_the_readme_check_ins_answer_as_the_readme_says(tmp_path: Path) -> None:
    data, log = tmp_path / "demo", tmp_path / "demo.log"
    env = {**os.environ, "MONITOR_DATA_DIR": str(data), "MONITOR_FACES_DIR": str(FACES_DIR)}
    with log.open("wb") as out:
        proc = subprocess.Popen([str(MONITOR), "demo", "--port", str(free_port()), "--classes", "1"], cwd=REPO,
                                env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    try:
        shell = demo_env(data / "demo-env.sh", proc, log)
        faces = Path(shell["FACES"])
        readme = (REPO / "README.md").read_text(encoding="utf-8")
        assert "checkin $FACES/people/obama/obama_small.jpg $VENUE_LAT $VENUE_LON" in readme

        first = checkin(shell, faces / "people/obama/obama_small.jpg", shell["VENUE_LAT"], shell["VENUE_LON"])
        assert first.status_code == 201, first.text
        assert (first.json()["status"], first.json()["message"]) == ("passed", "签到成功"), first.text

        second = checkin(shell, faces / "people/biden/biden.jpg", shell["VENUE_LAT"], shell["VENUE_LON"])
        assert second.json()["message"].startswith("签到未通过：人脸与登记照片不符（相似距离 1.0"), second.text
        assert "疑似代签" in second.json()["message"], second.text

        third = checkin(shell, faces / "people/obama/obama1.jpg", shell["FAR_LAT"], shell["VENUE_LON"])
        assert third.json()["message"].startswith("签到未通过：定位位于培训场地围栏外约 4,8"), third.text

        again = checkin(shell, faces / "people/obama/obama_small.jpg", shell["VENUE_LAT"], shell["VENUE_LON"])
        assert again.status_code == 409 and again.json()["code"] == "PHOTO_REPLAYED", again.text
    finally:
        stop_group(proc)
