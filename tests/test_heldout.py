"""scripts/bench_heldout.py: a labelled folder run as a class through the API, as the province's testers do."""

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import FACES_DIR

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_heldout.py"


def test_the_sample_people_through_the_api_pass_and_their_proxies_are_refused() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), str(FACES_DIR / "people")], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "5 people with two or more photos, 5 enrolled with faceplugin-arcface" in out
    genuine = re.search(r"genuine sign-ins +passed / review / refused: (\d+) / (\d+) / (\d+) of (\d+); refused by "
                        r"the face rules: (\d+)", out)
    proxies = re.search(r"classmate proxies +passed / review / refused: (\d+) / (\d+) / (\d+) of (\d+); refused by "
                        r"the face rules \(PROXY_SIGNIN or FACE_MISMATCH\): (\d+)", out)
    assert genuine and proxies, out
    g = [int(x) for x in genuine.groups()]
    p = [int(x) for x in proxies.groups()]
    assert g[3] == 14 and g[1] == 0 and g[4] == 0  # no genuine face is reviewed or refused by the face rules
    assert p == [0, 0, 14, 14, 14]  # every classmate proxy refused outright by the face rules, none passing
