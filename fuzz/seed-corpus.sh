#!/usr/bin/env bash
# Prepares the fuzzing corpora. Adds the shared corpus of real-world HAProxy configurations (third-party files under their own
# licences, ../shared/corpus/haproxy) to the fuzzing seeds at run time. They are test data we
# read, not files we ship, so they are not committed here; the committed seeds are our own
# (the broken-config catalogue and the seed topology).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src="$here/../../shared/corpus/haproxy"
[ -d "$src" ] || { # The other targets: our own seeds (fuzz/seeds) and the hardening corpus of raw requests.
for t in request_head chunked cookie_header; do mkdir -p "$here/corpus/$t"; done
cp "$here"/seeds/chunked/* "$here/corpus/chunked/"
cp "$here"/seeds/cookie_header/* "$here/corpus/cookie_header/"
cp "$here"/../hardening/corpus/*.http "$here/corpus/request_head/"
echo "seed-corpus: $src not found" >&2; exit 1; }
mkdir -p "$here/corpus/config_parse"
for f in "$src"/*.cfg "$src"/templated/*.cfg; do
  [ -f "$f" ] && cp "$f" "$here/corpus/config_parse/shared-$(basename "$f")"
done
# The other targets: our own seeds (fuzz/seeds) and the hardening corpus of raw requests.
for t in request_head chunked cookie_header; do mkdir -p "$here/corpus/$t"; done
cp "$here"/seeds/chunked/* "$here/corpus/chunked/"
cp "$here"/seeds/cookie_header/* "$here/corpus/cookie_header/"
cp "$here"/../hardening/corpus/*.http "$here/corpus/request_head/"
echo "seed-corpus: $(ls "$here/corpus/config_parse" | wc -l) seeds in fuzz/corpus/config_parse"
