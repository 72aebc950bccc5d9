#!/usr/bin/env bash
# Create .venv and install the project with its Python dependencies; fast when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do command -v "$c" >/dev/null && PY=$c && break; done
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing Python dependencies into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  # face_recognition declares a dependency on dlib (a long C++ build); dlib-bin above provides it.
  .venv/bin/python -m pip install -q --no-deps "face_recognition==1.3.0"
  .venv/bin/python -c "import face_recognition, dlib"
  rm -f .venv/.installed-* && touch "$stamp"
fi
