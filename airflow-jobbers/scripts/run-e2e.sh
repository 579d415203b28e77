#!/usr/bin/env bash
# The airflow-jobbers suite: unit tests, then the end-to-end tests against a real Airflow 3.3.2
# (api-server, scheduler, dag-processor) and Jobbers (Manager + workers) on loopback ports,
# with a fresh PostgreSQL database on 127.0.0.1:5432 (dropped at the end). Jobbers runs on SQLite,
# then the tests marked `redis` run again with Jobbers on a private redis-server (spare port), and
# the tests marked `postgres` with the Jobbers store in Airflow's own database (schema jobbers).
#
#   airflow-jobbers/scripts/run-e2e.sh [pytest args...]
#   JOBBERS_E2E_STORES=redis airflow-jobbers/scripts/run-e2e.sh    # some of sqlite,redis,postgres
#
# Runs under the repository's test interpreter ($PYTHON, default $JOBBERS_VENV/bin/python, else
# .venv/bin/python; it needs pytest, pytest-timeout, httpx and redis). Airflow runs from its own cached
# virtualenv, built on first use by ensure-venv.sh (minutes once, about a second afterwards).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROVIDER_DIR="$(dirname "$HERE")"
REPO="$(dirname "$PROVIDER_DIR")"
cd "$REPO"
PYTHON="${PYTHON:-${JOBBERS_VENV:-.venv}/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"
PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"  # absolute, links kept

if ! pg_isready -q -h "${JOBBERS_E2E_PGHOST:-127.0.0.1}" -p "${JOBBERS_E2E_PGPORT:-5432}"; then
    echo "run-e2e: PostgreSQL is not answering on 127.0.0.1:5432 (trust auth, user postgres)" >&2
    exit 1
fi

if [[ "${JOBBERS_E2E_STORES:-sqlite,redis,postgres}" == *redis* ]] && ! command -v redis-server >/dev/null; then
    echo "run-e2e: redis-server is not installed (apt-get install redis-server)" >&2
    exit 1
fi

start=$(date +%s)
timeout 1500 bash "$HERE/ensure-venv.sh" >/dev/null
echo "run-e2e: Airflow venv ready in $(( $(date +%s) - start ))s"

exec timeout 2400 "$PYTHON" -m pytest -c "$PROVIDER_DIR/pyproject.toml" \
    --rootdir "$PROVIDER_DIR" -p no:cacheprovider --durations=15 "$PROVIDER_DIR/tests" "$@"
