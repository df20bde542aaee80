"""Files holding a secret (passwords, keys, SCRAM verifiers): created readable by their owner only,
never briefly with the umask's mode, and replaced atomically. The one way the stacks write them."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str | bytes, owner: tuple[int, int] | None = None) -> None:
    """Writes `path` with mode 0600 from its creation (its folder made 0700 if new); `owner`: a
    (uid, gid) to give it to when running as root (a server that runs as another user reads it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    if owner is not None and os.geteuid() == 0:
        os.chown(tmp, *owner)
    os.replace(tmp, path)
