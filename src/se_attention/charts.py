"""Charts for the generated tables, as SVG set inline in the page: its text stays text in either language.

``step_phases`` draws where a training step's time goes in each pipeline of a benchmark record
(python -m se_attention.bench): one bar per model and pipeline, split into the step's phases.
"""

from __future__ import annotations

from .i18n import Words
from .svg import Canvas, text_width

# Okabe and Ito's colours: told apart with any colour vision.
PHASE_COLOURS = {"data": "#E69F00", "forward": "#56B4E9", "backward": "#0072B2", "optimizer": "#009E73"}
BAR_WIDTH = 300  # px for the slowest step, the others to scale: about a phone's width with the labels
BAR_HEIGHT = 16
SIZE = 13  # px, the charts' text


def step_phases(b: dict, pipelines: tuple[str, str], t: Words, chart_id: str, labels: dict | None = None) -> str:
    """A <div> with the bars of record ``b``'s two ``pipelines``, milliseconds per step of batch 64 by phase.

    ``labels`` names the pipelines (default: the catalogue's ``pipeline`` words)."""
    labels = labels or t["pipeline"]
    rows = [(f"{t['model'][model]} · {labels[name]}", m[name]["phases_ms"])
            for model, m in b["models"].items() for name in pipelines]
    slowest = max(sum(phases.values()) for _, phases in rows)
    canvas = Canvas(t["chart_title"], t["chart_desc"], id_prefix=f"{chart_id}-")
    x = 0.0
    for phase, colour in PHASE_COLOURS.items():  # the legend, in the order of the bars' segments
        canvas.frame(x, 3, SIZE - 1, SIZE - 1, [], colour, stroke=colour, rounded=2)
        canvas.text(x + SIZE + 4, SIZE, t["phase"][phase], SIZE)
        x += SIZE + 4 + text_width(t["phase"][phase], SIZE) + 12
    y = 2.2 * SIZE
    for label, phases in rows:
        canvas.text(0, y + SIZE, label, SIZE)
        y += 1.5 * SIZE
        left = 0.0
        for phase, colour in PHASE_COLOURS.items():
            width = BAR_WIDTH * phases[phase] / slowest
            if width > 0:
                canvas.frame(left, y, width, BAR_HEIGHT, [], colour, stroke="#fff", rounded=0)
            left += width
        canvas.text(left + 6, y + BAR_HEIGHT - 3, t("chart_total", ms=sum(phases.values())), SIZE)
        y += BAR_HEIGHT + 0.8 * SIZE
    return f'<div class="step-chart">\n{canvas.to_string(fluid=True)}</div>\n'
