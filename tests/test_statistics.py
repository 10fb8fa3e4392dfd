"""The multi-seed statistics of the Results page: per-seed table, paired gap SE - CNN, verdict, SENet
comparison and the seed-band figure, checked against scipy on a fake run folder (no training)."""

import json
import re
import statistics

import numpy as np
import pytest
import scipy.stats
import yaml
from PIL import Image

from conftest import copy_worktree, snakemake
from se_attention import figures, report, runs, tables
from se_attention import stats as st
from se_attention.cnn import build_model, parameter_count
from se_attention.i18n import text

# Final test accuracies of three seeds. SE is ahead by 0.92, 0.76, 0.66 points: a gap whose interval excludes 0.
CNN = [80.10, 80.82, 79.95]
SE = [81.02, 81.58, 80.61]


def fake_history(final_acc: float, epochs: int, seed: int) -> dict:
    """A test-accuracy curve that rises towards final_acc, with a little seed-dependent wobble."""
    rng = np.random.default_rng(seed)
    acc = final_acc - 30 * np.exp(-np.arange(epochs) / 2) + rng.normal(0, 0.3, epochs)
    acc[-1] = final_acc
    seconds = [70.0 + seed] * epochs
    return {"iter_loss": [2.0, 1.5], "epochs": [
        {"epoch": i + 1, "train_loss": 1.0, "train_acc": 50.0, "test_loss": 1.0, "test_acc": float(a), "lr": 1e-3,
         "train_seconds": t, "images_per_second": 50_000 / t}
        for i, (a, t) in enumerate(zip(acc, seconds))]}


def write_fake_run(base, recipe: dict, accuracies: dict[str, list[float]]):
    """metrics.json and history.json per model and seed, each model's probe of seed 0, and a data provenance file."""
    epochs = recipe["train"]["epochs"]
    for model, accs in accuracies.items():
        params = parameter_count(build_model(model, **recipe["model"]))
        for seed, final in enumerate(accs):
            folder = base / "runs" / model / f"seed{seed}"
            folder.mkdir(parents=True)
            history = fake_history(final, epochs, seed)
            best = max(range(epochs), key=lambda i: history["epochs"][i]["test_acc"])
            (folder / "history.json").write_text(json.dumps(history))
            (folder / "metrics.json").write_text(json.dumps({
                "model": model, "seed": seed, "epochs": epochs, "final_test_acc": final,
                "best_test_acc": round(history["epochs"][best]["test_acc"], 2), "best_epoch": best + 1,
                "parameters": params, "seconds_per_epoch": 70.0 + seed, "images_per_second": 700.0 - seed,
                "provenance": {"recipe": recipe, "device": "test CPU"}}))
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 5)
    gates = {f"gates_sample_{k}": rng.uniform(0, 1, (len(labels), c))
             for k, c in enumerate(recipe["model"]["channels"], start=1)}
    confusion = np.diag(np.full(10, 5))
    for model in accuracies:
        extra = {} if model != "se" else {
            **gates, "sample_of_gates": np.arange(len(labels)),
            **{f"gates_class_mean_{k}": rng.uniform(0, 1, (10, c)) for k, c in enumerate(recipe["model"]["channels"], start=1)},
            **{f"gate_activation_r_{k}": rng.uniform(-1, 1, len(labels)) for k in range(1, len(gates) + 1)}}
        np.savez(base / "runs" / model / "seed0" / "probe.npz", labels=labels, confusion=confusion, **extra)
    (base / "data").mkdir()
    (base / "data" / "provenance.json").write_text(json.dumps({
        "source": "synthetic.tar.gz", "layout": "image-folder", "source_md5": "0" * 32, "jpeg_reencoded": True,
        "arrays_sha256": "f" * 64, "totals": {"train": 200, "test": 100},
        "counts": {"train": {"cat": 20}, "test": {"cat": 10}}}))
    return base


@pytest.fixture
def three_seeds(tmp_path, smoke_recipe):
    return write_fake_run(tmp_path, smoke_recipe, {"cnn": CNN, "se": SE})


@pytest.fixture
def one_seed(tmp_path, smoke_recipe):
    return write_fake_run(tmp_path, smoke_recipe, {"cnn": CNN[:1], "se": SE[:1]})


def test_gap_statistics_match_scipy():
    stats = st.gap_statistics(CNN, SE)
    gaps = np.subtract(SE, CNN)
    direct = scipy.stats.ttest_rel(SE, CNN)
    assert stats["n"] == 3
    assert stats["mean"] == pytest.approx(gaps.mean())
    assert stats["std"] == pytest.approx(gaps.std(ddof=1))
    assert stats["ci"] == pytest.approx(list(direct.confidence_interval(0.95)))
    assert stats["ci"] == pytest.approx(list(scipy.stats.t.interval(0.95, 2, loc=gaps.mean(),
                                                                    scale=scipy.stats.sem(gaps))))
    assert stats["p_value"] == pytest.approx(direct.pvalue)


