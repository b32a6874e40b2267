#!/usr/bin/env bash
# Set up, load the demo corpus (67 pages of the Python docs) into Milvus Lite, and serve the app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/qa-app load data/python-docs
exec .venv/bin/qa-app serve "$@"
