"""Diagrams of the SE block and of where it sits, as SVG in each language, shapes read from the model.

    python -m se_attention.diagrams --model-settings '{"channels": [32, 64, 128], ...}' --lang en \
        --out-dir results/paper/views/figures/en

Nothing in a diagram is typed in twice: each one builds the model from the recipe's settings, runs
one image through it with forward hooks, and writes the shapes, widths and weight counts it saw.
Change ``channels`` or ``se_reduction`` and the diagrams redraw true. The words come from the
``diagrams`` section of the locale catalogues.

* se_block: the SE block with its shapes, on this CNN's last block;
* se_in_cnn: where the block sits in the lesson's CNN;
* se_resnet: where it sits in a ResNet residual block (the lesson's insertion point in SE-ResNet);
* se_placement: after the conv versus after the pool, the two places the lesson names.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import atomic
from .attention import AFTER_POOL
from .cnn import LessonCNN, build_model, parameter_count
from .i18n import Words, languages
from .outputs import DIAGRAM_NAMES
from .svg import Canvas, Line, box_width, text_width

# One colour per kind of step, in every diagram.
FILL = {"data": "#dbe9f6", "conv": "#e8e8f0", "se": "#fde0c5", "excite": "#f9d5d3", "scale": "#d9f0d3",
        "pool": "#e9def3", "head": "#e3f1df", "block": "#fafafa"}
SE_INK = "#b5541c"
GAP = 24  # vertical space between boxes, where the arrow goes
NOTE_WIDTH = 440  # the narrowest a diagram's note wraps to


@dataclass(frozen=True)
class Traced:
    """A model and the (input, output) shape, batch dimension dropped, of each of its named modules."""

    model: LessonCNN
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]

    def out(self, name: str) -> tuple[int, ...]:
        return self.shapes[name][1]

    def into(self, name: str) -> tuple[int, ...]:
        return self.shapes[name][0]


def trace(model_name: str, model_settings: dict) -> Traced:
    """Run one 32 x 32 image through the model in evaluation mode (the block as drawn, module by module)."""
    model = build_model(model_name, **model_settings).eval()
    shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def keep(name: str):
        def hook(module, args, out) -> None:  # returning a value would replace the module's output
            shapes.setdefault(name, (tuple(args[0].shape[1:]), tuple(out.shape[1:])))
        return hook

    handles = [m.register_forward_hook(keep(name)) for name, m in model.named_modules() if name]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for handle in handles:
        handle.remove()
    return Traced(model, shapes)


def shape(dims: tuple[int, ...]) -> str:
    return " × ".join(map(str, dims))


def weights(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def block_steps(traced: Traced, k: int, t: Words) -> list[tuple[str, str, str]]:
    """Block ``k``'s steps in the order its forward pass runs them: (label, shape after it, kind)."""
    block = traced.model.blocks[k]
    conv = (t["conv"], shape(traced.out(f"blocks.{k}.conv")), "conv")
    bn = ("BN", shape(traced.out(f"blocks.{k}.bn")), "conv")
    pooled = shape(traced.out(f"blocks.{k}.pool"))
    se = ("SE", shape(traced.out(f"blocks.{k}.se")), "se")
    if block.placement == AFTER_POOL:
        return [conv, bn, (t["pool"], pooled, "pool"), ("ReLU", pooled, "conv"), se]
    return [conv, bn, ("ReLU", shape(traced.into(f"blocks.{k}.se")), "conv"), se, (t["pool"], pooled, "pool")]


def _stack(canvas: Canvas, cx: float, y: float, boxes: list[tuple[list[Line], str]], width: float) -> list:
    """Boxes of one width down a column, each joined to the next by an arrow; returns the boxes."""
    drawn = []
    for lines, kind in boxes:
        if drawn:
            canvas.arrow(drawn[-1].bottom, (cx, y))
        drawn.append(canvas.box(cx, y, lines, FILL[kind], min_width=width))
        y = drawn[-1].y + drawn[-1].h + GAP
    return drawn


def _width(boxes: list[tuple[list[Line], str]]) -> float:
    """The width of a column of boxes: its widest box."""
    return max(box_width(lines) for lines, _ in boxes)


