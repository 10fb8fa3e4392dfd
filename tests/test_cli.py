"""Every step runs on its own as `python -m se_attention.<step>`: each answers --help with its usage."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

STEPS = ["data", "train", "probe", "figures", "report", "zoo", "site", "bench", "fleet", "stamps", "notebook", "explorer", "diagrams"]


@pytest.mark.parametrize("step", STEPS)
def test_each_step_is_a_command(step):
    done = subprocess.run([sys.executable, "-m", f"se_attention.{step}", "--help"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"usage: python -m se_attention.{step}" in done.stdout
