#!/usr/bin/env bash
# Runs the whole test suite: unit, property and integration tests against a real PostgreSQL,
# then the validators on a published demo site and the admin page (scripts/check-site.sh), and
# the deployment files (scripts/check-deploy.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --site-check
cargo test --locked "$@"
./scripts/check-site.sh
./scripts/check-deploy.sh
