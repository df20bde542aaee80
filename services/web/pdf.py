"""HTML to PDF through headless Chromium (Debian's `chromium`), for the printable forms."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from services.common.errors import OperatorError

# Flags for a headless run as root on a closed network: no sandbox (root), no GPU, no network
# chatter (component updates, sync, QUIC), a fresh profile each time.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-pdf-header-footer")
MISSING = ("{name!r} not found: PDF output needs headless Chromium "
           "(`make print-deps`, or `apt-get install chromium`; DPHP_CHROMIUM names another binary)")


def chromium_path(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise OperatorError(MISSING.format(name=name))
    return path


def html_to_pdf(html: str, out: Path, chromium: str = "chromium", timeout: float = 120) -> Path:
    """Writes `html` as an A4 PDF to `out` (the page's own @page rules set size and margins)."""
    exe = chromium_path(chromium)
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="dphp-pdf-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(html, encoding="utf-8")
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile", f"--print-to-pdf={out}", page.as_uri()]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise OperatorError(f"chromium did not finish the PDF within {timeout:.0f} s") from None
    if result.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise OperatorError(f"chromium could not write {out}: {last}")
    return out
