#!/usr/bin/env bash
# Install everything (system packages, .venv) and run the whole test suite; pytest arguments pass through.
# The tests start their own PostgreSQL cluster and redis-server on free ports, and drive Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-deps.sh
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/lint-imports  # the layers: pure decisions import no I/O, ingest no center, each layer only those below
.venv/bin/mypy          # types: strict for the pure decisions, default elsewhere; zero errors
exec .venv/bin/pytest -p no:cacheprovider "$@"
