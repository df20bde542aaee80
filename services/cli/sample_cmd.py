"""`dphp sample`: write a deterministic, realistic sample of events (JSONL) for a kabupaten/kota or a provinsi."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from services.cli.common import OutputFormat, err, fail, out
from services.cli.main import app


@app.command("sample")
def sample(
    out_file: Path = typer.Option(..., "--out", "-o", help="JSONL file to write, one CloudEvent a line "
                                  "(replaced if it exists; written to FILE.tmp first).",
                                  dir_okay=False, show_default=False),
    region: str = typer.Option("33.16", "--region", "-r",
                               help="Kemendagri code of a kabupaten/kota (33.16 is Kabupaten Blora) or of a "
                               "provinsi (33 is Jawa Tengah: every kabupaten/kota of it)."),
    voters: int = typer.Option(None, "--voters", "-n", show_default=False,
                               help="Number of voters (distinct NIKs). Default: 700,000 for a kabupaten "
                               "(Blora had about that); for Jawa Tengah its 28,427,616."),
    seed: int = typer.Option(1, "--seed", help="The same seed, region and voters give byte-identical output."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format",
                                     help="Summary on stdout as table, json or csv."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar on stderr."),
) -> None:
    """Write a sample of DPHP events for one kabupaten/kota, or for every one of a provinsi
    (voters split by the kabupaten/kota's sizes; memory of one kabupaten at a time): voters registered during coklit
    (with corrections), voters moved (every reason, out of the region, into TPS 901 lokasi
    khusus) and the recapitulation meetings of every desa, kecamatan and the kabupaten.
    Publish it with `dphp publish FILE`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from services.sample.generator import SampleError, check_region, write_sample
    from services.sample.province import check_province, default_voters, write_province_sample

    province = region.strip().isdigit() and len(region.strip()) == 2
    try:
        region, _ = check_province(region) if province else check_region(region)
    except SampleError as exc:
        fail(str(exc), code=2)
    if voters is None:
        voters = (default_voters(region) or 0) if province else 700_000
        if voters == 0:
            fail(f"give --voters for provinsi {region} (no default size known)", code=2)
    if voters < 1:
        fail(f"--voters must be at least 1, not {voters}", code=2)
    write = write_province_sample if province else write_sample
    folder = out_file.parent
    if not folder.is_dir():
        fail(f"cannot write {out_file}: no such directory {folder}", code=1)
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TextColumn("voters"), TimeElapsedColumn(),
                        console=err, transient=False, disable=quiet)
    task = progress.add_task(f"sample {escape(region)}", total=voters)

    def advance(done: int) -> None:
        if not progress.live.is_started:  # shown from the first report on: errors come before it
            progress.start()
        progress.update(task, completed=done)

    try:
        try:
            stats = write(region, voters, seed, out_file, progress=advance)
        finally:
            progress.stop()
    except SampleError as exc:
        fail(str(exc), code=2)
        return
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}", code=1)
        return

    rate = stats.events_per_second
    if fmt is OutputFormat.json:
        print(json.dumps({"file": str(out_file), **stats.as_dict(), "events_per_second": round(rate, 1)}))
        return
    rows: list[tuple[str, str]] = [
        ("file", str(out_file)),
        ("region", f"{stats.region} {stats.region_name}"),
        ("seed", str(stats.seed)),
        ("events", f"{stats.events:,}"),
        ("  voter-registered", f"{stats.registrations:,} ({stats.corrections:,} corrections)"),
        ("  voter-moved", f"{stats.moves:,} (" + ", ".join(f"{k} {v:,}" for k, v in stats.moves_by_reason.items())
         + f"; out of the region {stats.moves_out_of_region:,}, into TPS lokasi khusus {stats.moves_to_loksus:,})"),
        ("  meeting-held", f"{stats.meeting_events:,} (" + ", ".join(
            f"{k} {v:,}" for k, v in stats.meetings_by_level.items())
         + f"; {stats.discrepant_meetings} with declared figures off)"),
        ("voters", f"{stats.voters:,} registered; eligible {stats.total:,} (L {stats.male:,}, P {stats.female:,}); "
                   f"under age {stats.under_age:,}"),
        ("new voters / disabled", f"{stats.new_voters:,} / {stats.disabled:,}"),
        ("TPS", f"{stats.tps_count:,} in {stats.desa} desa/kelurahan, {stats.kecamatan} kecamatan; "
                f"lokasi khusus {stats.tps_loksus_count} ({stats.loksus_tps}, {stats.inmates} inmates registered); "
                f"fullest {stats.max_tps_voters}"),
        ("size", f"{stats.bytes / 1e6:,.1f} MB"),
        ("time", f"{stats.seconds:.1f} s, {rate:,.0f} events/s"),
    ]
    if fmt is OutputFormat.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(("field", "value"))
        flat = {"file": str(out_file), **stats.as_dict(), "events_per_second": round(rate, 1)}
        for key, value in flat.items():
            if isinstance(value, dict):
                writer.writerows((f"{key}.{k}", v) for k, v in value.items())
            else:
                writer.writerow((key, value))
        return
    table = Table("sample", "", show_header=False)
    for key, value in rows:
        table.add_row(key, value)  # the console prints strings as text
    out.print(table)
