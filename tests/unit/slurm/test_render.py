"""The job scripts: shipped templates equal slurm/, rendering is pure and exact."""

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from cs_sync.core.errors import UsageError
from cs_sync.slurm.render import (
    TEMPLATES,
    DownloadArrayJob,
    SbatchOptions,
    SummaryJob,
    UploadArrayJob,
    load_template,
    render,
    render_download_array,
    render_summary,
    render_upload_array,
    sbatch_value,
)

ROOT = Path(__file__).resolve().parents[3]


def sbatch_lines(script: str) -> list[str]:
    return [ln for ln in script.splitlines() if ln.startswith("#SBATCH")]


def settings_block(script: str) -> list[str]:
    lines = script.splitlines()
    b = lines.index("# ---- settings (cs-sync slurm writes values here) ----")
    e = lines.index("# ---- end of settings ----")
    return lines[b + 1:e]


def body(script: str) -> str:
    return script[script.index("# ---- end of settings ----"):]


@pytest.mark.parametrize("name", TEMPLATES)
def test_package_templates_are_the_slurm_folder_files(name):
    assert (ROOT / "slurm" / name).read_bytes() == (ROOT / "cs_sync" / "slurm" / "templates" / name).read_bytes()
    assert load_template(name) == (ROOT / "slurm" / name).read_text()


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_have_commented_nesi_style_headers(name):
    text = load_template(name)
    opts = {}
    for ln in text.splitlines():
        m = re.match(r"^#{1,2}SBATCH --([a-z-]+)=(\S+)\s+#\s*(\S.*)$", ln)
        if m:
            opts[m.group(1)] = m.group(2)
        elif "SBATCH" in ln and ln.startswith("#") and "--" in ln and not ln.startswith("# "):
            pytest.fail(f"{name}: #SBATCH line without a comment: {ln}")
    assert {"job-name", "account", "partition", "time", "mem", "cpus-per-task", "output"} <= set(opts)
    assert "%A_%a" in opts["output"] if "array" in name else "%j" in opts["output"]
    assert "\n# module add rclone" in text
    assert "settings (cs-sync slurm writes values here)" in text
    # the variables it needs are documented at the top and checked in the body
    for var in set(re.findall(r"\$\{([A-Z_]+):\?", text)) - {"SLURM_ARRAY_TASK_ID"}:  # set by Slurm
        assert f"#   {var}" in text.split("#SBATCH")[0], f"{name}: {var} not documented"


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_are_valid_bash(name):
    subprocess.run(["bash", "-n", str(ROOT / "slurm" / name)], check=True)


def upload_job(**kw):
    args = dict(cs_root="/scratch/v22p12", files_to_sync="/scratch/files_to_sync.yaml", tasks=3,
                run_dir="/scratch/runs/r1", upload_args=("--remote", "dropbox:Cyber shake", "-t", "BB", "--max-size", "1G"),
                bin_dir="/opt/venv/bin")
    args.update(kw)
    return UploadArrayJob(**args)


def test_upload_array_header_only_for_given_options_and_array_from_tasks():
    text = render_upload_array(upload_job())
    assert sbatch_lines(text) == ["#SBATCH --array=0-2                      # one task per shard: task i runs shard i"]
    text = render_upload_array(upload_job(tasks=4, sbatch=SbatchOptions(
        account="nesi00123", time="02:00:00", mem="4G", cpus_per_task=2, output="/r/logs/upload_%A_%a.out")))
    opts = [ln.split()[1] for ln in sbatch_lines(text)]
    assert opts == ["--account=nesi00123", "--time=02:00:00", "--mem=4G", "--cpus-per-task=2",
                    "--output=/r/logs/upload_%A_%a.out", "--array=0-3"]
    # the template's comment for an option comes along
    assert any("your project code" in ln for ln in sbatch_lines(text) if "--account" in ln)
    assert "--partition" not in text.split("# ---- settings")[0].replace("##SBATCH", "")


def test_upload_settings_are_shell_quoted_and_round_trip_through_bash():
    job = upload_job()
    text = render_upload_array(job)
    settings = settings_block(text)
    assert settings[0] == "CS_ROOT=/scratch/v22p12"
    script = "\n".join(settings) + '\neval "opts=($CS_UPLOAD_OPTS)"\nprintf "%s\\n" "$CS_ROOT" "$CS_SHARDS" "$CS_RUN_DIR" "$CS_SYNC_BIN" "${opts[@]}"\n'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["/scratch/v22p12", "3", "/scratch/runs/r1", "/opt/venv/bin", *job.upload_args]


def test_nasty_values_are_quoted_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    job = upload_job(cs_root=f"/x/$(touch {marker})", upload_args=("--tmp_dir", f"a'b\"; touch {marker}"))
    text = render_upload_array(job)
    script = "\n".join(settings_block(text)) + '\neval "opts=($CS_UPLOAD_OPTS)"\nprintf "%s\\n" "$CS_ROOT" "${opts[@]}"\n'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [job.cs_root, *job.upload_args]
    assert not marker.exists()


def test_task_runs_upload_with_shard_of_n_and_body_is_the_templates():
    text = render_upload_array(upload_job())
    assert body(text) == body(load_template("upload_array.sl"))
    assert '"${bin}cs-sync-upload" "$CS_ROOT" "$FILES_TO_SYNC" --shard "$task/$CS_SHARDS" "${opts[@]}"' in text
    assert "CS_SHARDS=3" in settings_block(text)