def se_block(model_settings: dict, lang: str) -> Canvas:
    """The SE block on the CNN's last (widest) block: squeeze, excitation, scale, with shapes."""
    t = Words(lang, "diagrams")
    traced = trace("se", model_settings)
    k = len(traced.model.blocks) - 1
    se = traced.model.blocks[k].se
    c, hidden = se.fc1.in_features, se.fc1.out_features
    x = traced.into(f"blocks.{k}.se")
    r = model_settings.get("se_reduction", 16)
    canvas = Canvas(t("se_block_title", block=k + 1), t("se_block_desc", c=c, hidden=hidden, x=shape(x)))
    boxes = [
        ([Line(t["input_x"], bold=True), Line(t["input_x_what"], 12), Line(f"C × H × W = {shape(x)}", 13)], "data"),
        ([Line(t["squeeze_step"], bold=True), Line(t["squeeze_what"], 12), Line(f"C = {c}", 13)], "se"),
        ([Line(t["fc1_step"], bold=True), Line(f"C → C/r = {c} → {hidden}  (r = {r})", 13)], "excite"),
        ([Line(t["fc2_step"], bold=True), Line(f"C/r → C = {hidden} → {c}", 13), Line(t["gates_what"], 12)], "excite"),
        ([Line(t["scale_step"], bold=True), Line(t["scale_what"], 12), Line(f"C × H × W = {shape(x)}", 13)], "scale"),
        ([Line(t["output_x"], bold=True), Line(t["output_x_what"], 12)], "data"),
    ]
    labels = [t["squeeze"], t["excitation"], t["scale"]]
    width = _width(boxes)
    label_room = max(text_width(label, 13) for label in labels) + 24
    cx = canvas.margin + label_room + width / 2
    canvas.text(canvas.margin, 20, t("se_block_title", block=k + 1), 15, bold=True)
    drawn = _stack(canvas, cx, 36, boxes, width)
    left = drawn[0].x - 10
    canvas.bracket(left, drawn[1].y, drawn[1].y + drawn[1].h, labels[0], SE_INK)
    canvas.bracket(left, drawn[2].y, drawn[3].y + drawn[3].h, labels[1], "#b22")
    canvas.bracket(left, drawn[4].y, drawn[4].y + drawn[4].h, labels[2], "#2a7")
    # X itself goes round the gate computation to the scaling step.
    side = drawn[0].x + drawn[0].w + 36
    canvas.arrow(drawn[0].right, (side, drawn[0].cy), (side, drawn[4].cy), drawn[4].right, colour="#2a7")
    canvas.text(side + 6, (drawn[1].y + drawn[3].y + drawn[3].h) / 2, t["identity_x"], 13, colour="#2a7")
    below = drawn[-1].y + drawn[-1].h + 10
    canvas.paragraph(canvas.margin, below, t("se_block_note", c=c, hidden=hidden, weights=f"{weights(se):,}"),
                     width=max(canvas.right - canvas.margin, NOTE_WIDTH), size=13)
    return canvas


