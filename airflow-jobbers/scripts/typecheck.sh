#!/usr/bin/env bash
# mypy --strict for airflow_jobbers, run inside the cached Airflow venv (where Airflow's types
# are): airflow-jobbers/scripts/typecheck.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$(bash "$HERE/ensure-venv.sh" --dev | tail -1)"
cd "$(dirname "$HERE")"
exec "$VENV/bin/mypy" --strict