def test_unset_variables_are_not_written():
    text = render_upload_array(upload_job(bin_dir=None))
    assert not any(ln.startswith("CS_SYNC_BIN=") for ln in settings_block(text))


def test_download_array():
    text = render_download_array(DownloadArrayJob(version="v22p12", tasks=2, run_dir="/r",
                                                  download_args=("--download_dir", "/d", "-t", "BB")))
    assert "#SBATCH --array=0-1" in text
    s = settings_block(text)
    assert "CS_VER=v22p12" in s and "CS_SHARDS=2" in s
    assert f"CS_DOWNLOAD_OPTS={shlex.quote('--download_dir /d -t BB')}" in s
    assert '--shard "$task/$CS_SHARDS"' in text


def test_summary_and_preprocess():
    text = render_summary(SummaryJob(kind="upload", version="v1", tasks=3, run_dir="/r", remote="x:y",
                                     files_to_sync="/f.yaml", sbatch=SbatchOptions(account="a")))
    s = settings_block(text)
    assert s == ["CS_KIND=upload", "CS_VER=v1", "CS_SHARDS=3", "CS_RUN_DIR=/r", "CS_REMOTE=x:y", "FILES_TO_SYNC=/f.yaml"]
    assert [ln.split()[1] for ln in sbatch_lines(text)] == ["--account=a"]
    with pytest.raises(ValueError):
        render_summary(SummaryJob(kind="sideways", version="v1", tasks=1, run_dir="/r"))


def test_sbatch_values():
    assert sbatch_value("time", "1-00:00:00") == "1-00:00:00"
    assert sbatch_value("output", "/a b/%x_%A_%a.out") == '"/a b/%x_%A_%a.out"'
    for bad in ('a"b', "a\nb", "  ", "a\\b"):
        with pytest.raises(UsageError):
            sbatch_value("account", bad)


def test_tasks_must_be_positive():
    with pytest.raises(UsageError):
        render_upload_array(upload_job(tasks=0))


def test_render_requires_settings_block_and_directives():
    with pytest.raises(ValueError):
        render("#!/bin/bash\n#SBATCH --time=1\n", SbatchOptions(), {})
    with pytest.raises(ValueError):
        render("#!/bin/bash\n# ---- settings (cs-sync slurm writes values here) ----\n# ---- end of settings ----\n",
               SbatchOptions(), {})


SECRET_REMOTE = ":webdav,url='http://h:1',user=u,pass=OBSCURED:archive"


def test_credentials_are_never_rendered_into_a_script():
    with pytest.raises(ValueError, match="credentials"):
        render_upload_array(upload_job(upload_args=("--remote", SECRET_REMOTE)))
    with pytest.raises(ValueError, match="credentials"):
        render_summary(SummaryJob(kind="upload", version="v1", tasks=1, run_dir="/r", remote=SECRET_REMOTE))


def test_a_remote_file_is_read_by_every_script(tmp_path):
    remote_file = tmp_path / "remote"
    remote_file.write_text(SECRET_REMOTE)
    for text in (render_upload_array(upload_job(remote_file=str(remote_file))),
                 render_download_array(DownloadArrayJob(version="v1", tasks=1, run_dir="/r",
                                                        remote_file=str(remote_file))),
                 render_summary(SummaryJob(kind="upload", version="v1", tasks=1, run_dir="/r",
                                           remote_file=str(remote_file)))):
        assert f"CS_REMOTE_FILE={remote_file}" in settings_block(text) and "OBSCURED" not in text
        # the settings and the lines that read the file, run by bash: CS_SYNC_REMOTE is the remote
        reads = body(text).split('bin="${CS_SYNC_BIN:+$CS_SYNC_BIN/}"', 1)[1].split("\nfi\n", 1)[0] + "\nfi\n"
        script = "\n".join(settings_block(text)) + reads + 'printf "%s" "$CS_SYNC_REMOTE"\n'
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
        assert out == SECRET_REMOTE


def test_jobs_get_a_remote_with_credentials_from_a_0600_file(tmp_path):
    from cs_sync.slurm.submit import _jobs_remote

    args = ("--tmp_dir", "/t", "--remote", SECRET_REMOTE, "--remote=" + SECRET_REMOTE, "-t", "BB")
    passthrough, path = _jobs_remote(SECRET_REMOTE, args, tmp_path)
    assert passthrough == ("--tmp_dir", "/t", "-t", "BB")
    assert Path(path).read_text() == SECRET_REMOTE and (Path(path).stat().st_mode & 0o777) == 0o600
    assert _jobs_remote("dropbox:/A", ("--remote", "dropbox:/A"), tmp_path / "x") == (("--remote", "dropbox:/A"), None)


def test_log_path_keeps_the_folder_literal_and_the_pattern_expanded():
    from cs_sync.slurm.render import log_path

    assert log_path("/runs/r%j 100%", "upload_%A_%a.out") == "/runs/r%%j 100%%/upload_%A_%a.out"
    assert log_path("/runs/plain/", "summary_%j.out") == "/runs/plain/summary_%j.out"