def se_in_cnn(model_settings: dict, lang: str) -> Canvas:
    """The lesson's CNN, block by block, each block's steps in a row with the SE step marked."""
    t = Words(lang, "diagrams")
    traced = trace("se", model_settings)
    model = traced.model
    canvas = Canvas(t("se_in_cnn_title"), t("se_in_cnn_desc", blocks=len(model.blocks)))
    canvas.text(canvas.margin, 20, t("se_in_cnn_title"), 15, bold=True)
    rows = [block_steps(traced, k, t) for k in range(len(model.blocks))]
    # Every block's row has the same slots, so the steps line up from block to block.
    slot = [max(text_width(rows[k][i][0], 13) + 16, text_width(rows[k][i][1], 11) + 6, 44) for k in range(len(rows))
            for i in range(len(rows[0]))]
    slot = [max(slot[i::len(rows[0])]) for i in range(len(rows[0]))]
    step_gap, pad = 14, 12
    frame_w = sum(slot) + step_gap * (len(slot) - 1) + 2 * pad
    x0 = canvas.margin
    cx = x0 + frame_w / 2
    first = canvas.box(cx, 36, [Line(t["image"], bold=True), Line(shape(traced.into("blocks.0.conv")), 13)], FILL["data"])
    above, y = first, first.y + first.h + GAP
    for k, steps in enumerate(rows):
        block = model.blocks[k]
        title = t("block_title", k=k + 1, c_in=block.conv.in_channels, c_out=block.conv.out_channels)
        frame = canvas.frame(x0, y, frame_w, 86, [Line(title, 13, bold=True)], FILL["block"], align="start")
        canvas.arrow(above.bottom, frame.top)
        x, previous = x0 + pad, None
        for i, (label, after, kind) in enumerate(steps):
            chip = canvas.frame(x + (slot[i] - (text_width(label, 13) + 16)) / 2, y + 30, text_width(label, 13) + 16, 26,
                                [Line(label, 13, bold=kind == "se", colour=SE_INK if kind == "se" else "#222")],
                                FILL[kind], rounded=4)
            canvas.text(x + slot[i] / 2, y + 74, after, 11, anchor="middle", colour="#555")
            if previous:
                canvas.arrow(previous.right, chip.left)
            x, previous = x + slot[i] + step_gap, chip
        above, y = frame, y + 86 + GAP
    flat = traced.out("fc1")
    head = [
        ([Line(t["flatten"], bold=True), Line(f"{shape(traced.out(f'blocks.{len(rows) - 1}.pool'))} → {model.fc1.in_features}", 13)], "head"),
        ([Line(t("fc_relu_dropout", n_in=model.fc1.in_features, n_out=flat[0], p=model.dropout.p), bold=True)], "head"),
        ([Line(t("fc_out", n_in=model.fc2.in_features, n_out=model.fc2.out_features), bold=True)], "head"),
    ]
    canvas.arrow(above.bottom, (cx, y))
    drawn = _stack(canvas, cx, y, head, _width(head))
    added = parameter_count(model) - parameter_count(build_model("cnn", **model_settings))
    canvas.paragraph(canvas.margin, drawn[-1].y + drawn[-1].h + 10,
                     t("se_in_cnn_note", added=f"{added:,}", total=f"{parameter_count(model):,}",
                       share=f"{100 * added / parameter_count(model):.2f}"),
                     width=max(frame_w, NOTE_WIDTH), size=13)
    return canvas


def se_resnet(lang: str) -> Canvas:
    """SE in a ResNet basic block: on the residual branch, before the sum with the identity."""
    t = Words(lang, "diagrams")
    canvas = Canvas(t("se_resnet_title"), t("se_resnet_desc"))
    canvas.text(canvas.margin, 20, t("se_resnet_title"), 15, bold=True)
    boxes = [
        ([Line(t["resnet_input"], bold=True), Line("C × H × W", 13)], "data"),
        ([Line(t["resnet_conv_relu"], bold=True), Line("C × H × W", 13)], "conv"),
        ([Line(t["resnet_conv"], bold=True), Line(t["resnet_branch_out"], 13)], "conv"),
        ([Line("SE", bold=True, colour=SE_INK), Line(t["resnet_se_what"], 12), Line("s ⊙ F(x)", 13)], "se"),
    ]
    label = t["residual_branch"]
    width = _width(boxes)
    cx = canvas.margin + text_width(label, 13) + 24 + width / 2
    drawn = _stack(canvas, cx, 36, boxes, width)
    canvas.bracket(drawn[1].x - 10, drawn[1].y, drawn[3].y + drawn[3].h, label, "#555")
    plus = canvas.circle(cx, drawn[3].y + drawn[3].h + GAP + 14, 14, "+")
    canvas.arrow(drawn[3].bottom, plus.top)
    side = drawn[0].x + width + 36
    canvas.arrow(drawn[0].right, (side, drawn[0].cy), (side, plus.cy), plus.right, colour="#2a7")
    canvas.text(side + 6, (drawn[1].y + drawn[3].y) / 2, t["identity_x_resnet"], 13, colour="#2a7")
    tail = _stack(canvas, cx, plus.y + plus.h + GAP, [([Line("ReLU", bold=True)], "conv"),
                                                     ([Line(t["resnet_output"], bold=True), Line("C × H × W", 13)], "data")],
                  width)
    canvas.arrow(plus.bottom, tail[0].top)
    canvas.paragraph(canvas.margin, tail[-1].y + tail[-1].h + 10, t("se_resnet_note"),
                     width=max(canvas.right - canvas.margin, NOTE_WIDTH), size=13)
    return canvas


