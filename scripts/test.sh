#!/usr/bin/env bash
# Install everything (system packages, .venv) and run the whole test suite; pytest arguments pass through.
# The tests start their own PostgreSQL cluster and redis-server on free ports, and drive Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/pytest -p no:cacheprovider "$@"
