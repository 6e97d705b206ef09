#!/usr/bin/env bash
# Publishes the demo site into a preview directory (from a throwaway database) and checks it
# with real validators: the Nu Html Checker (vnu.jar) on every HTML page, the Atom schema of
# RFC 4287 (Jing, inside vnu.jar) on feed.xml, the sitemap 0.9 schema (xmllint) on
# sitemap.xml, JSON syntax of api/*.json, and site-check/check.mjs (axe-core in headless
# Chromium on phones and desktops, the Content-Security-Policy, search, folding vectors).
# Then, unless SITE_DIR is given, the admin page of `tthc-sync serve` on the same data, logged
# in: site-check/admin.mjs (axe-core, CSP, a resync through the form) and vnu on its pages.
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
  serve_pid=""
  trap '[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; psql "$admin" -qAtc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
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

if [ -n "${bin:-}" ]; then
  echo "==> the admin page of tthc-sync serve, logged in"
  # The demo's configuration, publishing into the throwaway directory instead of demo/site.
  sed -e "s|^mappings_dir = .*|mappings_dir = \"$PWD/mappings\"|" \
      -e "s|base_url = \"file:|base_url = \"file:$PWD/demo/|" \
      -e "s|^output_dir = .*|output_dir = \"$work/live/xa-cong-hoa\"|" \
      "$config" > "$work/admin.toml"
  password="kiểm tra trang quản trị"
  printf '%s\n' "$password" | "$bin" --config "$work/admin.toml" user add kiem-tra --operator >/dev/null
  "$bin" --config "$work/admin.toml" serve --listen 127.0.0.1:0 2>"$work/serve.log" &
  serve_pid=$!
  for _ in $(seq 1 150); do grep -q 'serving on' "$work/serve.log" && break; sleep 0.2; done
  url=$(grep -o 'serving on http://[0-9.:]*' "$work/serve.log" | head -1 | sed 's/serving on //')
  if [ -z "$url" ]; then cat "$work/serve.log" >&2; echo "error: tthc-sync serve did not start" >&2; exit 1; fi
  shots=""
  for ((i = 1; i <= $#; i++)); do
    if [ "${!i}" = "--screenshots" ]; then j=$((i + 1)); shots="${!j}"; fi
  done
  node site-check/admin.mjs "$url" kiem-tra "$password" "$work/admin" $shots
  java -jar "$vnu" --errors-only "$work/admin"
  echo "Nu Html Checker: $(ls "$work/admin" | wc -l) admin pages valid"
  kill -TERM "$serve_pid"; wait "$serve_pid"; serve_pid=""
fi
