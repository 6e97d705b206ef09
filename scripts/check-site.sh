#!/usr/bin/env bash
# Publishes the demo site into a preview directory (from a throwaway database) and checks it
# with real validators: the Nu Html Checker (vnu.jar) on every HTML page, the Atom schema of
# RFC 4287 (Jing, inside vnu.jar) on feed.xml, the sitemap 0.9 schema (xmllint) on
# sitemap.xml, JSON syntax of api/*.json, and site-check/check.mjs (axe-core in headless
# Chromium on phones and desktops, the Content-Security-Policy, search, folding vectors).
#   scripts/check-site.sh [SITE_DIR] [--screenshots DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --site-check
(cd site-check && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)

site=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then site="$1"; shift; fi
if [ -z "$site" ]; then
  admin="${TEST_DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/postgres}"
  db="tthc_site_check_$$"
  export DATABASE_URL="${admin%/*}/$db"
  trap 'psql "$admin" -qAtc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  work=$(mktemp -d)
  cargo build --locked --quiet
  bin=./target/debug/tthc-sync
  config=demo/tthc-sync.toml
  "$bin" --config "$config" migrate >/dev/null
  "$bin" --config "$config" sync >/dev/null
  "$bin" --config "$config" import --source report demo/report/bao-cao-thang-11-2026.csv >/dev/null
  "$bin" --config "$config" import --source lgsp-demo demo/lgsp/LayDanhSachTTHC-2026-12.xml >/dev/null
  site="$work/site"
  "$bin" --config "$config" publish --preview "$site"
fi

vnu=site-check/node_modules/vnu-jar/build/dist/vnu.jar
echo "==> Nu Html Checker on $(find "$site" -name '*.html' | wc -l) pages"
java -jar "$vnu" --errors-only --skip-non-html "$site"
echo "==> Atom (RFC 4287 schema) on feed.xml"
java -cp "$vnu" nu.validator.vendor.thaiopensource.relaxng.util.Driver -c site-check/schemas/atom.rnc "$site/feed.xml"
echo "==> sitemap 0.9 schema on sitemap.xml"
xmllint --noout --schema site-check/schemas/sitemap.xsd "$site/sitemap.xml"
echo "==> JSON documents"
for f in "$site"/api/*.json; do node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$f"; done
echo "==> axe-core, CSP and search in headless Chromium"
node site-check/check.mjs "$site" "$@"
