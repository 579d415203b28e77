#!/usr/bin/env bash
# Make sure the cached Airflow virtualenv exists and has this checkout's jobbers and
# airflow-jobbers installed (editable). Idempotent; a no-op in about a second when cached.
#
#   airflow-jobbers/scripts/ensure-venv.sh [--dev]     # --dev adds mypy/ruff/pytest
#
# Prints the venv's path as its last line. Env: AIRFLOW_VERSION (3.3.2), JOBBERS_AIRFLOW_VENV.
set -euo pipefail

AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
PYTHON="${PYTHON:-python3.11}"
VENV="${JOBBERS_AIRFLOW_VENV:-/var/cache/jobbers/airflow-${AIRFLOW_VERSION}}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROVIDER_DIR="$(dirname "$HERE")"
REPO="$(dirname "$PROVIDER_DIR")"
DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1

log() { echo "ensure-venv: $*" >&2; }

mkdir -p "$(dirname "$VENV")"
exec 9>"${VENV}.lock"
flock -w 1200 9 || { log "timed out waiting for ${VENV}.lock"; exit 1; }

base_marker="$VENV/.airflow-${AIRFLOW_VERSION}-ready"
if [[ ! -f "$base_marker" ]]; then
    log "building $VENV (apache-airflow==${AIRFLOW_VERSION}); this takes a few minutes once"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    # No constraints file is reachable (it lives on GitHub); pin what a plain resolve breaks here.
    pins=()
    if [[ $AIRFLOW_VERSION == 3.2.* ]]; then
        # 3.2 leaves fastapi uncapped; fastapi 0.137+ (pulled in by cadwyn 9) breaks its
        # Execution API's TITerminalStatePayload discriminator and the api-server dies at start.
        pins=("fastapi[standard-no-fastapi-cloud-cli]<0.137" "cadwyn<9")
    fi
    "$VENV/bin/pip" install -q "apache-airflow==${AIRFLOW_VERSION}" psycopg2-binary asyncpg "${pins[@]}"
    "$VENV/bin/python" -c "import airflow, psycopg2, asyncpg; assert airflow.__version__ == '${AIRFLOW_VERSION}'"
    touch "$base_marker"
fi

# Our own packages: editable, so code changes need no reinstall; reinstalled only when a
# pyproject (dependencies, entry points) changes.
key="$(cat "$REPO/pyproject.toml" "$PROVIDER_DIR/pyproject.toml" | sha256sum | cut -c1-16)-${REPO//\//_}"
own_marker="$VENV/.own-${key}"
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
pin_installed() {
    # Pin everything already installed, so what we add never moves Airflow's dependencies.
    "$VENV/bin/pip" freeze --exclude-editable | grep -v -e '^-e ' -e ' @ ' > "$constraints" || true
}
if [[ ! -f "$own_marker" ]]; then
    log "installing jobbers and airflow-jobbers from $REPO (editable)"
    pin_installed
    "$VENV/bin/pip" install -q -c "$constraints" -e "$REPO" -e "$PROVIDER_DIR"
    "$VENV/bin/python" -c "import jobbers, airflow_jobbers.provider"
    rm -f "$VENV"/.own-*
    touch "$own_marker"
fi
if [[ $DEV == 1 && ! -x "$VENV/bin/mypy" ]]; then
    log "installing mypy, ruff and pytest into $VENV"
    pin_installed
    "$VENV/bin/pip" install -q -c "$constraints" mypy ruff pytest pytest-timeout
fi
echo "$VENV"
