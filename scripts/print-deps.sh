#!/usr/bin/env bash
# Installs what printable forms and their tests need, when absent (idempotent): headless
# Chromium (PDF output, the browser test) and poppler-utils (pdftotext, the PDF test).
set -euo pipefail
need=""
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v pdftotext >/dev/null 2>&1 || need="$need poppler-utils"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "needs:$need (Debian: sudo apt-get install -y$need)" >&2
  exit 1
fi
echo "installing:$need" >&2
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >/dev/null
