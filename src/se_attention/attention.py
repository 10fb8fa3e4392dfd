"""The attention zoo: which module each model name puts in the lesson's CNN, and where.

A model is the lesson's CNN with one attention module per conv block, either right after the
block's conv -> BN -> ReLU (before the max pool, where SENet puts it) or after the pool (the
lesson's other insertion point). Adding a module is one file in this package with one class
``Module(channels, reduction=...)`` and one line here.

Modules are imported by name when a model is built, not at the top of this file: the training
stamp of a model (se_attention.stamps) covers the module it uses and not the others, so adding
a module plans only its own runs.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a model is built: validating a config needs only the names
    from torch import nn

BEFORE_POOL, AFTER_POOL = "before_pool", "after_pool"


@dataclass(frozen=True)
class Entry:
    module: str  # file of this package that defines the class
    cls: str
    placement: str = BEFORE_POOL

    def build(self, channels: int, reduction: int) -> nn.Module:
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), self.cls)(channels, reduction=reduction)


REGISTRY: dict[str, Entry] = {
    "se": Entry("se", "SEBlock"),
    "se_after_pool": Entry("se", "SEBlock", AFTER_POOL),
    "eca": Entry("eca", "ECABlock"),
    "cbam": Entry("cbam", "CBAM"),
    "spatial": Entry("cbam", "SpatialAttention"),
}


def entry(model: str) -> Entry | None:
    """The attention of ``model``; None for the plain CNN."""
    return None if model == "cnn" else REGISTRY[model]


def stamp_settings(model: str) -> dict | None:
    """What the registry says about ``model``: part of its training stamp's settings."""
    e = entry(model)
    return asdict(e) if e else None


def stamp_modules(model: str) -> list[str]:
    """The attention module whose code a ``model``'s training stamp covers (none for the CNN)."""
    e = entry(model)
    return [e.module] if e else []
