#!/usr/bin/env bash
# Screenshots of the chat page's states (an approximation of the mini-program, see
# tests/preview/render.preview.js) into preview/*.png, with Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${PREVIEW_OUT:-$PWD/preview}"
PREVIEW_OUT="$out" npx jest --testMatch '**/tests/preview/*.preview.js' --testPathIgnorePatterns /node_modules/
for html in "$out"/*.html; do
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=390,844 \
    --screenshot="${html%.html}.png" "file://$html" 2>/dev/null
done
ls "$out"/*.png
