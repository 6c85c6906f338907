"""``cs-sync slurm upload|download|index|report``: spread an upload, download or index over a Slurm array.

Options of its own (``--tasks``, ``--account``, ``--time`` ...) are read here; any
other option is handed unchanged to every ``cs-sync-upload`` / ``cs-sync-download``
/ ``cs-sync index`` task, so the array does exactly what the single command would,
one shard per task.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path

from cs_sync.cli.common import Parser
from cs_sync.core.errors import UsageError
from cs_sync.slurm.render import SbatchOptions
from cs_sync.slurm.shard_plan import parse_rate, parse_slurm_time

UPLOAD_HELP = """\
Split the faults of FILES_TO_SYNC into --tasks shards balanced by bytes, print each
shard's size (and time at --rate), render upload_array.sl and summary.sl into a run
folder, submit the array (task i runs: cs-sync-upload CS_ROOT FILES_TO_SYNC --shard i/N
plus every other option given here) and a summary job that runs after it.

Options not listed below (--tmp_dir, -t, --max-size, --transfers, ...) go
to cs-sync-upload unchanged; put them after CS_ROOT FILES_TO_SYNC.
"""

DOWNLOAD_HELP = """\
List CS_VER on the remote once, split the selected sets' faults into --tasks shards
balanced by bytes, render download_array.sl and summary.sl into a run folder and
submit them (task i runs: cs-sync-download CS_VER --shard i/N, plus every other option).

Options not listed below (--download_dir, -t, --inc_fault, --rel, ...) go to
cs-sync-download unchanged; put them after CS_VER.
"""


INDEX_HELP = """\
List CS_VER on the remote once, split the selected sets' faults into --tasks shards
balanced by bytes, render index_array.sl and summary.sl into a run folder and
submit them (task i runs `cs-sync index CS_VER --shard i/N` plus every other option).

