#!/usr/bin/env bash
# Runs the whole test suite (unit, property and integration tests against a real PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo test --locked "$@"
