#!/usr/bin/env bash
# Checks the deployment files: the compose file with `docker compose config` where Docker is
# installed, else against the Compose specification's JSON schema; the systemd units with
# systemd-analyze where it is available.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  docker compose -f docker/compose.yaml config --quiet
  echo "docker/compose.yaml: docker compose config passed"
else
  python3 site-check/compose_check.py docker/compose.yaml
fi
if command -v systemd-analyze >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  # The binary need not be installed here: only the units' syntax is checked.
  systemd-analyze verify --man=no deploy/*.service deploy/*.timer 2>&1 | grep -v 'is not executable\|No such file' || true
fi
