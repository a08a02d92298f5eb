// skymagic node grid: one cell per node, grouped by context, coloured by its free fraction.
//
// Model traits (set by Python, skymagic/ui/dashboard/widgets.py and app.py):
//   sections: [{context, error, shown, total}]  one group per context, in failover order
//   nodes:    [{id, context, node, gpu, total, free, status, taints, job, job_title}]
//             already filtered; `job` is the tag of a node whose GPUs managed jobs hold
//             ("3", "3+" for several) and `job_title` its tooltip line (view.job_tag/job_hint)
//   selected: {context, node} | {}   set here on click; Python answers with the node's pods
//   rendered: int                    counted up here once per view drawn: the kernel's sign
//                                    that this front end's messages reach it
// A context with an error shows the message in place of its cells; the others still render.

const STATUS_CLASS = {
  Healthy: "",
  NotReady: "sky-notready",
  Cordoned: "sky-cordoned",
};

function statusClass(status) {
  if (status in STATUS_CLASS) return STATUS_CLASS[status];
  return status && status.includes("Taint") ? "sky-tainted" : "";
}

// Red (nothing free) to green (all free); grey when free is unknown or the node has no GPUs.
export function freeColour(free, total) {
  if (free === null || free === undefined || !total) return "#b8bcc4";
  const frac = Math.max(0, Math.min(1, free / total));
  return `hsl(${Math.round(frac * 120)}, 62%, 48%)`;
}

function cell(n, selected) {
  const div = document.createElement("div");
  const cls = statusClass(n.status);
  div.className = "sky-node" + (cls ? " " + cls : "");
  if (selected && selected.context === n.context && selected.node === n.node) {
    div.classList.add("sky-selected");
  }
  div.dataset.context = n.context;
  div.dataset.node = n.node;
  div.dataset.status = n.status;
  div.style.background = freeColour(n.free, n.total);
  const free = n.free === null || n.free === undefined ? "?" : String(n.free);
  div.textContent = n.total ? free : "";
  const lines = [
    `${n.node} (${n.context})`,
    n.gpu ? `${n.gpu}: ${free} of ${n.total} free` : "no GPUs",
    `status: ${n.status}`,
  ];
  if (n.taints) lines.push(`taints: ${n.taints}`);
  if (n.job) {
    const tag = document.createElement("span");
    tag.className = "sky-node-job";
    tag.textContent = n.job;
    div.appendChild(tag);
    if (n.job_title) lines.push(n.job_title);
  }
  div.title = lines.join("\n");
  div.setAttribute("role", "button");
  div.tabIndex = 0;
  return div;
}

// Tell the kernel a view is drawn. A notebook reopened without its kernel has no comm to
// send on (ipywidgets then throws "no comm channel"): the view simply stays as saved.
function answer(model) {
  try {
    model.set("rendered", (model.get("rendered") || 0) + 1);
    model.save_changes();
  } catch (err) {
    console.debug("skymagic: no kernel to answer", err);
  }
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "sky-grid";
  el.appendChild(root);

  function draw() {
    const sections = model.get("sections") || [];
    const nodes = model.get("nodes") || [];
    const selected = model.get("selected") || {};
    const byContext = new Map();
    for (const n of nodes) {
      if (!byContext.has(n.context)) byContext.set(n.context, []);
      byContext.get(n.context).push(n);
    }
    const frag = document.createDocumentFragment();
    for (const s of sections) {
      const group = document.createElement("div");
      group.className = "sky-grid-section";
      group.dataset.context = s.context;
      const head = document.createElement("div");
      head.className = "sky-grid-head";
      head.textContent = `${s.context} · ${s.shown} of ${s.total} nodes`;
      group.appendChild(head);
      if (s.error) {
        const err = document.createElement("div");
        err.className = "sky-error";
        err.textContent = s.error;
        group.appendChild(err);
      }
      const cells = document.createElement("div");
      cells.className = "sky-cells";
      for (const n of byContext.get(s.context) || []) cells.appendChild(cell(n, selected));
      group.appendChild(cells);
      frag.appendChild(group);
    }
    const legend = document.createElement("div");
    legend.className = "sky-legend";
    legend.textContent =
      "colour: share of GPUs free (red none, green all; grey unknown) · × NotReady · " +
      "hatched: cordoned · dashed: tainted · click a node for its pods";
    if (nodes.some((n) => n.job)) {
      // as the static snapshot says it (skymagic/ui/dashboard/snapshot.py, _TAG_LEGEND)
      legend.textContent +=
        " · blue tag N: managed job N holds the node's GPUs (hover a cell: how to stop it)";
    }
    frag.appendChild(legend);
    root.replaceChildren(frag);
  }

  function pick(event) {
    const target = event.target.closest(".sky-node");
    if (!target || !root.contains(target)) return;
    if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
    const current = model.get("selected") || {};
    const same = current.context === target.dataset.context && current.node === target.dataset.node;
    model.set("selected", same ? {} : { context: target.dataset.context, node: target.dataset.node });
    model.save_changes();
  }

  root.addEventListener("click", pick);
  root.addEventListener("keydown", pick);
  answer(model);
  model.on("change:nodes", draw);
  model.on("change:sections", draw);
  model.on("change:selected", draw);
  draw();
  return () => {
    model.off("change:nodes", draw);
    model.off("change:sections", draw);
    model.off("change:selected", draw);
  };
}

export default { render };