def test_one_pair_has_no_interval_and_no_test():
    stats = st.gap_statistics([80.0], [81.0])
    assert stats["mean"] == pytest.approx(1.0)
    assert stats["std"] is None and stats["ci"] is None and stats["p_value"] is None


@pytest.mark.parametrize("lang, words", [("en", "Not yet evidence"), ("zh", "尚不构成证据")])
def test_verdict_with_one_seed_is_not_yet_evidence(lang, words):
    text = tables.gap_verdict(st.gap_statistics([80.82], [81.58]), lang)
    assert words in text and "+0.76" in text


@pytest.mark.parametrize("lang, words", [("en", "SE helps"), ("zh", "SE 有帮助")])
def test_verdict_when_the_interval_excludes_zero(lang, words):
    stats = st.gap_statistics(CNN, SE)
    assert stats["ci"][0] > 0
    text = tables.gap_verdict(stats, lang)
    assert words in text and "[{:+.2f}, {:+.2f}]".format(*stats["ci"]) in text and f"{stats['mean']:.2f}" in text


@pytest.mark.parametrize("lang, words", [("en", "SE hurts"), ("zh", "SE 有害")])
def test_verdict_when_se_is_worse(lang, words):
    assert words in tables.gap_verdict(st.gap_statistics(SE, CNN), lang)


@pytest.mark.parametrize("lang, words", [("en", "No detectable difference at 3 seeds"), ("zh", "在 3 个种子下检测不到差异")])
def test_verdict_when_the_interval_includes_zero(lang, words):
    stats = st.gap_statistics([80.0, 81.0, 80.5], [81.0, 80.0, 80.7])
    assert stats["ci"][0] < 0 < stats["ci"][1]
    assert words in tables.gap_verdict(stats, lang)


def test_three_seed_tables_show_per_seed_rows_mean_std_and_the_interval(three_seeds):
    report.write_reports(three_seeds, ["cnn", "se"], [0, 1, 2], ["zh", "en"])
    seeds = (three_seeds / "tables" / "en" / "seeds.md").read_text()
    for seed, acc in enumerate(CNN):
        assert f"| CNN | {seed} | {acc:.2f} |" in seeds
    assert f"| {statistics.mean(SE):.2f}\u00a0±\u00a0{statistics.stdev(SE):.2f} |" in seeds
    assert "**mean ± std** (3 seeds)" in seeds

    gap = (three_seeds / "tables" / "en" / "gap.md").read_text()
    direct = scipy.stats.ttest_rel(SE, CNN)
    low, high = direct.confidence_interval(0.95)
    assert f"| 3 | {np.mean(np.subtract(SE, CNN)):+.2f} | {np.std(np.subtract(SE, CNN), ddof=1):.2f} | " \
           f"[{low:+.2f},\u00a0{high:+.2f}] | {direct.pvalue:.3f} |" in gap
    assert "SE helps" in gap
    assert (three_seeds / "tables" / "en" / "verdict.md").read_text().startswith("**SE helps.**")
    assert "SE 有帮助" in (three_seeds / "tables" / "zh" / "verdict.md").read_text()

    summary = json.loads((three_seeds / "tables" / "summary.json").read_text())
    assert summary["gap_se_minus_cnn"]["ci"] == pytest.approx(list(direct.confidence_interval(0.95)))
    assert summary["gap_se_minus_cnn"]["p_value"] == pytest.approx(direct.pvalue)


def test_one_seed_tables_say_so_in_words_and_print_no_nan(one_seed):
    written = report.write_reports(one_seed, ["cnn", "se"], [0], ["zh", "en"])
    for path in written:
        assert not re.search(r"\bnan\b", path.read_text(), re.I), path
    gap = (one_seed / "tables" / "en" / "gap.md").read_text()
    assert "n = 1: no interval; a single pair of runs cannot separate a gap of this size from seed noise" in gap
    assert "n = 1：无法给出区间" in (one_seed / "tables" / "zh" / "gap.md").read_text()
    assert "**mean** (1 seed: no std)" in (one_seed / "tables" / "en" / "seeds.md").read_text()
    assert json.loads((one_seed / "tables" / "summary.json").read_text())["gap_se_minus_cnn"]["ci"] is None


