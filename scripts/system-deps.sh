#!/usr/bin/env bash
# Installs the Debian packages that features and their tests need, when absent (idempotent):
# headless Chromium (PDF output, the browser test), poppler-utils (pdftotext, the PDF test) and
# prometheus (`dphp dev up --monitoring`, and promtool for the alert rules' test).
set -euo pipefail
need=""
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v pdftotext >/dev/null 2>&1 || need="$need poppler-utils"
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || need="$need prometheus"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "needs:$need (Debian: sudo apt-get install -y$need)" >&2
  exit 1
fi
echo "installing:$need" >&2
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >/dev/null