Options not listed below (-t, --inc_fault, --hash-members, ...) go to
cs-sync index unchanged; put them after CS_VER.
"""


SLURM_HELP = """\
Spread an upload, a download or an index over a Slurm job array: one shard of faults per
task, balanced by bytes, and a summary job that reports when the array ends.
See cs-sync slurm upload --help, and docs/usage.md, "Running on a cluster".
"""


def _add_run_options(p: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """Options of `cs-sync slurm upload/download` itself (not passed through)."""
    d = argparse.SUPPRESS if suppress else None
    p.add_argument("--tasks", type=int, default=d, metavar="N", help="required: the number of array tasks = shards")
    p.add_argument("--account", default=d, metavar="A", help="sbatch --account (project code)")
    p.add_argument("--partition", default=d, metavar="P", help="sbatch --partition")
    p.add_argument("--time", default=d, metavar="T", help="sbatch --time per task, e.g. 12:00:00 or 1-00:00:00")
    p.add_argument("--mem", default=d, metavar="M", help="sbatch --mem per task, e.g. 4G")
    p.add_argument("--cpus_per_task", type=int, default=d, metavar="C", help="sbatch --cpus-per-task")
    p.add_argument("--rate", default=d, metavar="RATE",
                   help="expected transfer rate per task (e.g. 50M = 50 MiB/s): prints each shard's time "
                        "and warns when the largest would not fit --time")
    p.add_argument("--run_dir", default=d, metavar="DIR",
                   help="folder for the scripts, logs and report (default ./cs_sync_runs/VERSION_KIND_TIME)")
    p.add_argument("--dry_run", action="store_true", default=False if not suppress else argparse.SUPPRESS,
                   help="render and print the plan and scripts, submit nothing")
    p.add_argument("--remote", default=d, metavar="ROOT",
                   help="remote root (passed to every task and to the summary's cs-sync status)")


def _version_command(subs, name: str, help_text: str, description: str, example: str) -> argparse.ArgumentParser:
    """A subcommand run on one remote version: CS_VER, the run options, then the tasks' own options."""
    p = subs.add_parser(name, help=help_text, description=description,
                        formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("cs_ver", metavar="CS_VER", help=f"the version on the remote, e.g. {example}")
    _add_run_options(p)
    p.add_argument("passthrough", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def _tasks_required_in_usage(p: argparse.ArgumentParser, rest: str) -> None:
    """Show ``--tasks N`` as required in the usage line. argparse cannot require it: it may also
    be written after the positionals, among the options passed to the tasks (read by _split_options)."""
    usage = p.format_usage().removeprefix("usage: ").strip()
    p.usage = " ".join(usage.replace("[--tasks N]", "--tasks N").split()) + f" {rest}"


def _strict(parser: argparse.ArgumentParser, prog: str) -> argparse.ArgumentParser:
    """Make a command's own parser raise UsageError (one line) instead of exiting."""

    def error(message: str) -> None:
        raise UsageError(f"option for {prog}: {message}")

    parser.error = error  # type: ignore[method-assign]
    return parser


def register(subparsers) -> None:
    sp = subparsers.add_parser("slurm", help="spread an upload, download or index over a Slurm job array",
                               description=SLURM_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    subs = sp.add_subparsers(dest="slurm_command", metavar="ACTION")

    up = subs.add_parser("upload", help="upload a version with an array of cs-sync-upload tasks",
                         description=UPLOAD_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                         allow_abbrev=False)
    up.add_argument("cs_root", metavar="CS_ROOT", help="the version folder (its name is the version)")
    up.add_argument("files_to_sync", metavar="FILES_TO_SYNC", help="files_to_sync.yaml from cs-sync-preprocess")
    _add_run_options(up)
    up.add_argument("passthrough", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    _tasks_required_in_usage(up, "[cs-sync-upload options]")
    up.set_defaults(func=_upload, slurm_kind="upload")

    down = _version_command(subs, "download", "download a version with an array of cs-sync-download tasks",
                            DOWNLOAD_HELP, "v22p12")
    _tasks_required_in_usage(down, "[cs-sync-download options]")
    down.set_defaults(func=_download, slurm_kind="download")

    idx = _version_command(subs, "index", "index the older scripts' sets of a version with an array of cs-sync index "
                           "tasks", INDEX_HELP, "v18p6")
    idx.set_defaults(func=_index, slurm_kind="index")

    rep = subs.add_parser("report", help="(run by summary.sl) report the shards of a finished array",
                          description="Read RUN_DIR/tasks/*.exit (and the status JSON of an upload), write "
                                      "RUN_DIR/report.txt and RUN_DIR/report.html, exit 0 only when everything is complete.")
    rep.add_argument("run_dir", metavar="RUN_DIR")
    rep.add_argument("--kind", choices=["upload", "download", "index"], required=True)
    rep.add_argument("--tasks", type=int, required=True, metavar="N")
    rep.add_argument("--cs_ver", metavar="CS_VER", help="version name shown in the report")
    rep.add_argument("--status_exit", type=int, metavar="CODE", help="exit code of cs-sync status (upload)")
    rep.add_argument("--status_json", metavar="FILE", help="output of cs-sync status --json (upload)")
    rep.add_argument("--array_job", metavar="ID", help="the array's job ID: adds Slurm's state of each task")
    rep.set_defaults(func=_report)

    sp.set_defaults(func=lambda args: (sp.print_help(), 2)[1])


def _split_options(args: argparse.Namespace) -> tuple[str, ...]:
    """Our own options written after the positionals are in ``passthrough``: take them out."""
    ours = Parser(add_help=False, allow_abbrev=False)
    _add_run_options(ours, suppress=True)
    found, rest = ours.parse_known_args(list(args.passthrough))
    for k, v in vars(found).items():
        setattr(args, k, v)
    if any(a == "--shard" or a.startswith("--shard=") for a in rest):
        raise UsageError("--shard is set by cs-sync slurm for each task; leave it out")
    return tuple(rest)


def _bin_dir(command: str) -> str | None:
    """Folder of the cs-sync commands for the jobs: beside this Python (a venv), else on PATH."""
    here = Path(sys.executable).parent / command
    if here.exists():
        return str(here.parent)
    found = shutil.which(command)
    return str(Path(found).parent) if found else None


def _run_settings(args: argparse.Namespace, passthrough: tuple[str, ...], kind: str) -> dict:
    if args.tasks is None:
        raise UsageError("--tasks N is required (the number of array tasks)")
    if args.tasks < 1:
        raise UsageError(f"--tasks {args.tasks}: need at least 1")
    return dict(
        tasks=args.tasks,
        sbatch=SbatchOptions(account=args.account, partition=args.partition, time=args.time, mem=args.mem,
                             cpus_per_task=args.cpus_per_task),
        rate=parse_rate(args.rate) if args.rate else None,
        time_limit=parse_slurm_time(args.time) if args.time else None,
        run_dir=Path(args.run_dir) if args.run_dir else None,
        dry_run=args.dry_run,
        bin_dir=_bin_dir("cs-sync" if kind == "index" else f"cs-sync-{kind}"),
        passthrough=passthrough,
    )


def _print_result(result, show_scripts: bool) -> None:
    for line in result.plan.lines():
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
    print(f"run folder: {result.run_dir}")
    if show_scripts:
        for path in (result.array_script, result.summary_script):
            print(f"\n===== {path} =====")
            print(path.read_text(), end="")
        print(f"\n(dry run: nothing submitted; to submit these scripts: "
              f"sbatch {shlex.quote(str(result.array_script))}, then "
              f"sbatch --dependency=afterany:ARRAY_ID {shlex.quote(str(result.summary_script))})")
        return
    print(f"array job:   {result.array_job} ({len(result.plan.shards)} tasks)")
    print(f"summary job: {result.summary_job} (runs after the array: --dependency=afterany:{result.array_job})")
    for line in result.watch_lines():
        print(line)


def _upload(args: argparse.Namespace) -> int:
    from cs_sync.cli.upload import build_parser, settings_from_args
    from cs_sync.slurm.client import Slurm
    from cs_sync.slurm.submit import UploadRun, prepare_upload

    passthrough = _split_options(args)
    if not Path(args.cs_root).is_dir():
        raise UsageError(f"CS_ROOT {args.cs_root!r} is not a folder",
                         hint="cs-sync-upload options go after CS_ROOT FILES_TO_SYNC")
    # every task runs cs-sync-upload with these options: read them with its own parser
    ns = _strict(build_parser(), "cs-sync-upload").parse_args(
        [args.cs_root, args.files_to_sync, *passthrough, *(("--remote", args.remote) if args.remote is not None else ())])
    upload = settings_from_args(ns)
    # tasks and summary use the remote root resolved here, whatever their environment
    passthrough = (*passthrough, "--remote", upload.remote)
    if ns.dry_run:
        raise UsageError("--dry-run is the slurm command's own: it renders the scripts and submits nothing")
    settings = UploadRun(upload=upload, **_run_settings(args, passthrough, "upload"))
    result = prepare_upload(settings, None if args.dry_run else Slurm())  # (reads the manifest: bad input stops here)
    if ns.tmp_dir is None and not os.environ.get("CS_SYNC_TMP"):
        print("warning: no --tmp_dir: each task keeps its parts and journal in the node's temp folder; on a "
              "multi-node cluster give a shared --tmp_dir so a re-submission finds them", file=sys.stderr)
    _print_result(result, show_scripts=args.dry_run)
    return 0


def _download(args: argparse.Namespace) -> int:
    from cs_sync.cli.common import resolve_remote, version_arg
    from cs_sync.cli.download import build_parser
    from cs_sync.download.engine import DownloadSettings
    from cs_sync.remote.rclone import Rclone
    from cs_sync.slurm.client import Slurm
    from cs_sync.slurm.submit import DownloadRun, prepare_download

    passthrough = _split_options(args)
    ns = _strict(build_parser(), "cs-sync-download").parse_args(
        [args.cs_ver, *passthrough, *(("--remote", args.remote) if args.remote is not None else ())])
    remote = resolve_remote(ns.remote)
    passthrough = (*passthrough, "--remote", remote)  # the root resolved here, whatever the jobs' environment
    download = DownloadSettings(
        version=version_arg(ns.version), remote=remote, download_dir=ns.download_dir, types=tuple(ns.types),
        inc_faults=tuple(ns.inc_fault), exc_faults=tuple(ns.exc_fault), rels=tuple(ns.rel),
        members=tuple(ns.member), allow_incomplete=ns.allow_incomplete, transfers=ns.transfers,
    )
    settings = DownloadRun(download=download, **_run_settings(args, passthrough, "download"))
    result = prepare_download(settings, Rclone(), None if args.dry_run else Slurm())
    _print_result(result, show_scripts=args.dry_run)
    return 0


def _index(args: argparse.Namespace) -> int:
    from cs_sync.cli.common import make_parser
    from cs_sync.cli.index_cmd import add_index_options, settings_from_args
    from cs_sync.remote.rclone import Rclone
    from cs_sync.slurm.client import Slurm
    from cs_sync.slurm.submit import IndexRun, prepare_index

    passthrough = _split_options(args)
    parser = make_parser("cs-sync index", "")
    add_index_options(parser)
    ns = _strict(parser, "cs-sync index").parse_args(
        [args.cs_ver, *passthrough, *(("--remote", args.remote) if args.remote is not None else ())])
    if ns.dry_run:
        raise UsageError("--dry-run is the slurm command's own: it renders the scripts and submits nothing")
    index = settings_from_args(ns)
    passthrough = (*passthrough, "--remote", index.remote)  # the root resolved here, whatever the jobs' environment
    settings = IndexRun(index=index, **_run_settings(args, passthrough, "index"))
    result = prepare_index(settings, Rclone(), None if args.dry_run else Slurm())
    _print_result(result, show_scripts=args.dry_run)
    return 0


def _slurm_states(array_job: str | None) -> dict[int, str]:
    """Slurm's final state of each task of ``array_job`` (best effort: {} when Slurm cannot say)."""
    if not array_job:
        return {}
    from cs_sync.core.errors import SlurmError
    from cs_sync.slurm.client import Slurm

    try:
        return {t.array_task: t.state for t in Slurm().jobs(array_job) if t.array_task is not None}
    except SlurmError as exc:
        print(f"warning: no Slurm states for job {array_job}: {exc.one_line()}", file=sys.stderr)
        return {}


def _report(args: argparse.Namespace) -> int:
    from cs_sync.core.atomic import atomic_write_text
    from cs_sync.slurm.report import build_report, load_status_json, read_task_outcomes

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():  # a mistyped folder: not "every shard never started", and nothing created
        from cs_sync.core.errors import InputError

        raise InputError(f"RUN_DIR {str(run_dir)!r} is not a folder",
                         hint="give the run folder cs-sync slurm printed (it holds tasks/ and run.json)")
    tasks = read_task_outcomes(run_dir, args.kind, args.tasks, _slurm_states(args.array_job))
    status_doc = load_status_json(args.status_json) if args.status_json else None
    recorded = _run_record(run_dir)
    version = args.cs_ver or recorded.get("version")
    # a run folder of `cs-sync slurm` holds the rendered array script: the report can name it
    rendered = (run_dir / f"{args.kind}_array.sl").is_file()
    report = build_report(args.kind, tasks, version=version, status_exit=args.status_exit, status_doc=status_doc,
                          run_dir=str(run_dir.resolve()) if rendered else None,
                          array_job=args.array_job)  # (not run.json's: shards re-run by hand are another array)
    text = "\n".join(report.lines()) + "\n"
    atomic_write_text(run_dir / "report.txt", text)
    _write_html(run_dir / "report.html", report, status_doc)
    print(text, end="")
    return report.exit_code


def _run_record(run_dir: Path) -> dict:
    """run.json of a `cs-sync slurm` run folder ({} when there is none, e.g. templates submitted by hand)."""
    import json

    try:
        doc = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _write_html(path: Path, report, status_doc) -> None:
    """report.html beside report.txt: the shards, and for an upload the version's page
    drawn from the same status JSON (no second listing)."""
    from cs_sync.core.atomic import atomic_write_text
    from cs_sync.ui.html_report import render_run, render_version

    ok = report.exit_code == 0
    if isinstance(status_doc, dict) and {"version", "root", "cells", "faults", "types"} <= set(status_doc):
        html = render_version(status_doc, run={"kind": report.kind, "lines": report.lines(), "ok": ok})
    else:
        html = render_run(report.kind, report.version, report.lines(), ok)
    try:
        atomic_write_text(path, html)
    except OSError as exc:
        print(f"warning: could not write {path}: {exc}", file=sys.stderr)
