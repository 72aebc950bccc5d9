#!/usr/bin/env bash
# Install the Python dependencies into .venv and start the dispatch center in demo mode (embedded defaults:
# SQLite, in-process bus, local evidence store) with a simulator of classes across Yunnan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/monitor demo "$@"
