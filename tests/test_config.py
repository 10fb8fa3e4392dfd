import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from se_attention.config import ConfigError, data_md5, load_config, OFFICIAL_MD5, OFFICIAL_URL

MAIN = ROOT / "config" / "config.yaml"


def override(tmp_path, text):
    path = tmp_path / "override.yaml"
    path.write_text(text)
    return path


def test_shipped_configs_are_valid():
    main = load_config(MAIN)
    smoke = load_config(MAIN, ROOT / "config" / "smoke.yaml")
    assert main["run"] == "paper" and main["train"]["epochs"] == 50 and main["train"]["batch_size"] == 64
    assert smoke["run"] == "smoke" and smoke["train"]["epochs"] <= 2 and smoke["train"]["lr"] == 0.001


@pytest.mark.parametrize("text, key, words", [
    ("colour: red\n", "<top level>", "'colour' was unexpected"),
    ("train: {epochs: ten}\n", "train.epochs", "'ten' is not of type 'integer'"),
    ("train: {epochs: -1}\n", "train.epochs", "less than the minimum of 1"),
    ("models: [cnn, resnet]\n", "models", "expected names from ['cnn', 'se', 'se_after_pool', 'eca', 'cbam', 'spatial']; found ['resnet']"),
    ("models: [cnn, 'se; rm -rf']\n", "models.1", "does not match"),
    ("train: {monitor: valid}\n", "train.monitor", "is not one of ['test', 'val']"),
    ("data_md5: 1234\n", "data_md5", "is not valid under any of the given schemas"),
])
def test_schema_errors_name_the_key(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as err:
        load_config(MAIN, override(tmp_path, text))
    assert f"key '{key}'" in str(err.value) and words in str(err.value)


def test_reduction_larger_than_the_smallest_channel_count(tmp_path):
    with pytest.raises(ConfigError, match="'model.se_reduction': 32 is larger than the smallest channel count 16"):
        load_config(MAIN, override(tmp_path, "model: {channels: [16, 32, 64], se_reduction: 32}\n"))


def test_md5_auto_checks_only_the_official_archive():
    config = load_config(MAIN)
    assert config["data_source"] == OFFICIAL_URL and data_md5(config) == OFFICIAL_MD5
    assert data_md5(dict(config, data_source="local.tar.gz")) is None
    assert data_md5(dict(config, data_source="local.tar.gz", data_md5="a" * 32)) == "a" * 32


def test_snakemake_refuses_a_bad_config_before_any_rule(tmp_path):
    bad = override(tmp_path, yaml.safe_dump({"train": {"epochs": -3}, "bogus": 1}))
    proc = subprocess.run(["snakemake", "-n", "--cores", "1", "--configfile", str(bad)], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "key 'train.epochs': -3 is less than the minimum of 1" in proc.stderr + proc.stdout
    assert "'bogus' was unexpected" in proc.stderr + proc.stdout


def test_validating_a_config_does_not_load_torch():
    """Snakemake validates the config on every parse, dry runs included: importing torch cost 4 s each."""
    code = ("import sys; from se_attention.config import load_config; load_config('config/config.yaml', "
            "'config/zoo.yaml'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
