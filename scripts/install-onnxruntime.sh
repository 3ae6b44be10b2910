#!/usr/bin/env bash
# Installs the ONNX Runtime shared library used by the denoise/onnx backend.
#
# The library is taken from the onnxruntime-node npm package (which ships the
# official Linux x64 build of libonnxruntime.so), fetched with `npm pack` and
# verified against a pinned SHA-256. The result is cached at
#
#   ${EIGENSCORE_CACHE:-$HOME/.cache/eigenscore}/onnxruntime-1.30.0/libonnxruntime.so.1
#
# The script is idempotent: when the verified file is already there it does
# nothing. The last line printed on stdout is the library path, so
#
#   export ONNXRUNTIME_LIB="$(scripts/install-onnxruntime.sh | tail -n1)"
#
# works. Requires npm, tar and sha256sum.
set -euo pipefail

ORT_VERSION="1.30.0"
ORT_PACKAGE="onnxruntime-node@${ORT_VERSION}"
ORT_MEMBER="package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
ORT_SHA256="ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23"

cache_root="${EIGENSCORE_CACHE:-$HOME/.cache/eigenscore}"
dest_dir="${cache_root}/onnxruntime-${ORT_VERSION}"
dest="${dest_dir}/libonnxruntime.so.1"

log() { echo "install-onnxruntime: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

case "$(uname -s)/$(uname -m)" in
Linux/x86_64) ;;
*) die "only linux/x86_64 is supported by this script (found $(uname -s)/$(uname -m)); set ONNXRUNTIME_LIB to a libonnxruntime from an ONNX Runtime release instead" ;;
esac

if [[ -f "$dest" ]]; then
	if [[ "$(sha_of "$dest")" == "$ORT_SHA256" ]]; then
		log "already installed and verified: $dest"
		echo "$dest"
		exit 0
	fi
	log "existing $dest has the wrong checksum; removing it and downloading again"
	rm -f "$dest"
fi

command -v npm >/dev/null || die "npm is required (e.g. apt-get install npm)"
command -v tar >/dev/null || die "tar is required"
command -v sha256sum >/dev/null || die "sha256sum is required (coreutils)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

log "fetching ${ORT_PACKAGE} with npm pack"
tgz="$(cd "$tmp" && npm pack --silent "$ORT_PACKAGE" | tail -n1)"
[[ -n "$tgz" && -f "$tmp/$tgz" ]] || die "npm pack ${ORT_PACKAGE} produced no tarball"

tar -xzf "$tmp/$tgz" -C "$tmp" "$ORT_MEMBER" ||
	die "${ORT_MEMBER} not found in ${tgz}"

got="$(sha_of "$tmp/$ORT_MEMBER")"
if [[ "$got" != "$ORT_SHA256" ]]; then
	rm -f "$tmp/$ORT_MEMBER"
	die "checksum mismatch for ${ORT_MEMBER} from ${ORT_PACKAGE}: got ${got}, want ${ORT_SHA256}; the file was removed"
fi

mkdir -p "$dest_dir"
# Install atomically so that a concurrent reader never sees a partial file.
cp "$tmp/$ORT_MEMBER" "$dest.tmp.$$"
chmod 0644 "$dest.tmp.$$"
if [[ "$(sha_of "$dest.tmp.$$")" != "$ORT_SHA256" ]]; then
	rm -f "$dest.tmp.$$"
	die "checksum mismatch after copying to ${dest_dir}; the file was removed"
fi
mv -f "$dest.tmp.$$" "$dest"

log "installed ONNX Runtime ${ORT_VERSION}: $dest"
echo "$dest"
