// The Explorer page: the trained models run in the reader's browser (ONNX Runtime Web, WebAssembly).
//
// Everything it loads is served by the site itself: assets/ort/ (npm, hooks/explorer.py) and
// generated/explorer/ (the workflow's `explorer` rule: the ONNX graphs, the sample images, Grad-CAM,
// explorer.json with the models' seed and accuracy). The words are the page's own (a JSON block in
// docs/explorer.<lang>.md, script[data-explorer-words]); the class names come from the catalogues through explorer.json.
//
// The results are also in the DOM for tests and curious readers: [data-probs] on each model's
// column, [data-gates] on each SE block, and on the root data-result (what was shown), data-ms (ms
// from the choice to the drawn result) and data-state.
(() => {
  const root = document.querySelector("[data-explorer]");
  if (!root) return; // every other page stops here
  const SITE = new URL("..", document.currentScript.src).href; // javascripts/ sits at the site root
  const DATA = SITE + "generated/explorer/";
  const ORT = SITE + "assets/ort/";
  const words = JSON.parse(document.querySelector("script[data-explorer-words]").textContent);
  const lang = root.dataset.lang;
  const SHOWN = 4; // channels shown per block at each end of the gate ranking

  const fmt = (template, fields) => template.replace(/\{(\w+)\}/g, (_, k) => (k in fields ? fields[k] : `{${k}}`));
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  };
  const pct = (p) => (100 * p).toFixed(1) + " %";
  const $ = (role) => root.querySelector(`[data-role="${role}"]`);

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = el("script", { src });
      s.onload = resolve;
      s.onerror = () => reject(new Error(src));
      document.head.append(s);
    });
  }

  function loadImage(src) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error(src));
      img.src = src;
    });
  }

  // ---- state ----
  let manifest, sessions = {}, samplePixels, current = null, attention = true, busy = Promise.resolve();

  // ---- input: an image as the network sees it ----
  function toTensor(rgba, side) {
    const { mean, std } = manifest.normalize;
    const plane = side * side, data = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++)
      for (let c = 0; c < 3; c++) data[c * plane + i] = (rgba[4 * i + c] / 255 - mean[c]) / std[c];
    return new ort.Tensor("float32", data, [1, 3, side, side]);
  }

  function samplePixelsOf(i) {
    const side = manifest.side, cols = manifest.samples.columns;
    const ctx = samplePixels.getContext("2d", { willReadFrequently: true });
    return ctx.getImageData((i % cols) * side, Math.floor(i / cols) * side, side, side).data;
  }

  // Centre square, resized to side x side by the browser's high-quality smoothing.
  function uploadPixels(img) {
    const side = manifest.side, s = Math.min(img.naturalWidth, img.naturalHeight);
    const canvas = el("canvas", { width: side, height: side });
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(img, (img.naturalWidth - s) / 2, (img.naturalHeight - s) / 2, s, s, 0, 0, side, side);
    return ctx.getImageData(0, 0, side, side).data;
  }

  // ---- inference ----
  async function run(model, input) {
    const session = sessions[model.name];
    const feeds = { image: input };
    if (session.inputNames.includes("attention"))
      feeds.attention = new ort.Tensor("float32", new Float32Array([model.attention && !attention ? 0 : 1]), [1]);
    return session.run(feeds);
  }

  function softmax(logits) {
    const m = Math.max(...logits), e = logits.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  }

  // ---- drawing ----
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function colour(t) {
    const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2);
    const f = x - i, a = VIRIDIS[i], b = VIRIDIS[i + 1];
    return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k])));
  }

  // One channel of an N x C x H x W map (N = 1), scaled by `top` so before and after share a scale.
  function mapCanvas(tensor, channel, top) {
    const [, , h, w] = tensor.dims, plane = h * w, data = tensor.data;
    const canvas = el("canvas", { width: w, height: h, class: "se-x-map" });
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
    for (let i = 0; i < plane; i++) {
      const [r, g, b] = colour(top > 0 ? data[channel * plane + i] / top : 0);
      img.data.set([r, g, b, 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }

  function channelMax(tensor, channel) {
    const [, , h, w] = tensor.dims, plane = h * w;
    let top = 0;
    for (let i = 0; i < plane; i++) top = Math.max(top, tensor.data[channel * plane + i]);
    return top;
  }

  // Gates sorted from largest to smallest, one bar each; the shown channels are marked.
  function gateChart(gates, marked) {
    const order = [...gates.keys()].sort((a, b) => gates[b] - gates[a]);
    const width = 600, height = 120, bar = width / gates.length;
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "se-x-gates");
    svg.setAttribute("role", "img");
    const ns = svg.namespaceURI;
    order.forEach((c, rank) => {
      const r = document.createElementNS(ns, "rect");
      const hgt = Math.max(gates[c] * height, 0.5);
      r.setAttribute("x", rank * bar);
      r.setAttribute("width", Math.max(bar - (gates.length > 64 ? 0 : 1), 0.5));
      r.setAttribute("y", height - hgt);
      r.setAttribute("height", hgt);
      r.setAttribute("class", marked.has(c) ? "se-x-bar se-x-bar--shown" : "se-x-bar");
      const title = document.createElementNS(ns, "title");
      title.textContent = fmt(words.channel_gate, { channel: c, gate: gates[c].toFixed(3) });
      r.append(title);
      svg.append(r);
    });
    return svg;
  }

  function drawProbabilities(results) {
    const table = $("probs");
    table.replaceChildren();
    table.style.setProperty("--models", manifest.models.length); // one bar column per model
    const classes = manifest.classes[lang];
    const head = el("div", { class: "se-x-prow se-x-prow--head" }, el("span", { text: words.class }));
    for (const m of manifest.models) head.append(el("span", { text: words.model_names[m.name] || m.name }));
    table.append(head);
    const best = Object.fromEntries(manifest.models.map((m) => [m.name, results[m.name].probs.indexOf(Math.max(...results[m.name].probs))]));
    classes.forEach((name, c) => {
      const row = el("div", { class: "se-x-prow" }, el("span", { class: "se-x-cls", text: name }));
      for (const m of manifest.models) {
        const p = results[m.name].probs[c];
        const cell = el("span", { class: "se-x-pcell" + (best[m.name] === c ? " se-x-best" : "") },
          el("span", { class: "se-x-pbar", style: `width:${(100 * p).toFixed(1)}%` }),
          el("span", { class: "se-x-ptext", text: pct(p) }));
        row.append(cell);
      }
      table.append(row);
    });
    const cols = $("verdicts");
    cols.replaceChildren();
    for (const m of manifest.models) {
      const r = results[m.name], c = best[m.name];
      cols.append(el("p", { class: "se-x-verdict", "data-model": m.name, "data-probs": JSON.stringify(r.probs),
        "data-attention": m.attention ? (attention ? "1" : "0") : "" },
        fmt(words.says, { model: words.model_names[m.name] || m.name, cls: classes[c], p: pct(r.probs[c]) })));
    }
  }

  function drawBlocks(results) {
    const box = $("blocks");
    box.replaceChildren();
    // The first model with channel gates (SE, ECA): its gates are the bars (older manifests: m.attention).
    const se = manifest.models.find((m) => m.gates ?? m.attention);
    if (!se) return;
    const out = results[se.name].outputs;
    se.channels.forEach((channels, k) => {
      const gates = Array.from(out[`gates${k + 1}`].data);
      const order = [...gates.keys()].sort((a, b) => gates[b] - gates[a]);
      const shown = [...order.slice(0, SHOWN), ...order.slice(-SHOWN)];
      const pre = out[`pre${k + 1}`], post = out[`post${k + 1}`];
      const section = el("section", { class: "se-x-block", "data-block": String(k + 1), "data-gates": JSON.stringify(gates) });
      section.append(el("h3", { text: fmt(words.block, { k: k + 1, channels, side: pre.dims[2] }) }));
      section.append(el("p", { class: "se-x-note", text: attention ? words.gates_note : words.gates_off }));
      section.append(gateChart(gates, new Set(shown)));
      const grid = el("div", { class: "se-x-mapgrid" });
      grid.append(el("span", {}), el("span", { class: "se-x-head", text: words.most }), el("span", { class: "se-x-head", text: words.least }));
      for (const [label, tensor] of [[words.before, pre], [words.after, post]]) {
        const most = el("span", { class: "se-x-maps" }), least = el("span", { class: "se-x-maps" });
        shown.forEach((c, i) => {
          const fig = el("figure", {}, mapCanvas(tensor, c, channelMax(pre, c)),
            el("figcaption", { text: fmt(words.channel_short, { channel: c, gate: gates[c].toFixed(2) }) }));
          (i < SHOWN ? most : least).append(fig);
        });
        grid.append(el("span", { class: "se-x-rowhead", text: label }), most, least);
      }
      section.append(grid);
      box.append(section);
    });
  }

  function drawGradcam(choice) {
    const box = $("gradcam");
    box.replaceChildren();
    if (choice.kind !== "sample") {
      box.append(el("p", { class: "se-x-note", text: words.gradcam_none }));
      return;
    }
    const side = manifest.side, cols = manifest.samples.columns, i = choice.index;
    for (const m of manifest.models) {
      const tile = el("span", { class: "se-x-tile se-x-tile--big", role: "img",
        "aria-label": fmt(words.gradcam_of, { model: words.model_names[m.name] || m.name }) });
      tile.style.backgroundImage = `url(${DATA}${m.gradcam})`;
      tile.style.setProperty("--col", i % cols);
      tile.style.setProperty("--row", Math.floor(i / cols));
      tile.style.setProperty("--cols", cols);
      tile.style.setProperty("--rows", rows());
      box.append(el("figure", {}, tile, el("figcaption", {
        text: fmt(words.gradcam_caption, { model: words.model_names[m.name] || m.name,
          cls: manifest.classes[lang][m.predictions[i]] }) })));
    }
  }

  function drawInput(rgba, choice) {
    const side = manifest.side, canvas = $("seen");
    const ctx = canvas.getContext("2d");
    ctx.putImageData(new ImageData(new Uint8ClampedArray(rgba), side, side), 0, 0);
    $("seen-caption").textContent = choice.kind === "sample"
      ? fmt(words.sample_caption, { n: manifest.samples.index[choice.index], cls: manifest.classes[lang][manifest.samples.labels[choice.index]] })
      : words.upload_caption;
  }

  // ---- one choice: run every model, draw everything ----
  function show(choice, rgba) {
    const t0 = performance.now();
    busy = busy.then(async () => {
      root.dataset.state = "busy";
      current = { choice, rgba };
      const input = toTensor(rgba, manifest.side), results = {};
      for (const m of manifest.models) {
        const out = await run(m, input);
        results[m.name] = { outputs: out, probs: softmax(Array.from(out.logits.data)) };
      }
      drawInput(rgba, choice);
      drawProbabilities(results);
      drawBlocks(results);
      drawGradcam(choice);
      const ms = performance.now() - t0;
      $("timing").textContent = fmt(words.timing, { ms: ms.toFixed(0) });
      root.dataset.ms = ms.toFixed(1);
      root.dataset.attention = attention ? "1" : "0";
      root.dataset.result = choice.kind === "sample" ? `sample:${choice.index}` : `upload:${choice.name}`;
      root.dataset.state = "done";
    }).catch((err) => {
      root.dataset.state = "error";
      $("status").textContent = fmt(words.error, { error: err.message || String(err) });
    });
    return busy;
  }

  const rows = () => Math.ceil(manifest.samples.labels.length / manifest.samples.columns);

  function choose(i) {
    root.querySelectorAll(".se-x-pick [aria-pressed]").forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.index) === i)));
    show({ kind: "sample", index: i }, samplePixelsOf(i));
  }

  function buildPicker() {
    const box = $("picker"), side = manifest.side, cols = manifest.samples.columns;
    const classes = manifest.classes[lang];
    manifest.samples.labels.forEach((label, i) => {
      const b = el("button", { type: "button", class: "se-x-tile", "data-index": String(i), "aria-pressed": "false",
        title: classes[label], "aria-label": fmt(words.pick_one, { cls: classes[label], n: manifest.samples.index[i] }) });
      b.style.backgroundImage = `url(${DATA}${manifest.samples.sprite})`;
      b.style.setProperty("--col", i % cols);
      b.style.setProperty("--row", Math.floor(i / cols));
      b.style.setProperty("--cols", cols);
      b.style.setProperty("--rows", rows());
      b.addEventListener("click", () => choose(i));
      box.append(b);
    });
  }

  function describeModels() {
    const box = $("models");
    box.replaceChildren();
    for (const m of manifest.models) {
      box.append(el("li", { "data-model": m.name, "data-accuracy": String(m.test_accuracy), "data-seed": String(m.seed) },
        fmt(words.model_line, { model: words.model_names[m.name] || m.name, seed: m.seed, acc: m.test_accuracy.toFixed(2),
          n: m.test_images.toLocaleString(lang === "zh" ? "zh-CN" : "en"), epochs: m.epochs,
          params: m.parameters.toLocaleString(lang === "zh" ? "zh-CN" : "en") })));
    }
  }

  async function start() {
    root.dataset.state = "loading";
    $("status").textContent = words.loading;
    const [m] = await Promise.all([fetch(DATA + "explorer.json").then((r) => r.json()), loadScript(ORT + "ort.wasm.min.js")]);
    manifest = m;
    describeModels();
    ort.env.wasm.wasmPaths = ORT;
    ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page, which a static host rarely gives
    const sprite = await loadImage(DATA + manifest.samples.sprite);
    samplePixels = el("canvas", { width: sprite.naturalWidth, height: sprite.naturalHeight });
    samplePixels.getContext("2d", { willReadFrequently: true }).drawImage(sprite, 0, 0);
    for (const model of manifest.models)
      sessions[model.name] = await ort.InferenceSession.create(DATA + model.file, { executionProviders: ["wasm"] });
    buildPicker();
    $("attention").addEventListener("change", (e) => {
      attention = e.target.checked;
      if (current) show(current.choice, current.rgba);
    });
    $("upload").addEventListener("change", async (e) => {
      const file = e.target.files[0];
      if (!file) return;
      const url = URL.createObjectURL(file);
      try {
        const img = await loadImage(url);
        root.querySelectorAll(".se-x-pick [aria-pressed]").forEach((b) => b.setAttribute("aria-pressed", "false"));
        await show({ kind: "upload", name: file.name }, uploadPixels(img));
      } catch (err) {
        $("status").textContent = fmt(words.error, { error: file.name });
      } finally {
        URL.revokeObjectURL(url);
      }
    });
    // What this page loaded for the explorer, as the browser counted it (compressed bytes where served so).
    const bytes = performance.getEntriesByType("resource").filter((r) => r.name.startsWith(DATA) || r.name.startsWith(ORT))
      .reduce((sum, r) => sum + (r.transferSize || r.encodedBodySize || 0), 0);
    $("status").textContent = fmt(words.ready, { mb: (bytes / 1048576).toFixed(1) });
    root.dataset.state = "ready";
    choose(0);
  }

  start().catch((err) => {
    root.dataset.state = "error";
    $("status").textContent = fmt(words.error, { error: err.message || String(err) });
  });
})();
