"""QR codes as SVG text for screens (a sign-in link shown to the inspector's phone), encoded by reportlab."""

from __future__ import annotations

import itertools

from reportlab.graphics.barcode.qr import QrCodeWidget

QUIET_ZONE_MODULES = 4


def qr_svg(text: str, size_px: int = 240) -> str:
    """`text` as a QR code (error correction M), about `size_px` square, quiet zone included.

    Drawn in module units with crisp edges and a whole number of pixels per module, so every module
    lands on the screen's pixel grid (fractional modules blur into a code some readers cannot decode).
    """
    qr = QrCodeWidget(text, barLevel="M").qr
    qr.make()
    count = qr.getModuleCount()
    side = count + 2 * QUIET_ZONE_MODULES
    pixels = max(side, size_px // side * side)
    runs: list[str] = []
    for row_index, row in enumerate(qr.modules):
        column = 0
        for dark, group in itertools.groupby(bool(module) for module in row):
            length = len(list(group))
            if dark:
                x, y = column + QUIET_ZONE_MODULES, row_index + QUIET_ZONE_MODULES
                runs.append(f"M{x} {y}h{length}v1h-{length}z")
            column += length
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{pixels}" height="{pixels}" '
            f'viewBox="0 0 {side} {side}" shape-rendering="crispEdges" role="img">'
            f'<rect width="{side}" height="{side}" fill="#fff"/>'
            f'<path d="{"".join(runs)}" fill="#000"/></svg>')
