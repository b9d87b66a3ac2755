// The console's Graph view: the selected servable's expanded graph (GET /console/api/graphs/{name})
// drawn as SVG built with DOM calls (no library; names and options go in as text, never markup).
// Nodes sit in layers by a longest-path topological layering of the forward streams; back edges
// are dashed and left out of the layering; side packets stand in a column on the left. Clicking
// or focusing a node (Tab, then Enter or Space) shows its calculator and options in the panel.
// window.ovserveGraph.highlight(names) marks the nodes a trace touched (traces.js).
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const NODE_W = 270;
  const NODE_H = 54;
  const LAYER_GAP = 80;
  const COL_GAP = 48;
  const SIDE_W = 150;
  const MARGIN = 24;
  const LABEL_ROOM = 130; // right of the last detour, for its label

  let section = null;
  let canvas = null;
  let panel = null;
  let status = null;
  let current = null; // the graph JSON shown
  let wanted = []; // runner names to highlight (they may arrive before the graph)

  function el(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function html(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function ensureStyles() {
    if (document.querySelector('link[data-console-views]')) return;
    const link = html("link", { rel: "stylesheet", href: "/console/static/views.css", "data-console-views": "" });
    document.head.appendChild(link);
  }

  function build() {
    section = document.getElementById("graph-root") || document.getElementById("view-graph");
    if (!section) return false;
    ensureStyles();
    const layout = html("div", { class: "graph-layout" });
    status = html("p", { class: "graph-status", role: "status" }, "Pick a servable to see its graph.");
    const scroller = html("div", { class: "graph-canvas", "aria-label": "graph drawing" });
    canvas = el("svg", { role: "group", "aria-label": "the servable's graph" });
    scroller.appendChild(canvas);
    panel = html("aside", { class: "graph-panel", "aria-live": "polite", "aria-label": "selected node" });
    panel.appendChild(html("p", {}, "Select a node (click it, or Tab to it and press Enter) to see its calculator and options."));
    layout.append(scroller, panel);
    section.append(status, layout);
    return true;
  }

  // --- layout -------------------------------------------------------------------------------------

  function layers(graph) {
    // Longest path from the graph's inputs over forward stream edges (no back edges, no side packets).
    const ids = graph.nodes.map((n) => n.id);
    const preds = new Map(ids.map((id) => [id, new Set()]));
    const succs = new Map(ids.map((id) => [id, new Set()]));
    for (const e of graph.edges) {
      if (e.back_edge || e.side_packet || !preds.has(e.target) || !preds.has(e.source)) continue;
      if (e.source === e.target) continue;
      preds.get(e.target).add(e.source);
      succs.get(e.source).add(e.target);
    }
    const layer = new Map();
    const waiting = new Map(ids.map((id) => [id, preds.get(id).size]));
    const queue = ids.filter((id) => waiting.get(id) === 0);
    for (const id of queue) layer.set(id, 1);
    while (queue.length) {
      const id = queue.shift();
      for (const next of succs.get(id)) {
        layer.set(next, Math.max(layer.get(next) || 1, layer.get(id) + 1));
        waiting.set(next, waiting.get(next) - 1);
        if (waiting.get(next) === 0) queue.push(next);
      }
    }
    // A cycle that is not marked as a back edge cannot pass validation; place any leftover last.
    let deepest = Math.max(1, ...layer.values());
    for (const id of ids) if (!layer.has(id)) layer.set(id, ++deepest);
    return { layer, preds, deepest };
  }

  function place(graph) {
    const { layer, preds, deepest } = layers(graph);
    const rows = [];
    for (let i = 0; i <= deepest + 1; i++) rows.push([]);
    rows[0].push("graph_in");
    for (const node of graph.nodes) rows[layer.get(node.id)].push(node.id);
    rows[deepest + 1].push("graph_out");
    const left = MARGIN + (graph.side_packets.length ? SIDE_W + COL_GAP : 0);
    const widest = Math.max(...rows.map((r) => r.length));
    const width = widest * NODE_W + (widest - 1) * COL_GAP;
    const pos = new Map();
    rows.forEach((row, r) => {
      // One barycenter pass: order a layer by where its predecessors stand (fewer crossings).
      if (r > 0) {
        const at = (id) => {
          const xs = [...(preds.get(id) || [])].map((p) => (pos.get(p) || { x: 0 }).x);
          return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
        };
        row.sort((a, b) => at(a) - at(b));
      }
      const rowWidth = row.length * NODE_W + (row.length - 1) * COL_GAP;
      row.forEach((id, i) => {
        pos.set(id, { x: left + (width - rowWidth) / 2 + i * (NODE_W + COL_GAP), y: MARGIN + r * (NODE_H + LAYER_GAP), row: r, first: i === 0 });
      });
    });
    // Side packets: in the left column just above their first consumer (stacked when several
    // share one), each with its own vertical bus (index) down to the nodes that take it.
    const taken = new Map();
    graph.side_packets.forEach((name, index) => {
      const consumers = graph.edges.filter((e) => e.side_packet && e.source === "side_" + name).map((e) => pos.get(e.target));
      const y = consumers.length ? Math.min(...consumers.map((p) => p.y)) : MARGIN;
      const shift = taken.get(y) || 0;
      taken.set(y, shift + 1);
      pos.set("side_" + name, { x: MARGIN, y: y - NODE_H / 2 - 10 - shift * (NODE_H / 2 + 8), index, side: true });
    });
    const row = (id) => (pos.get(id) || { row: 0 }).row;
    const detours = graph.edges.filter((e) => e.back_edge || (!e.side_packet && row(e.target) - row(e.source) > 1)).length;
    const right = left + width;
    return { pos, right, width: right + 40 + 34 * detours + LABEL_ROOM + MARGIN, height: MARGIN * 2 + rows.length * (NODE_H + LAYER_GAP) - LAYER_GAP };
  }

  // --- drawing ------------------------------------------------------------------------------------

  function drawEdges(graph, pos, right, into) {
    // Streams between adjacent layers go straight down; streams that skip layers and back edges
    // detour to the right of every node (each on its own track); side packets run down their bus
    // and enter a node from the left, or through the gap above it when another node is in the way.
    const parallel = new Map(); // source>target -> edges so far (spread them apart)
    const ends = new Map(); // node -> detours leaving or entering it so far (spread them apart)
    const spread = (id) => {
      const n = ends.get(id) || 0;
      ends.set(id, n + 1);
      return 20 + 12 * n;
    };
    let track = 0;
    // Back edges last: they take the outermost tracks.
    const ordered = [...graph.edges.filter((e) => !e.back_edge), ...graph.edges.filter((e) => e.back_edge)];
    for (const e of ordered) {
      const from = pos.get(e.source);
      const to = pos.get(e.target);
      if (!from || !to) continue;
      const key = e.source + ">" + e.target;
      const k = parallel.get(key) || 0;
      parallel.set(key, k + 1);
      let d;
      let lx;
      let ly;
      if (e.side_packet) {
        const bus = from.x + 16 + 14 * from.index;
        const top = from.y + NODE_H / 2;
        if (to.first) {
          const ty = to.y + NODE_H / 2 + 6;
          d = `M${bus},${top} V${ty} H${to.x}`;
          lx = bus + 8;
          ly = ty - 5;
        } else {
          const gap = to.y - 16 - 8 * from.index;
          d = `M${bus},${top} V${gap} H${to.x + 20} V${to.y}`;
          lx = to.x + 26;
          ly = to.y - 4;
        }
      } else if (e.back_edge || to.row - from.row > 1) {
        const t = track++;
        const far = right + 40 + 34 * t;
        if (e.back_edge) {
          // From the right side of the later node out to its track, up, and into the earlier one.
          const x1 = from.x + NODE_W;
          const y1 = from.y + NODE_H / 2;
          const x2 = to.x + NODE_W;
          const y2 = to.y + NODE_H / 2;
          const dir = y2 < y1 ? -1 : 1;
          d = `M${x1},${y1} C${far},${y1} ${far},${y1} ${far},${y1 + dir * 24} V${y2 - dir * 24} C${far},${y2} ${far},${y2} ${x2},${y2}`;
          lx = far + 4;
          ly = Math.min(Math.min(y1, y2) + 40 + 18 * t, Math.max(y1, y2) - 10);
        } else {
          const x1 = from.x + NODE_W / 2 + spread(e.source);
          const y1 = from.y + NODE_H;
          const x2 = to.x + NODE_W / 2 + spread(e.target);
          const y2 = to.y;
          d = `M${x1},${y1} C${x1},${y1 + 24} ${far},${y1 + 24} ${far},${y1 + 48} V${y2 - 48} C${far},${y2 - 24} ${x2},${y2 - 24} ${x2},${y2}`;
          lx = far + 4;
          ly = Math.min(y1 + 40 + 18 * t, y2 - 10);
        }
      } else {
        const x1 = from.x + NODE_W / 2 + k * 14;
        const y1 = from.y + NODE_H;
        const x2 = to.x + NODE_W / 2 + k * 14;
        const y2 = to.y;
        const bend = (y2 - y1) / 2;
        d = `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`;
        lx = (x1 + x2) / 2 + 6;
        ly = (y1 + y2) / 2 + k * 14;
      }
      const kind = e.back_edge ? "back" : e.side_packet ? "side" : "stream";
      const group = el("g", { class: "gedge gedge-" + kind, "data-edge": key });
      const attrs = { d, fill: "none", stroke: "#3b3b3b", "stroke-width": 1.5, "marker-end": "url(#graph-arrow)" };
      if (kind !== "stream") attrs["stroke-dasharray"] = "6 4";
      group.appendChild(el("path", attrs));
      group.appendChild(el("text", { x: lx, y: ly, class: "gedge-label", "font-size": 11, fill: "#1a1a1a" }, e.label));
      into.appendChild(group);
    }
  }

  function fit(text, most) {
    // Long names are cut to the box (the full name is in the node's title and the panel).
    return text.length > most ? text.slice(0, most - 1) + "…" : text;
  }

  function drawNode(node, p, into) {
    const label = `${node.name}: ${node.calculator}`;
    const g = el("g", { class: "gnode", "data-node-id": node.id, "data-node-name": node.name, tabindex: 0, role: "button", "aria-label": label, "aria-pressed": "false" });
    g.appendChild(el("title", {}, label));
    g.appendChild(el("rect", { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 6, fill: "#eef3fb", stroke: "#1f4e8c", "stroke-width": 1.5 }));
    g.appendChild(el("text", { x: p.x + 10, y: p.y + 22, "font-size": 13, "font-weight": "bold", fill: "#0d1b2a" }, fit(node.calculator, 31)));
    g.appendChild(el("text", { x: p.x + 10, y: p.y + 42, "font-size": 12, fill: "#2b2b2b" }, fit(node.name, 36)));
    const select = () => show(node, g);
    g.addEventListener("click", select);
    g.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select();
      }
    });
    into.appendChild(g);
  }

  function drawEnds(pos, into) {
    for (const [id, text] of [["graph_in", "graph inputs"], ["graph_out", "graph outputs"]]) {
      const p = pos.get(id);
      const g = el("g", { class: "gend", "data-graph-end": id });
      g.appendChild(el("ellipse", { cx: p.x + NODE_W / 2, cy: p.y + NODE_H / 2, rx: NODE_W / 2, ry: NODE_H / 2, fill: "#f4f4f4", stroke: "#555" }));
      g.appendChild(el("text", { x: p.x + NODE_W / 2, y: p.y + NODE_H / 2 + 4, "text-anchor": "middle", "font-size": 12, fill: "#1a1a1a" }, text));
      into.appendChild(g);
    }
  }

  function drawSidePackets(graph, pos, into) {
    for (const name of graph.side_packets) {
      const p = pos.get("side_" + name);
      const g = el("g", { class: "gside", "data-side-packet": name });
      g.appendChild(el("title", {}, `side packet ${name}`));
      g.appendChild(el("rect", { x: p.x, y: p.y, width: SIDE_W, height: NODE_H / 2, rx: 12, fill: "#fdf6e3", stroke: "#7a5c00", "stroke-dasharray": "4 3" }));
      g.appendChild(el("text", { x: p.x + 10, y: p.y + NODE_H / 4 + 4, "font-size": 12, fill: "#3d2e00" }, "side packet: " + name));
      into.appendChild(g);
    }
  }

  function render(graph) {
    current = graph;
    canvas.replaceChildren();
    const { pos, right, width, height } = place(graph);
    canvas.setAttribute("viewBox", `0 0 ${width} ${height}`);
    canvas.setAttribute("width", width);
    canvas.setAttribute("height", height);
    const defs = el("defs");
    const marker = el("marker", { id: "graph-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.appendChild(el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#3b3b3b" }));
    defs.appendChild(marker);
    canvas.appendChild(defs);
    const edgeLayer = el("g", { class: "gedges" });
    canvas.appendChild(edgeLayer);
    drawEdges(graph, pos, right, edgeLayer);
    drawEnds(pos, canvas);
    drawSidePackets(graph, pos, canvas);
    for (const node of graph.nodes) drawNode(node, pos.get(node.id), canvas);
    const count = graph.nodes.length;
    status.textContent = `${graph.servable}: ${count} node${count === 1 ? "" : "s"} (subgraphs expanded), ${graph.side_packets.length} side packet(s).`;
    highlight(wanted);
  }

  function streams(title, refs) {
    const wrap = html("div", { class: "graph-streams" });
    wrap.appendChild(html("h4", {}, title));
    if (!refs.length) {
      wrap.appendChild(html("p", {}, "none"));
      return wrap;
    }
    const list = html("ul");
    for (const ref of refs) list.appendChild(html("li", {}, ref.spec + (ref.back_edge ? " (back edge)" : "")));
    wrap.appendChild(list);
    return wrap;
  }

  function show(node, g) {
    for (const other of canvas.querySelectorAll(".gnode[aria-pressed='true']")) other.setAttribute("aria-pressed", "false");
    g.setAttribute("aria-pressed", "true");
    panel.replaceChildren();
    panel.appendChild(html("h3", {}, node.name));
    const facts = html("dl", { class: "graph-facts" });
    for (const [term, value] of [["node id", node.id], ["calculator", node.calculator], ["options type", node.options_type || "none"]]) {
      facts.append(html("dt", {}, term), html("dd", {}, value));
    }
    panel.appendChild(facts);
    panel.appendChild(html("h4", {}, "options"));
    panel.appendChild(html("pre", { class: "graph-options", "data-options-for": node.id }, JSON.stringify(node.options, null, 2)));
    panel.appendChild(streams("input streams", node.input_streams));
    panel.appendChild(streams("output streams", node.output_streams));
    panel.appendChild(streams("side packets", node.input_side_packets));
  }

  function highlight(names) {
    wanted = names || [];
    if (!canvas) return 0;
    const set = new Set(wanted);
    let marked = 0;
    for (const g of canvas.querySelectorAll(".gnode")) {
      const on = set.has(g.getAttribute("data-node-name"));
      g.classList.toggle("gnode-traced", on);
      g.querySelector("rect").setAttribute("fill", on ? "#ffe8a3" : "#eef3fb");
      if (on) marked++;
    }
    return marked;
  }

  async function load(name) {
    if (!section && !build()) return;
    current = null;
    canvas.replaceChildren();
    if (!name) {
      status.textContent = "Pick a servable to see its graph.";
      return;
    }
    status.textContent = `Loading the graph of ${name}…`;
    try {
      const response = await window.ovserveConsole.api(`/console/api/graphs/${encodeURIComponent(name)}`);
      const body = await response.json();
      if (!response.ok) throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
      render(body);
    } catch (error) {
      status.textContent = `Could not load the graph of ${name}: ${error.message}`;
    }
  }

  window.ovserveGraph = { load, highlight, current: () => current };

  function start() {
    if (!build() || !window.ovserveConsole) return;
    window.ovserveConsole.onServableChange((name) => load(name)); // now, if one is picked, and on each change
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
