"""The `dphp` command for operators (CONTRACT section 4)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="dphp",
    help="DPHP: the updated voter list (Daftar Pemilih Hasil Pemutakhiran) and its recapitulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each command module adds its commands to `app`; imports stay cheap (no I/O at import).
    from services.cli import demo_cmd, dev_cmd, dlq_cmd, publish_cmd, read_cmd, replay_cmd, sample_cmd  # noqa: F401
    from services.cli import subscribe_cmd  # noqa: F401


def main() -> None:
    _register()
    app()
