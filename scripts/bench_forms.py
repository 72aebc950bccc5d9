"""Benchmark: what filing one inspection form costs the center: the PDF drawn (embedded CJK subset, QR code,
both signatures, 8 checklist items, an 8-trainee phone check, 10 photo lines) and signed (PAdES with pyHanko).

Usage: .venv/bin/python scripts/bench_forms.py [--count 30] [--font /usr/share/fonts/truetype/wqy/wqy-microhei.ttc]

Uses a development signing key made in a temporary directory. Prints per step (draw, sign) the median and p95
milliseconds per form, forms per second per core for both together, and the signed PDF's size.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor.adapters.form_signing import ensure_key, sign_pdf  # noqa: E402
from monitor.adapters.inspection_pdf import CallLine, FormContent, PhoneCheckLines, PhotoLine, render_form  # noqa: E402
from monitor.decisions.inspection_form import CHECKLIST  # noqa: E402


def signature(seed: int) -> bytes:
    """A finger-drawn signature on a phone's canvas (1080 x 360, transparent)."""
    img = Image.new("RGBA", (1080, 360), (0, 0, 0, 0))
    pen = ImageDraw.Draw(img)
    pen.line([(60 + 90 * k, 120 + ((k * 37 + seed) % 150)) for k in range(11)], fill="black", width=9)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def form(n: int, now: datetime) -> FormContent:
    items = {key: {"result": "problem" if k == 1 else "ok", "note": "签到 30 人，在场 27 人" if k == 1 else ""}
             for k, key in enumerate(CHECKLIST)}
    calls = [CallLine(f"学员{k}", f"530***********{1000 + k}", k % 4 != 0, True if k % 4 else None) for k in range(8)]
    photos = [PhotoLine(hashlib.sha256(f"{n}-{k}".encode()).hexdigest(), now - timedelta(minutes=k),
                        None, {"latitude": 25.04, "longitude": 102.71, "accuracy_m": 12, "fence_result": "inside"})
              for k in range(10)]
    return FormContent(
        inspection_id=n, class_code=f"YN20261204{n:03d}", class_name="中式烹调师（初级）第12期",
        institution_name="昆明五华职业技能培训学校", venue_name="昆明五华职业技能培训学校教学楼", kind="on_site",
        inspector="县区抽查员甲", inspected_at=now, headcount_registered=30, headcount_present=27, items=items,
        findings="在场学员少于签到人数，3 人疑似代签，已拍照取证。" * 3, responsible_name="张校长", photos=photos,
        fix={"latitude": 25.0433, "longitude": 102.7058, "accuracy_m": 15.0, "fence_result": "inside",
             "captured_at": now.isoformat()},
        class_id=n, alert_id=n, venue_address="昆明市五华区职教路 12 号",
        phone_checks=[PhoneCheckLines(n, "done", calls)], filed_at=now,
        record_sha256=hashlib.sha256(f"record {n}".encode()).hexdigest(),
        verify_url=f"http://localhost:8000/verify/{hashlib.sha256(f'record {n}'.encode()).hexdigest()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--font", type=Path, default=Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"))
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        key = ensure_key(Path(tmp) / "key.pem", Path(tmp) / "cert.pem", dev_allowed=True)
        responsible, mine = signature(1), signature(2)
        render_form(form(0, now), responsible, mine, args.font)  # warm-up: the font is parsed once per process
        sign_pdf(render_form(form(0, now), responsible, mine, args.font), key, reason="warm-up")
        draw_ms, sign_ms, sizes = [], [], []
        for n in range(1, args.count + 1):
            t0 = time.perf_counter()
            pdf = render_form(form(n, now), responsible, mine, args.font)
            t1 = time.perf_counter()
            signed = sign_pdf(pdf, key, reason=f"bench {n}")
            t2 = time.perf_counter()
            draw_ms.append((t1 - t0) * 1000)
            sign_ms.append((t2 - t1) * 1000)
            sizes.append(len(signed))
    def p95(values: list[float]) -> float:
        return sorted(values)[max(0, round(0.95 * len(values)) - 1)]
    total = [d + s for d, s in zip(draw_ms, sign_ms, strict=True)]
    print(f"forms: {args.count}, font {args.font.name}")
    print(f"draw : median {statistics.median(draw_ms):7.1f} ms  p95 {p95(draw_ms):7.1f} ms")
    print(f"sign : median {statistics.median(sign_ms):7.1f} ms  p95 {p95(sign_ms):7.1f} ms")
    print(f"both : median {statistics.median(total):7.1f} ms  p95 {p95(total):7.1f} ms  "
          f"= {1000 / statistics.median(total):.1f} forms/s per core")
    print(f"signed PDF: median {statistics.median(sizes) / 1024:.0f} KiB (2 pages, font subset embedded)")


if __name__ == "__main__":
    main()
