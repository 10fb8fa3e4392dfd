"""MkDocs hook: typeset the equations when the site is built, with KaTeX, so readers run no maths code.

Why this way (issue 16: no CDN, light pages, equations that always show):
* Built, not in the browser: the reader gets finished HTML and CSS, so the equations show at first
  paint, with JavaScript off, in old phone browsers, offline; a TeX mistake fails `mkdocs build
  --strict` instead of showing raw TeX to a reader.
* KaTeX, not MathJax: MathJax 3's browser bundle (tex-chtml.js) is 1.1 MB that every page with an
  equation loaded; a built KaTeX page needs only katex.min.css (28 KB) and the few woff2 fonts its
  equations use (about 100 KB). MathML from Python (latex2mathml) would need no CSS or fonts, but
  its look depends on the reader's math fonts and older Android WebViews draw no MathML at all.
* From npm (package.json / package-lock.json pin it; `npm ci` installs it), run with the Node.js that
  `npm ci` needs anyway; its CSS and fonts are added to the site by hooks/run_results.py.

pymdownx.arithmatex (generic mode) leaves `<span class="arithmatex">\\(...\\)</span>` and
`<div class="arithmatex">\\[...\\]</div>`; after the page is written (so that search still indexes
the TeX source, not KaTeX's markup) each one's TeX becomes KaTeX's HTML (with MathML for screen
readers), and the page links the stylesheet.
"""

from __future__ import annotations

import html
import json
import posixpath
import re
import subprocess
from pathlib import Path

import mkdocs.plugins
from mkdocs.exceptions import PluginError

KATEX = Path("node_modules") / "katex" / "dist"
CSS = "assets/katex/katex-swap.min.css"  # font-display: swap: text shows before a font has loaded

EQUATION = re.compile(r'<(span|div) class="arithmatex">\s*\\([(\[])(.*?)\\[)\]]\s*</\1>', re.S)

# One Node.js process per page with equations: reads [[tex, display], ...], writes [html, ...].
RENDER = """
const katex = require(process.argv[1]);
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const out = [];
  for (const [tex, displayMode] of JSON.parse(input)) {
    try {
      out.push(katex.renderToString(tex, { displayMode, throwOnError: true, strict: "error", output: "htmlAndMathml" }));
    } catch (error) {
      process.stderr.write(`${error.message}\n  in: ${tex}\n`);
      process.exitCode = 1;
    }
  }
  process.stdout.write(JSON.stringify(out));
});
"""


def _root(config) -> Path:
    return Path(config["config_file_path"]).resolve().parent


def render(equations: list[tuple[str, bool]], root: Path, where: str = "") -> list[str]:
    katex = root / "node_modules" / "katex"
    if not (katex / "package.json").is_file():
        raise PluginError(f"{katex}: missing; run `npm ci` in the repository (equations are typeset with KaTeX "
                          "when the site is built)")
    try:
        done = subprocess.run(["node", "-e", RENDER, str(katex)], input=json.dumps(equations), capture_output=True,
                              text=True, cwd=root, timeout=120)
    except FileNotFoundError:
        raise PluginError("node: not found; Node.js 20 typesets the equations (see package.json)") from None
    if done.returncode != 0:
        raise PluginError(f"KaTeX could not typeset {where or 'an equation'}:\n{done.stderr.strip()}")
    return json.loads(done.stdout)


@mkdocs.plugins.event_priority(-50)
def on_post_page(output, page, config):
    found = list(EQUATION.finditer(output))
    if not found:
        return output
    equations = [(html.unescape(m.group(3)).strip(), m.group(2) == "[") for m in found]
    typeset = iter(render(equations, _root(config), where=f"an equation of {page.file.src_uri}"))
    output = EQUATION.sub(lambda m: f'<{m.group(1)} class="arithmatex">{next(typeset)}</{m.group(1)}>', output)
    css = posixpath.relpath(CSS, posixpath.dirname(page.file.dest_uri))
    return output.replace("</head>", f'<link rel="stylesheet" href="{css}">\n</head>', 1)