def se_placement(model_settings: dict, lang: str) -> Canvas:
    """Block 1 with SE after the conv (model se) and after the pool (model se_after_pool), side by side."""
    t = Words(lang, "diagrams")
    columns = {name: trace(name, model_settings) for name in ("se", "se_after_pool")}
    canvas = Canvas(t("se_placement_title"), t("se_placement_desc"))
    canvas.text(canvas.margin, 20, t("se_placement_title"), 15, bold=True)
    stacks = {}
    for name, traced in columns.items():
        se_input = traced.into("blocks.0.se")
        averaged = Line(t("squeeze_averages", n=f"{se_input[1] * se_input[2]:,}"), 11, colour=SE_INK)
        stacks[name] = [([Line(label, 13, bold=kind == "se", colour=SE_INK if kind == "se" else "#222"), Line(after, 12)]
                         + ([averaged] if kind == "se" else []), kind) for label, after, kind in block_steps(traced, 0, t)]
    heads = {name: [Line(t[f"placement_{name}"], 14, bold=True), Line(t("model_name", name=name), 12)] for name in columns}
    width = max(max(_width(s) for s in stacks.values()),
                max(text_width(line.text, line.size) for lines in heads.values() for line in lines) + 20)
    macs, bottom = {}, 0.0
    for i, (name, traced) in enumerate(columns.items()):
        cx = canvas.margin + width / 2 + i * (width + 40)
        head = canvas.box(cx, 34, heads[name], "#fff", min_width=width, stroke="#fff")
        drawn = _stack(canvas, cx, head.y + head.h + 8, stacks[name], width)
        macs[name] = traced.model.blocks[0].se.multiply_adds(traced.into("blocks.0.se")[1])
        bottom = max(bottom, drawn[-1].y + drawn[-1].h + 10)  # below the taller column
    se = columns["se"].model.blocks[0].se
    canvas.paragraph(canvas.margin, bottom, t("se_placement_note", weights=f"{weights(se):,}", conv=f"{macs['se']:,}",
                                              pool=f"{macs['se_after_pool']:,}"),
                     width=max(2 * width + 40, NOTE_WIDTH), size=13)
    return canvas


def draw_all(model_settings: dict, lang: str) -> dict[str, str]:
    """Every diagram's SVG text, by name (outputs.DIAGRAM_NAMES)."""
    drawings = {"se_block": se_block(model_settings, lang).to_string(),
            "se_in_cnn": se_in_cnn(model_settings, lang).to_string(),
            "se_resnet": se_resnet(lang).to_string(),
            "se_placement": se_placement(model_settings, lang).to_string()}
    assert list(drawings) == DIAGRAM_NAMES, "outputs.DIAGRAM_NAMES lists what the workflow expects"
    return drawings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_attention.diagrams", description=__doc__.split("\n")[0])
    p.add_argument("--model-settings", required=True, help="the recipe's `model` section, as JSON")
    p.add_argument("--lang", required=True, choices=languages())
    p.add_argument("--out-dir", required=True, type=Path)
    args = p.parse_args(argv)
    try:
        settings = json.loads(args.model_settings)
        if not isinstance(settings, dict):
            raise ValueError(f"expected a JSON object, found {type(settings).__name__}")
        drawings = draw_all(settings, args.lang)
    except (ValueError, TypeError) as exc:
        print(f"error: --model-settings: {exc}", file=sys.stderr)
        return 2
    for name, text in drawings.items():
        atomic.write_text(args.out_dir / f"{name}.svg", text)
        print(args.out_dir / f"{name}.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
