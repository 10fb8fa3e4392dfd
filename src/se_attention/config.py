"""Load and validate the workflow configuration outside Snakemake (Snakemake uses the same schema).

Errors name the file, the key path, and what was expected and found.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
RECIPE_KEYS = ("model", "train", "augment", "normalize")
# Inside the package, so that a non-editable install (pip install .) can still validate a config.
SCHEMA = Path(__file__).resolve().parent / "schema.yaml"


class ConfigError(ValueError):
    pass


def merge(base: dict, update: dict) -> dict:
    """Recursive dict update, the way Snakemake merges several --configfile files."""
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def validate(config: dict, where: str, schema_path: Path = SCHEMA) -> dict:
    import jsonschema

    schema = yaml.safe_load(schema_path.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [f"key '{'.'.join(map(str, e.absolute_path)) or '<top level>'}': {e.message}" for e in errors]
        raise ConfigError(f"invalid configuration ({where}):\n  " + "\n  ".join(lines))
    check_models_known(config, where)
    check_model_fits(config, where)
    check_source_path(config, where)
    return config


def check_models_known(config: dict, where: str) -> None:
    """Model names come from the attention registry, so adding a module needs no schema edit."""
    from .attention import REGISTRY

    known = ["cnn", *REGISTRY]
    unknown = [m for m in config["models"] if m not in known]
    if unknown:
        raise ConfigError(f"{where}: key 'models': expected names from {known}; found {unknown}")


def check_source_path(config: dict, where: str) -> None:
    """Snakemake reads {name} in any input path as a wildcard, and has no escape for a literal brace."""
    source = config["data_source"]
    if "://" not in source and ("{" in source or "}" in source):
        raise ConfigError(f"{where}: key 'data_source': expected a local path without braces, which Snakemake "
                          f"would read as wildcards; found {source!r}. Rename the folder or point a symlink "
                          "without braces at it")


def check_model_fits(config: dict, where: str) -> None:
    """Constraints JSON schema cannot express: the SE reduction must leave at least one unit."""
    smallest = min(config["model"]["channels"])
    r = config["model"]["se_reduction"]
    if r > smallest:
        raise ConfigError(f"{where}: key 'model.se_reduction': {r} is larger than the smallest channel count "
                          f"{smallest}, which would leave the SE block no hidden unit")


def load_config(*paths: str | Path) -> dict:
    """Merge YAML files in order (later ones override) and validate the result."""
    config: dict[str, Any] = {}
    for p in paths:
        try:
            config = merge(config, yaml.safe_load(Path(p).read_text()) or {})
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{p}: cannot read configuration: {exc}") from exc
    return validate(config, " + ".join(map(str, paths)))


def recipe(config: dict) -> dict:
    """The part of the config that determines a training run (and so triggers retraining)."""
    return {k: config[k] for k in RECIPE_KEYS}


def load_recipe(spec: str) -> dict:
    """A recipe from a JSON string (as Snakemake passes it) or from config YAML file(s), comma-separated."""
    if spec.lstrip().startswith("{"):
        return json.loads(spec)
    return recipe(load_config(*spec.split(",")))


def data_md5(config: dict) -> str | None:
    md5 = config["data_md5"]
    if md5 == "auto":
        return OFFICIAL_MD5 if config["data_source"] == OFFICIAL_URL else None
    return md5
