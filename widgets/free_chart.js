// skymagic free-GPU chart: free GPUs over time, one line per context and GPU type, since the
// dashboard opened (a point per refresh).
//
// Model traits (set by Python, skymagic/ui/dashboard/widgets.py and history.py):
//   series: [{context, gpu, total, points: [[t, free|null], ...], change: int|null}]
//           t in seconds since the epoch; a null free is a gap (the pods could not be read)

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#2d6fd0", "#d0742d", "#3a9a5b", "#9b59b6", "#c8383a", "#1a9c9c", "#8a6d3b", "#555"];
const W = 640;
const H = 110;
const PAD = { left: 30, right: 8, top: 8, bottom: 18 };

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

// HH:MM, or HH:MM:SS while the chart spans less than ten minutes.
function clock(t, span = 3600) {
  return new Date(t * 1000).toTimeString().slice(0, span < 600 ? 8 : 5);
}

// Polyline pieces: a null free breaks the line.
function pieces(points, x, y) {
  const out = [];
  let current = [];
  for (const [t, free] of points) {
    if (free === null || free === undefined) {
      if (current.length) out.push(current);
      current = [];
    } else {
      current.push(`${x(t).toFixed(1)},${y(free).toFixed(1)}`);
    }
  }
  if (current.length) out.push(current);
  return out;
}

function draw(root, series) {
  const lines = (series || []).filter((s) => s.points.length > 0);
  const times = lines.flatMap((s) => s.points.map((p) => p[0]));
  const frag = document.createDocumentFragment();
  const title = document.createElement("div");
  title.className = "sky-chart-title";
  if (!times.length || Math.max(...lines.map((s) => s.points.length)) < 2) {
    title.textContent = "free GPUs over time: collecting (a point per refresh)";
    frag.appendChild(title);
    root.replaceChildren(frag);
    return;
  }
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const top = Math.max(1, ...lines.map((s) => Math.max(s.total || 0, ...s.points.map((p) => p[1] || 0))));
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0 || 1)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  title.textContent = `free GPUs since ${clock(t0, t1 - t0)}`;
  frag.appendChild(title);

  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "sky-chart-svg", role: "img" });
  svg.appendChild(el("line", { x1: PAD.left, y1: y(0), x2: W - PAD.right, y2: y(0), class: "sky-axis" }));
  svg.appendChild(el("text", { x: PAD.left - 4, y: y(top) + 4, class: "sky-tick", "text-anchor": "end" }, top));
  svg.appendChild(el("text", { x: PAD.left - 4, y: y(0), class: "sky-tick", "text-anchor": "end" }, 0));
  svg.appendChild(el("text", { x: PAD.left, y: H - 4, class: "sky-tick" }, clock(t0, t1 - t0)));
  svg.appendChild(el("text", { x: W - PAD.right, y: H - 4, class: "sky-tick", "text-anchor": "end" }, clock(t1, t1 - t0)));

  const legend = document.createElement("div");
  legend.className = "sky-chart-legend";
  lines.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const label = `${s.context} · ${s.gpu}`;
    for (const piece of pieces(s.points, x, y)) {
      const line = el("polyline", {
        points: piece.join(" "),
        fill: "none",
        stroke: colour,
        "stroke-width": 2,
        class: "sky-series",
        "data-context": s.context,
        "data-gpu": s.gpu,
      });
      line.appendChild(el("title", {}, label));
      svg.appendChild(line);
    }
    const last = s.points[s.points.length - 1][1];
    const item = document.createElement("span");
    item.className = "sky-chart-key";
    const swatch = document.createElement("span");
    swatch.className = "sky-chart-swatch";
    swatch.style.background = colour;
    const change = s.change === null || s.change === undefined || s.change === 0
      ? ""
      : ` (${s.change > 0 ? "+" : ""}${s.change})`;
    item.append(swatch, `${label}: ${last === null ? "?" : last} free${change}`);
    legend.appendChild(item);
  });
  frag.append(svg, legend);
  root.replaceChildren(frag);
}

function render({ model, el: host }) {
  const root = document.createElement("div");
  root.className = "sky-chart";
  host.appendChild(root);
  const redraw = () => draw(root, model.get("series"));
  model.on("change:series", redraw);
  redraw();
  return () => model.off("change:series", redraw);
}

export default { render };
