#!/usr/bin/env bash
# Install the system packages the test suite needs (PostgreSQL, Redis, Chromium, CJK fonts, poppler, ffmpeg, e2fsprogs) when missing.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk)
# The form PDF embeds a TrueType CJK font (Noto CJK's CFF outlines cannot be embedded by reportlab); its tests read
# the PDF with poppler's pdffonts, pdftotext, pdfinfo and pdftoppm.
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
command -v pdffonts >/dev/null || need+=(poppler-utils)
# The camera tests serve real local streams (MJPEG over HTTP) made by ffmpeg from the sample video.
command -v ffmpeg >/dev/null || need+=(ffmpeg)
# The full-disk test formats a small ext4 image for a loop device (the evidence store's O_DIRECT path on ext4).
command -v mkfs.ext4 >/dev/null || [ -x /sbin/mkfs.ext4 ] || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing system packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
