#!/usr/bin/env bash
# The dashboard's browser test drives Debian's Chromium (no browser download):
# install it, with a font for Chinese, when it is missing and we may (root, apt).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: installing chromium with apt ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
else
  echo "browser: no /usr/bin/chromium; the dashboard's browser test needs it (sudo apt-get install chromium)" >&2
  exit 1
fi
