"""QR codes as SVG text for screens (a sign-in link shown to the inspector's phone), drawn with reportlab's encoder."""

from __future__ import annotations

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.renderSVG import drawToString
from reportlab.graphics.shapes import Drawing


def qr_svg(text: str, size_px: int = 240) -> str:
    """`text` as a QR code (error correction M) in an SVG `size_px` square, quiet zone included."""
    widget = QrCodeWidget(text, barLevel="M", barWidth=size_px, barHeight=size_px)
    drawing = Drawing(size_px, size_px)
    drawing.add(widget)
    svg = str(drawToString(drawing))
    return svg[svg.index("<svg"):]  # without the XML declaration and doctype, to embed in a page
