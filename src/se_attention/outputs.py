"""The files the figures and report steps write, by name, for a list of models.

One list for the steps and the workflow: rules/figures.smk declares exactly these outputs, and
figures.draw_all and report.write_reports write exactly these (tests/test_i18n.py checks both).
"""

from __future__ import annotations


def figure_names(models: list[str]) -> list[str]:
    names = ["iteration_loss", "epoch_curves", "feature_maps", "gradcam", "per_class_accuracy",
             "confusion", "seed_band", "gradcam_misclassified"]
    if "se" in models:
        names += ["channel_attention", "excitation_lines", "se_rescaling", "gate_distribution"]
    return names


def table_names(models: list[str]) -> list[str]:
    names = ["metrics", "seeds", "architecture", "data", "recipe", "cost", "performance", "bf16", "gpu",
             "schedule", "look_seed_band", "look_epoch_curves", "look_per_class"]
    if {"cnn", "se"} <= set(models):
        names += ["fact_se_params", "fact_gap", "fact_time", "fact_se_step", "gap", "verdict", "literature"]
    if "se" in models:
        names += ["specificity", "gate_activation", "look_gates"]
    return names


# Drawn from the model definition alone (se_attention.diagrams), as SVG: no run needed.
DIAGRAM_NAMES = ["se_block", "se_in_cnn", "se_resnet", "se_placement"]

ZOO_TABLES = ["zoo", "zoo_verdicts", "zoo_specificity", "zoo_gate_range", "zoo_coverage", "zoo_spatial_agreement"]
ZOO_FIGURES = ["zoo_forest", "zoo_curves", "zoo_gates", "zoo_gate_distribution", "zoo_spatial"]


def has_zoo(models: list[str]) -> bool:
    """The zoo step compares attention models with the CNN: it needs the CNN and one more."""
    return "cnn" in models and len(models) > 1