def test_literature_table_sets_our_error_beside_the_senet_paper(three_seeds, smoke_recipe):
    summary = st.summarize(runs.load_metrics(three_seeds, ["cnn", "se"], [0, 1, 2]))
    en = tables.literature_markdown(summary, smoke_recipe, "en")
    assert "| ResNet-110 | 6.37 | 5.21 | 1.16 | 18.2 | SENet paper (published) |" in en
    assert "| ResNet-164 | 5.46 | 4.39 | 1.07 | 19.6 | SENet paper (published) |" in en
    base, se = 100 - statistics.mean(CNN), 100 - statistics.mean(SE)
    assert f"| our CNN | {base:.2f} | {se:.2f} | {base - se:.2f} | {100 * (base - se) / base:.1f} | " \
           "this study, mean of 3 seeds |" in en
    assert "arXiv:1709.01507" in en and "without residual connections" in en
    assert "| 本实验的 CNN |" in tables.literature_markdown(summary, smoke_recipe, "zh")


def test_a_runs_speed_is_its_median_epoch_so_a_paused_epoch_does_not_count():
    # A run stopped by a session's end (or kill -STOP) keeps the paused hour in that epoch's time.
    history = {"epochs": [{"train_seconds": t, "images_per_second": 50_000 / t} for t in (70, 72, 3600, 68, 69)]}
    assert st.typical_epoch_speed(history) == (70, 50_000 / 70)  # not the mean, 775.8 s
    metrics = {"cnn": [{"seed": 0, "epochs": 5, "final_test_acc": 80.0, "best_test_acc": 80.0, "best_epoch": 5,
                        "parameters": 1, "seconds_per_epoch": 776.4, "images_per_second": 64.4,
                        "provenance": {"device": "test CPU"}}]}
    assert st.summarize(metrics, {"cnn": [history]})["cnn"]["seconds_per_epoch"] == [70]
    assert st.summarize(metrics)["cnn"]["seconds_per_epoch"] == [776.4]  # without histories: metrics.json's mean


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("seeds", [[0, 1, 2], [0]])
def test_seed_band_draws_a_band_only_with_several_seeds(three_seeds, tmp_path, lang, seeds):
    if lang == "zh":
        figures.use_cjk_font()
    fig = figures.plot_seed_band(runs.load_histories(three_seeds, ["cnn", "se"], seeds), lang)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    if len(seeds) > 1:
        assert legend == [text(lang, "figures.band", count=3, model=m) for m in ("CNN", "CNN + SE")]
        assert len(fig.axes[0].collections) == 2  # one min-max band per model
    else:
        assert legend == [text(lang, "figures.band", count=1, model=m) for m in ("CNN", "CNN + SE")]
        assert not fig.axes[0].collections
    fig.savefig(tmp_path / "band.png", dpi=40)
    with Image.open(tmp_path / "band.png") as im:  # drawn, not a blank canvas
        darkest, lightest = im.convert("L").getextrema()
        assert lightest - darkest > 100
    figures.plt.close(fig)


@pytest.mark.slow
def test_adding_a_seed_redraws_the_seed_band(tmp_path):
    """The figures job reads every seed's history, so a new seed in the config plans it again."""
    repo = copy_worktree(tmp_path)
    config = repo / "config" / "config.yaml"
    seeds = yaml.safe_load(config.read_text())["seeds"]
    new = max(seeds) + 1
    # What a later session does to train more seeds: extend the list in config.yaml.
    config.write_text(re.sub(r"^seeds: \[.*?\]", f"seeds: {seeds + [new]}", config.read_text(), flags=re.M))
    out = snakemake(repo, "-n").stdout
    job = re.search(r"rule figures:\n(.*?)\n\n", out, re.S)
    assert job, out[-3000:]
    assert f"results/paper/runs/cnn/seed{new}/history.json" in job.group(1)
    assert "--seeds " + " ".join(map(str, seeds + [new])) in job.group(1)
    # Only the new seed trains: the copy has no data/, and preparing it must not retrain the rest.
    blocks = re.findall(r"^rule (\w+):\n((?:    .*\n)+)", out, re.M)  # one job: its indented lines
    trained = [(rule, *m.groups()) for rule, body in blocks
               if (m := re.search(r"wildcards: model=(\w+), seed=(\d+)", body))]
    # One new run per model of the config (the Zoo's modules train the new seed too).
    assert sorted(m for rule, m, seed in trained if rule == "train") == sorted(yaml.safe_load(config.read_text())["models"]), trained
    assert {int(seed) for rule, m, seed in trained if rule == "train"} == {new}
    assert "rule prepare:" not in out and "rule download:" not in out


def test_a_last_epoch_tied_with_the_best_counts_as_reaching_it():
    """Epochs 2 and 3 tie at the best accuracy: the best epoch is the first of them, and the last
    epoch did reach the best (the Results page said "no" here before)."""
    def run(seed, accs):
        return {"seed": seed, "epochs": [{"epoch": i + 1, "lr": 0.001, "test_acc": a} for i, a in enumerate(accs)]}

    rows = st.schedule_summary({"cnn": [run(0, [50.0, 82.03, 82.03]), run(1, [50.0, 82.0, 81.9])]})["cnn"]
    assert [(r["best_epoch"], r["best_is_last"]) for r in rows] == [(2, True), (2, False)]
