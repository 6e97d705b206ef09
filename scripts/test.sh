#!/usr/bin/env bash
# Runs the whole test suite: unit, property and integration tests against a real PostgreSQL,
# then the validators on a published demo site and the admin page (scripts/check-site.sh), and
# the deployment files (scripts/check-deploy.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --site-check
# The site the decisions test publishes (an abolished procedure, cited decisions) is kept for
# the Nu Html Checker below.
decisions_site="$(mktemp -d)/site"
trap 'rm -rf "$(dirname "$decisions_site")"' EXIT
TTHC_KEEP_DECISIONS_SITE="$decisions_site" cargo test --locked "$@"
./scripts/check-site.sh
if [ -d "$decisions_site" ]; then
  echo "==> Nu Html Checker on the decisions test's site"
  java -jar site-check/node_modules/vnu-jar/build/dist/vnu.jar --errors-only --skip-non-html "$decisions_site"
elif [ $# -eq 0 ]; then
  echo "error: the decisions test did not keep its site in $decisions_site" >&2
  exit 1
fi
./scripts/check-deploy.sh
