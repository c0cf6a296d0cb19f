#!/usr/bin/env bash
# Vendor MathJax 3 into docs/javascripts/vendor/mathjax/ so that the site renders maths
# OFFLINE (no CDN: many clusters and this project's machines have no outside network).
#
#   bash docs/scripts/vendor_mathjax.sh            # MathJax 3.2.2 from the npm registry
#   MATHJAX_VERSION=3.2.2 bash docs/scripts/vendor_mathjax.sh
#
# What is copied (about 1.6 MB, committed):
#   es5/tex-mml-chtml.js                -> vendor/mathjax/tex-mml-chtml.js
#   es5/output/chtml/fonts/woff-v2/*    -> vendor/mathjax/output/chtml/fonts/woff-v2/
#   LICENSE                             -> vendor/mathjax/LICENSE  (Apache-2.0)
# The fonts keep MathJax's default relative layout: CHTML output looks for them at
# [mathjax]/output/chtml/fonts/woff-v2, [mathjax] being the folder of the script, so no
# fontURL setting is needed. Without them, CHTML falls back to system fonts and draws
# wrong glyphs. Needs npm; run it only to upgrade MathJax.
set -euo pipefail
version="${MATHJAX_VERSION:-3.2.2}"
here="$(cd "$(dirname "$0")/.." && pwd)"
dest="$here/javascripts/vendor/mathjax"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm install --no-audit --no-fund --silent "mathjax@$version" >/dev/null)
src="$tmp/node_modules/mathjax"
rm -rf "$dest"
mkdir -p "$dest/output/chtml/fonts"
cp "$src/es5/tex-mml-chtml.js" "$dest/"
cp -r "$src/es5/output/chtml/fonts/woff-v2" "$dest/output/chtml/fonts/"
cp "$src/LICENSE" "$dest/LICENSE"
echo "mathjax $version" > "$dest/VERSION"
du -sh "$dest"
