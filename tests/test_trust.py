"""A hostile or careless user: shell payloads in data_source, secrets in URLs, odd paths, huge seeds,
a full disk, interrupted writes. Every fault is injected for real; nothing under test is mocked.
"""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT, config_models, copy_worktree, snakemake, tar_folder, write_image_folder

# Each would run `touch PWNED` (or `id > PWNED`) if a value reached a shell unquoted.
FOLDER_NAMES = ["a'$(touch PWNED)'", "bob's data", 'q"$(touch PWNED)"`touch PWNED`']
ARCHIVE_NAMES = ["a'$(touch PWNED)'.tar.gz", "c.tar.gz?x=1&id>PWNED"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A copy of the repository and one tiny image-folder CIFAR-10 to copy under hostile names."""
    root = tmp_path_factory.mktemp("trust")
    repo = copy_worktree(root / "repo")
    source = write_image_folder(root / "clean", {"train": 3, "test": 2})
    return root, repo, source


def prepare_from(repo, run: str, data_source: str) -> subprocess.CompletedProcess:
    """The workflow's data step alone, for `data_source`, through Snakemake's real shell commands."""
    config = repo / f"{run}.yaml"
    config.write_text(yaml.safe_dump({"run": run, "data_source": data_source, "data_md5": None}))
    return snakemake(repo, f"results/{run}/data/provenance.json", "--configfile", "config/smoke.yaml", str(config),
                     check=False)


def no_marker(*folders) -> bool:
    return not any(p.name == "PWNED" for folder in folders for p in folder.rglob("*"))


@pytest.mark.slow
@pytest.mark.parametrize("name", FOLDER_NAMES)
def test_a_hostile_folder_name_is_a_name_not_a_command(sandbox, name):
    root, repo, source = sandbox
    folder = root / "sources" / name
    shutil.copytree(source, folder)
    run = f"folder{FOLDER_NAMES.index(name)}"
    out = prepare_from(repo, run, str(folder))
    assert out.returncode == 0, out.stderr[-3000:]
    assert yaml.safe_load((repo / f"results/{run}/data/provenance.json").read_text())["totals"] == {"train": 30,
                                                                                                 "test": 20}
    assert no_marker(root, repo)


def test_a_folder_with_braces_is_refused_by_key_before_snakemake_reads_it_as_a_wildcard(sandbox):
    root, repo, source = sandbox
    folder = root / "sources" / "data{run}"
    shutil.copytree(source, folder)
    out = prepare_from(repo, "braces", str(folder))
    assert out.returncode != 0
    assert (f"key 'data_source': expected a local path without braces, which Snakemake would read as wildcards; "
            f"found '{folder}'") in out.stderr, out.stderr[-2000:]
    assert "WildcardError" not in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ARCHIVE_NAMES)
def test_a_hostile_url_is_a_url_not_a_command(sandbox, name):
    root, repo, source = sandbox
    folder = root / "served"
    folder.mkdir(exist_ok=True)
    tar_folder(source, folder / name)
    run = f"url{ARCHIVE_NAMES.index(name)}"
    url = f"file://{folder}/{name}"
    out = prepare_from(repo, run, url)
    assert out.returncode == 0, out.stderr[-3000:]
    assert no_marker(root, repo)


@pytest.mark.slow
def test_secrets_in_a_url_are_never_written_to_results(sandbox):
    root, repo, source = sandbox
    folder = root / "signed"
    folder.mkdir()
    name = "cifar.tar.gz?X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=s3cr3t"
    tar_folder(source, folder / name)  # a file:// URL keeps its query in the path: the same bytes are served
    out = prepare_from(repo, "signed", f"file://{folder}/{name}")
    assert out.returncode == 0, out.stderr[-3000:]
    written = [p for p in (repo / "results" / "signed").rglob("*") if p.is_file()]
    assert written
    for path in written:
        text = path.read_text(errors="replace")
        assert "s3cr3t" not in text and "AKIDEXAMPLE" not in text, path
    provenance = yaml.safe_load((repo / "results/signed/data/provenance.json").read_text())
    assert provenance["source"] == f"file://{folder}/cifar.tar.gz"


def test_two_urls_with_one_file_name_get_two_local_copies():
    from se_attention.data import download_name

    a = download_name("https://one.example/cifar-10-python.tar.gz")
    b = download_name("https://two.example/cifar-10-python.tar.gz")
    assert a != b and a.endswith(".tar.gz") and b.endswith(".tar.gz")
    assert "/" not in download_name("https://x.example/../../etc/passwd") and download_name("https://x.example/")


def test_a_seed_too_large_for_the_generators_is_refused_by_name():
    from se_attention.config import ConfigError, load_config, validate

    config = load_config(ROOT / "config" / "config.yaml")
    config["seeds"] = [0, 2**64]
    with pytest.raises(ConfigError, match=r"key 'seeds\.1': 18446744073709551616 is greater than the maximum"):
        validate(config, "test")
    out = subprocess.run([sys.executable, "-m", "se_attention.train", "--recipe", "{}", "--model", "cnn",
                          "--seed", str(2**64), "--data", "x.npz", "--out", "x"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 2 and "expected a seed from 0 to 4294967295, found 18446744073709551616" in out.stderr


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 256 KiB file system (tmpfs): writes beyond it fail with ENOSPC, as on a full disk."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_names_the_file_and_leaves_nothing_partial(tiny_disk):
    import torch

    from se_attention import atomic

    with pytest.raises(atomic.DiskFull, match=r"model\.pt: cannot write: no space left on the device"):
        atomic.save_torch(tiny_disk / "model.pt", {"w": torch.zeros(1 << 20)})
    with pytest.raises(atomic.DiskFull, match=r"history\.json: cannot write: no space left on the device"):
        atomic.write_json(tiny_disk / "history.json", {"iter_loss": [0.123456789] * 100_000})
    assert list(tiny_disk.iterdir()) == []


@pytest.mark.slow
def test_interrupted_writes_are_ignored_by_git_and_never_published(tmp_path):
    names = [".metrics.json.k2j3h4.json.part", ".probe.npz.a1b2c3.part.npz", ".seed_band.png.x9y8.part.png"]
    out = subprocess.run(["git", "check-ignore", "--no-index", *[f"results/paper/runs/cnn/seed0/{n}" for n in names]],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == [f"results/paper/runs/cnn/seed0/{n}" for n in names]

    repo = copy_worktree(tmp_path / "repo")
    (repo / "results/paper/views/figures/en" / names[2]).write_bytes(b"half a png")  # a redraw killed mid-write
    site = tmp_path / "site"
    env = {**os.environ, "SE_RUN": "paper", "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(site)], cwd=repo, env=env, check=True)
    published = {p.name for p in (site / "generated" / "figures" / "en").iterdir()}
    assert "seed_band.png" in published and names[2] not in published


@pytest.mark.slow
def test_a_failed_redraw_keeps_the_last_good_figures_and_names_the_file(smoke_repo, tmp_path):
    from test_workflow import copy_repo

    repo, args = smoke_repo
    copy = copy_repo(repo, tmp_path)
    figures = copy / "results/smoke/views/figures/en"
    before = {p.name: p.read_bytes() for p in figures.glob("*.png")}
    history = copy / "results/smoke/runs/cnn/seed0/history.json"
    history.write_text(history.read_text()[:300])  # what a full disk or a killed copy leaves
    # --keep-going: every step that reads the history runs (figures and the zoo), not only the first.
    out = snakemake(copy, *args, "--keep-going", check=False)
    assert out.returncode != 0
    assert {p.name: p.read_bytes() for p in figures.glob("*.png")} == before
    for step in ("figures_en", "zoo"):
        log = (copy / f"results/smoke/logs/{step}.log").read_text()
        assert f"{history.relative_to(copy)}: expected" in log and "truncated" in log, log


@pytest.mark.slow
def test_a_killed_forced_rerun_is_finished_by_the_next_run(smoke_repo, tmp_path):
    import signal
    import time

    from test_workflow import copy_repo, planned_jobs

    repo, args = smoke_repo
    copy = copy_repo(repo, tmp_path)
    provenance = copy / "results/smoke/data/provenance.json"
    run = subprocess.Popen(["snakemake", "--cores", "1", "-R", "prepare", *args], cwd=copy, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while provenance.exists() and time.monotonic() < deadline:  # Snakemake removes it when prepare starts
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert not provenance.exists(), "prepare did not start within a minute"
    refused = snakemake(copy, *args, check=False)
    assert refused.returncode != 0 and "--unlock" in refused.stdout + refused.stderr
    snakemake(copy, "--unlock", *args)
    jobs = planned_jobs(copy, *args)
    assert jobs.get("prepare") == 1 and jobs.get("train") == len(config_models("smoke.yaml")), jobs


HOSTILE_NAME = "<img src=x onerror=alert(1)>|x|`y`*z*$a$.tar.gz"


def test_a_hostile_source_name_is_text_in_the_site_not_html():
    import html as htmllib
    import re

    import markdown

    from se_attention.tables import data_markdown

    provenance = {"source": HOSTILE_NAME, "layout": "image-folder|<b>", "source_md5": None,
                  "counts": {"train": {"cat": 1}, "test": {"cat": 1}}, "totals": {"train": 1, "test": 1},
                  "arrays_sha256": "0" * 64, "jpeg_reencoded": False}
    for lang in ("zh", "en"):
        md = data_markdown(provenance, lang)
        html = markdown.markdown(md, extensions=["tables", "md_in_html", "pymdownx.arithmatex"])
        assert "<img" not in html and "<b>" not in html and "<em>" not in html, html
        shown = re.search(r"<td><code>(.*?)</code></td>", html).group(1)
        assert htmllib.unescape(shown) == HOSTILE_NAME  # the reader sees the name, character for character
        rows = [line for line in md.splitlines() if line.startswith("|")]
        assert {line.count("|") for line in rows} == {3}, rows  # two columns in every row


def test_a_truncated_results_file_is_named_and_nothing_is_written(tmp_path, capsys):
    from se_attention import report

    run = tmp_path / "paper"
    shutil.copytree(ROOT / "results" / "paper", run, ignore=shutil.ignore_patterns("views", "logs", "model.pt"))
    metrics = run / "runs/se/seed1/metrics.json"
    metrics.write_text(metrics.read_text()[:500])
    before = {p: p.read_bytes() for p in (run / "tables").rglob("*.md")}
    assert report.main(["--run-dir", str(run), "--models", "cnn", "se", "--seeds", "0", "1", "2",
                        "--langs", "zh", "en"]) == 1
    err = capsys.readouterr().err
    assert f"error: {metrics}: expected a training run's metrics, found unreadable or truncated content" in err
    assert {p: p.read_bytes() for p in (run / "tables").rglob("*.md")} == before
