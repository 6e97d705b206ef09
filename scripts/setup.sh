#!/usr/bin/env bash
# Makes this machine ready to build and test tthc-sync: system libraries, a running PostgreSQL
# reachable at 127.0.0.1:5432 by the current user without a password, and a Rust toolchain.
# Safe to run again: it only does what is missing.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
need_pkg() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: no Rust toolchain (cargo) on PATH; install Rust (rustup) first" >&2
  exit 1
fi

need_pkg pkg-config libpq-dev libssl-dev postgresql postgresql-contrib
if [ "${1:-}" = "--site-check" ]; then
  # What the published-site checks need: Java for the Nu Html Checker, Chromium for axe-core,
  # xmllint for the sitemap schema, Node.js and npm for the check script.
  command -v java >/dev/null 2>&1 || need_pkg default-jre-headless
  need_pkg chromium libxml2-utils
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need_pkg nodejs npm
  # The compose file's schema check where Docker is missing (scripts/check-deploy.sh).
  python3 -c 'import yaml, jsonschema' 2>/dev/null || need_pkg python3-yaml python3-jsonschema
  python3 -m pip --version >/dev/null 2>&1 || need_pkg python3-pip
fi

PGHOST_URL="${TEST_DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/postgres}"
pg_ready() { psql "$PGHOST_URL" -Atqc 'select 1' >/dev/null 2>&1; }

if ! pg_ready; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
  if [ -z "$version" ]; then
    echo "error: PostgreSQL is installed but has no cluster under /etc/postgresql" >&2
    exit 1
  fi
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $4}' | grep -q online; then
    log "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root pg_ctlcluster "$version" main start
  fi
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi

if ! pg_ready; then
  # A freshly installed cluster: let the current user in over TCP from this machine only.
  version=$(ls /etc/postgresql | sort -V | tail -1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  user=$(id -un)
  log "creating PostgreSQL role $user and trusting local TCP connections in $hba"
  as_root su postgres -c "psql -Atqc \"SELECT 1 FROM pg_roles WHERE rolname = '$user'\" | grep -q 1 || createuser --superuser '$user'"
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || as_root pg_ctlcluster "$version" main reload
  for _ in $(seq 1 15); do pg_ready && break; sleep 1; done
fi

if ! pg_ready; then
  echo "error: cannot reach PostgreSQL at $PGHOST_URL; start it or set TEST_DATABASE_URL" >&2
  exit 1
fi
log "PostgreSQL ready at $PGHOST_URL"
