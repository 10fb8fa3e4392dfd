"""MkDocs hook: the Explorer page's files, served by the site itself (no CDN, works offline).

* results/<run>/views/explorer/ (the workflow's `explorer` rule: ONNX graphs, sample images, Grad-CAM,
  explorer.json) become generated/explorer/<name>;
* ONNX Runtime Web's WebAssembly build (npm, pinned in package-lock.json) becomes assets/ort/<name>.

docs/javascripts/explorer.js finds both from its own address, and only the Explorer page loads
them: the other pages carry a few kilobytes of script that stops at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import mkdocs.plugins
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

# The plain WebAssembly backend (no WebGPU/WebGL code): the script, its module loader and the binary.
ORT = ("node_modules/onnxruntime-web/dist", ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs",
                                             "ort-wasm-simd-threaded.wasm"))


def explorer_dir(config) -> Path:
    run = os.environ.get("SE_RUN", "paper")
    path = Path(config["config_file_path"]).resolve().parent / "results" / run / "views" / "explorer"
    if not (path / "explorer.json").is_file():
        raise PluginError(f"{path / 'explorer.json'}: missing; SE_RUN={run} names a run whose explorer files the "
                          "workflow has not written (snakemake --cores 4 writes them)")
    return path


@mkdocs.plugins.event_priority(50)  # with run_results: before i18n sorts the files
def on_files(files, config):
    folder = explorer_dir(config)
    found = [(f"generated/explorer/{p.name}", p) for p in sorted(folder.iterdir())
             if p.is_file() and not p.name.startswith(".")]
    base, names = ORT
    ort = Path(config["config_file_path"]).resolve().parent / base
    missing = [name for name in names if not (ort / name).is_file()]
    if missing:
        raise PluginError(f"{ort}: {', '.join(missing)} missing; run `npm ci` in the repository (the Explorer page "
                          "serves its own ONNX Runtime Web)")
    found += [(f"assets/ort/{name}", ort / name) for name in names]
    for src_uri, path in found:
        files.append(File.generated(config, src_uri, abs_src_path=str(path)))
    return files


def on_serve(server, config, builder):
    server.watch(str(explorer_dir(config)))
    return server
