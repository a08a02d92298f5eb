// skymagic context cards: one card per context with its health, latency and free/total GPUs
// per GPU type as bars.
//
// Model traits (set by Python, skymagic/ui/dashboard/widgets.py and app.py):
//   cards: [{context, health, kind, message, latency_ms, mode, nodes, gpu_nodes,
//            nodes_text, gpus: [{gpu, free, total}], empty}]     health: ok | degraded | error
//            (empty: what to say where there are no GPU rows, e.g. "no A100-80GB")
//   selected_gpu: {context, gpu} | {}         set here when a GPU row is clicked

function bar(g, selected, context) {
  const row = document.createElement("div");
  row.className = "sky-gpu-row";
  if (selected.context === context && selected.gpu === g.gpu) row.classList.add("sky-selected");
  row.dataset.context = context;
  row.dataset.gpu = g.gpu;
  row.setAttribute("role", "button");
  row.tabIndex = 0;
  const name = document.createElement("span");
  name.className = "sky-gpu-name";
  name.textContent = g.gpu;
  const track = document.createElement("span");
  track.className = "sky-bar";
  const fill = document.createElement("span");
  fill.className = "sky-bar-fill";
  const known = g.free !== null && g.free !== undefined;
  const frac = known && g.total ? g.free / g.total : 0;
  fill.style.width = `${Math.round(frac * 100)}%`;
  track.appendChild(fill);
  const text = document.createElement("span");
  text.className = "sky-gpu-count";
  text.textContent = `${known ? g.free : "?"} / ${g.total} free`;
  row.append(name, track, text);
  return row;
}

function card(c, selected) {
  const div = document.createElement("div");
  div.className = `sky-card sky-health-${c.health}`;
  div.dataset.context = c.context;
  const head = document.createElement("div");
  head.className = "sky-card-head";
  const dot = document.createElement("span");
  dot.className = "sky-dot";
  const title = document.createElement("span");
  title.className = "sky-card-title";
  title.textContent = c.context;
  head.append(dot, title);
  const meta = document.createElement("div");
  meta.className = "sky-card-meta";
  const latency = c.latency_ms === null || c.latency_ms === undefined ? "–" : `${Math.round(c.latency_ms)} ms`;
  meta.textContent = `${c.health}${c.kind ? " (" + c.kind + ")" : ""} · ${latency} · ${c.mode} · ${c.nodes_text}`;
  div.append(head, meta);
  if (c.message) {
    const err = document.createElement("div");
    err.className = "sky-error";
    err.textContent = c.message;
    div.appendChild(err);
  }
  for (const g of c.gpus || []) div.appendChild(bar(g, selected, c.context));
  if (!c.gpus || c.gpus.length === 0) {
    const none = document.createElement("div");
    none.className = "sky-muted";
    none.textContent = c.empty || "";
    div.appendChild(none);
  }
  return div;
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "sky-cards";
  el.appendChild(root);

  function draw() {
    const selected = model.get("selected_gpu") || {};
    const frag = document.createDocumentFragment();
    for (const c of model.get("cards") || []) frag.appendChild(card(c, selected));
    root.replaceChildren(frag);
  }

  function pick(event) {
    const row = event.target.closest(".sky-gpu-row");
    if (!row || !root.contains(row)) return;
    if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
    const current = model.get("selected_gpu") || {};
    const same = current.context === row.dataset.context && current.gpu === row.dataset.gpu;
    model.set("selected_gpu", same ? {} : { context: row.dataset.context, gpu: row.dataset.gpu });
    model.save_changes();
  }

  root.addEventListener("click", pick);
  root.addEventListener("keydown", pick);
  model.on("change:cards", draw);
  model.on("change:selected_gpu", draw);
  draw();
  return () => {
    model.off("change:cards", draw);
    model.off("change:selected_gpu", draw);
  };
}

export default { render };
