#!/usr/bin/env bash
# Builds the colour image sets (3×32×32, uint8 NPY) under the data directory
# (default ./data-cache, or $EIGENSCORE_DATA) in rgb/<set>/{train,test}.npy:
#   clipart     (ID)        Debian openclipart-png
#   emoji       (near-OOD)  npm emoji-datasource-twitter (Twemoji)
#   emoji-noto  (near-OOD)  npm emoji-datasource-google (Noto Color Emoji)
#   photos      (far-OOD)   Debian plasma-workspace-wallpapers, mate-backgrounds
#   textures    (far-OOD)   Debian extremetuxracer-data
# The packages and their exact versions are pinned in data/colour (printed by
# `eigenscore-rgbdata --list-packages`); Debian ones are installed with apt
# (as root, or run the printed apt-get command), npm ones with npm into
# ${EIGENSCORE_CACHE:-~/.cache/eigenscore}/rgb-npm. The converter then checks
# each package's version and licence from the package's own files (the
# copyright file, README, per-file metadata), converts by the rule of
# docs/data-rgb.md and checks every output's SHA-256 against the committed
# data/rgb-manifest.json; any difference fails.
#
# Idempotent: when the files already match the manifest, nothing is installed
# or rebuilt.
#
#   scripts/setup-rgb.sh                    # install, build, verify
#   scripts/setup-rgb.sh --update-manifest  # rebuild and rewrite the manifest
#                                           # (also EIGENSCORE_RGB_UPDATE_MANIFEST=1)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${EIGENSCORE_DATA:-data-cache}"
npm_root="${EIGENSCORE_CACHE:-$HOME/.cache/eigenscore}/rgb-npm"
update=""
if [ "${1:-}" = "--update-manifest" ] || [ "${EIGENSCORE_RGB_UPDATE_MANIFEST:-}" = 1 ]; then
  update="--update-manifest"
elif [ -n "${1:-}" ]; then
  echo "setup-rgb: unknown argument $1 (want --update-manifest or nothing)" >&2
  exit 2
fi

log() { echo "setup-rgb: $*" >&2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/rgbdata" ./cmd/eigenscore-rgbdata

if [ -z "$update" ] && "$tmp/rgbdata" --check --data-dir "$dir" >/dev/null 2>&1; then
  "$tmp/rgbdata" --check --data-dir "$dir"
  exit 0
fi

# Debian packages at their pinned versions.
need=""
for spec in $("$tmp/rgbdata" --list-packages debian); do
  pkg="${spec%%=*}" ver="${spec#*=}"
  [ "$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null || true)" = "install ok installed $ver" ] ||
    need="$need $spec"
done
if [ -n "$need" ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: run 'sudo apt-get install$need' (Debian bookworm) and run this again"
    exit 1
  fi
  log "installing Debian packages:$need"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# npm packages at their pinned versions, into the cache prefix (all of them
# at once, so that npm keeps each in the prefix's package.json).
command -v npm >/dev/null || { log "npm is required (apt-get install npm, or make deps)"; exit 1; }
specs="$("$tmp/rgbdata" --list-packages npm | tr '\n' ' ')"
for spec in $specs; do
  pkg="${spec%@*}" ver="${spec##*@}"
  pj="$npm_root/node_modules/$pkg/package.json"
  if [ ! -f "$pj" ] || [ "$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1])).version' "$pj")" != "$ver" ]; then
    log "installing npm packages into $npm_root: $specs"
    mkdir -p "$npm_root"
    npm install --prefix "$npm_root" --save-exact --no-audit --no-fund --ignore-scripts --loglevel=error $specs >/dev/null
    break
  fi
done

"$tmp/rgbdata" --data-dir "$dir" --npm-root "$npm_root" $update
