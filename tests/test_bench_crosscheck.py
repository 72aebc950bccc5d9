"""scripts/bench_crosscheck.py at a tiny size: it makes its world, imports every register, cross-checks every class
and prints its throughput, the planted findings and the peak memory of each phase."""

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_crosscheck.py"


def test_the_benchmark_prints_import_and_matching_throughput_and_peak_memory(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--rows", "3000", "--classes", "20", "--trainees-per-class", "10",
                        "--match-share", "0.5", "--plant-share", "0.05", "--keep", str(tmp_path / "bench")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    assert "world: 20 classes, 200 trainees" in out, out
    assert len(re.findall(r"preview \+ commit [\d.]+ s .*, [\d,]+ rows/s; peak RSS \d+ MiB", out)) == 5, out
    assert re.search(r"import, all registers: 15,000 rows in [\d.]+ s, [\d,]+ rows/s", out), out
    checked = re.search(r"cross-check: 20 classes, 200 trainees in [\d.]+ s — [\d,]+ classes/s, [\d,]+ trainees/s; "
                        r"([\d,]+) findings, ([\d,]+) raised; peak RSS \d+ MiB", out)
    assert checked and int(checked[1]) > 0 and checked[1] == checked[2], out
    rules = re.search(r"findings by rule: (.*)", out)
    assert rules, out
    for rule in ("CATEGORY_CONTRADICTED", "EMPLOYED_ELSEWHERE", "REPEAT_SUBSIDY", "TEACHER_CHECK_FAILED",
                 "TEACHER_NOT_IN_POOL", "VOUCHER_INVALID"):
        assert rule in rules[1], out
    assert re.search(rf"cross-check again: .*; {checked[1]} findings, 0 raised, 0 resolved", out), out
    assert re.search(r"employment: \d+ institutions, [\d,]+ completed trainees .*peak RSS \d+ MiB", out), out
    assert "peak RSS over all phases" in out
