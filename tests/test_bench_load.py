"""The load benchmark (issue 21 item 5) runs from one command: its --quick smoke run starts the cluster's roles,
measures every phase and prints each figure's label."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import FACES_DIR, REPO

LABELS = ("VERIFIED/S 1 WORKER:", "VERIFIED/S 2 WORKERS:", "WORKER SCALING 2/1:", "LATENCY AT 50%", "LATENCY AT 90%",
          "WS FAN-OUT TO ALL", "ACCEPTED/S SQLITE 1 API:", "ACCEPTED/S SQLITE 2 API:", "ACCEPTED/S POSTGRES",
          "VERIFIED/S POSTGRES 2 WORKERS:")


def test_the_load_benchmark_quick_run_prints_every_figure() -> None:
    env = {**os.environ, "MONITOR_FACES_DIR": str(FACES_DIR)}
    run = subprocess.run([sys.executable, "scripts/bench_load.py", "--quick"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for label in LABELS:
        assert label in run.stdout, (label, run.stdout[-3000:])
    assert "ACCEPTED/S POSTGRES 1 API:" in run.stdout or "not measured" in run.stdout
