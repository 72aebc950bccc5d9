"""Re-run published 双随机 draws from /public/draws.json alone and say whether they give the published rosters."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing it

from monitor.decisions.dispatch import ClassPlace  # noqa: E402 - pure: no database, no server code
from monitor.decisions.draws import ALGORITHM, Candidate, DrawRule, replay  # noqa: E402


def check(draw: dict[str, Any]) -> tuple[bool, str]:
    """Whether the draw's seed, rule and candidates give its published roster, and a line saying so (zh-CN)."""
    kind = draw.get("kind_name") or draw.get("kind")
    label = f"抽取 {draw.get('id')}（{draw.get('day')} {kind} 第 {draw.get('seq')} 次）"
    algorithm = str(draw.get("algorithm", ""))
    if algorithm != ALGORITHM:
        return False, f"{label}：算法版本 {algorithm!r} 与本脚本的 {ALGORITHM!r} 不同，无法复核"
    candidates = []
    for raw in draw["candidates"]:
        c = Candidate(int(raw["class_id"]), ClassPlace(str(raw["county_code"]), int(raw["institution_id"])),
                      int(raw["anomalies"]), int(raw["violations"]), float(raw.get("employment_shortfall", 0.0)))
        if "weight" in raw and abs(float(raw["weight"]) - c.weight) > 1e-9:
            return False, f"{label}：班次 {c.class_id} 的权重 {raw['weight']} 与其异常数、违规数不符"
        candidates.append(c)
    published = [int(c) for c in draw["drawn"]]
    again = replay(candidates, DrawRule.of(draw["rule"]), str(draw["seed"]), algorithm)
    names = {int(c["class_id"]): f"{c.get('class_code', '')} {c.get('institution_name', '')}".strip()
             for c in draw.get("classes", [])}
    roster = "、".join(names.get(c) or str(c) for c in again) or "（无）"
    if again == published:
        return True, f"{label}：候选 {len(candidates)} 个，复核一致，抽中 {len(again)} 个：{roster}"
    return False, f"{label}：复核不一致：公示 {published}，重新计算 {again}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path, help="a saved /public/draws.json (a list of draws, or one draw)")
    parser.add_argument("--draw", type=int, default=None, help="only the draw with this id")
    args = parser.parse_args(argv)
    data = json.loads(args.file.read_text(encoding="utf-8"))
    draws = data if isinstance(data, list) else [data]
    if args.draw is not None:
        draws = [d for d in draws if d.get("id") == args.draw]
    if not draws:
        print("文件中没有可复核的抽取记录")
        return 1
    ok = True
    for draw in draws:
        matches, line = check(draw)
        ok = ok and matches
        print(("✓ " if matches else "✗ ") + line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
