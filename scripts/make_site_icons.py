"""Draw the site page's app icons (web/static/icons/site-*.png): a white 签 on the pages' blue, with a check mark.

Run once; the PNGs are committed. `.venv/bin/python scripts/make_site_icons.py`
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parent.parent / "web" / "static" / "icons"
FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"
BLUE, GREEN, WHITE = (26, 95, 180), (46, 194, 126), (255, 255, 255)


def icon(size: int) -> Image.Image:
    scale = 4  # drawn large, then reduced: smooth edges
    s = size * scale
    image = Image.new("RGB", (s, s), BLUE)  # full bleed: also usable as a maskable icon (safe zone: centre 80 %)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, int(s * 0.46), index=2)  # index 2: the SC face of the collection
    draw.text((s * 0.47, s * 0.48), "签", font=font, fill=WHITE, anchor="mm")
    r = s * 0.13
    cx, cy = s * 0.70, s * 0.70
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=GREEN, outline=WHITE, width=max(1, int(s * 0.02)))
    w = max(1, int(s * 0.03))
    draw.line([(cx - r * 0.5, cy), (cx - r * 0.1, cy + r * 0.4), (cx + r * 0.55, cy - r * 0.4)], fill=WHITE,
              width=w, joint="curve")
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (32, 192, 512):
        icon(size).save(OUT / f"site-{size}.png", optimize=True)


if __name__ == "__main__":
    main()
