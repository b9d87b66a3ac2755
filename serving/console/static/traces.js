// The console's Traces view: the traces the server keeps (GET /debug/traces, newest first) and,
// for the one selected, a timeline from its Chrome trace JSON (GET /debug/traces/{id}): one lane
// per node (otherData.nodes names each node's thread), with bars for open, process and close, the
// node's spawned tasks and spans, and a mark per packet it emitted. "Show on graph" marks the nodes
// the trace touched in the Graph view; #traces/<id> opens that trace. Everything from the server
// goes in as text, never markup.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const LABEL_W = 230;
  const PLOT_W = 760;
  const LANE_H = 30;
  const TOP = 28;
  const SHOWN = 50; // traces listed at most (the server keeps --trace_keep)
  const COLORS = { node: "#e3e7ee", open: "#1b7f3b", process: "#1f4e8c", close: "#7b2d8e", task: "#b7c7e0", span: "#c9a227", packet: "#b3261e" };

  let section = null;
  let list = null;
  let status = null;
  let detail = null;

  function html(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function getJSON(path) {
    const response = await window.ovserveConsole.api(path);
    const body = await response.json();
    if (!response.ok) {
      const error = new Error((body.error && body.error.message) || `HTTP ${response.status}`);
      error.code = body.error && body.error.code;
      throw error;
    }
    return body;
  }

  function build() {
    section = document.getElementById("traces-root") || document.getElementById("view-traces");
    if (!section) return false;
    if (!document.querySelector("link[data-console-views]")) {
      document.head.appendChild(html("link", { rel: "stylesheet", href: "/console/static/views.css", "data-console-views": "" }));
    }
    const bar = html("div", { class: "traces-bar" });
    const refresh = html("button", { type: "button", class: "traces-refresh" }, "Refresh the list");
    refresh.addEventListener("click", () => refreshList());
    status = html("p", { class: "traces-status", role: "status" });
    bar.append(refresh, status);
    list = html("table", { class: "traces-list" });
    const caption = html("caption", {}, "Traced requests, newest first");
    const head = html("thead");
    const row = html("tr");
    for (const title of ["time", "route", "servable", "duration", "trace"]) row.appendChild(html("th", { scope: "col" }, title));
    head.appendChild(row);
    list.append(caption, head, html("tbody"));
    detail = html("div", { class: "traces-detail", "aria-live": "polite" });
    section.append(bar, list, detail);
    return true;
  }

  function when(startedAt) {
    return new Date(startedAt * 1000).toLocaleTimeString([], { hour12: false });
  }

  async function refreshList() {
    if (!section && !build()) return;
    status.textContent = "Loading…";
    let traces;
    try {
      traces = (await getJSON("/debug/traces")).data;
    } catch (error) {
      status.textContent = error.code === "tracing_off" ? "Tracing is off: start the server with --trace or --trace header (send X-Ovserve-Trace: 1)." : `Could not list the traces: ${error.message}`;
      return;
    }
    const body = list.tBodies[0];
    body.replaceChildren();
    for (const trace of traces.slice(0, SHOWN)) {
      const row = html("tr", { "data-trace-id": trace.id });
      const duration = trace.duration_ms === null ? "running" : `${trace.duration_ms.toFixed(1)} ms`;
      row.append(html("td", {}, when(trace.started_at)), html("td", {}, trace.route || trace.endpoint || ""), html("td", {}, trace.servable || ""), html("td", {}, duration));
      const cell = html("td");
      const open = html("button", { type: "button", "aria-label": `open trace ${trace.id}` }, trace.error ? `${trace.id} (${trace.error})` : trace.id);
      open.addEventListener("click", () => openTrace(trace));
      cell.appendChild(open);
      row.appendChild(cell);
      body.appendChild(row);
    }
    status.textContent = traces.length ? `${traces.length} trace(s) kept.` : "No traces yet: send a request (with X-Ovserve-Trace: 1 under --trace header).";
    // #traces/<id> (e.g. from a chat answer's trace id) opens that trace.
    const asked = decodeURIComponent(window.location.hash.split("/")[1] || "");
    const named = asked && traces.find((t) => t.id === asked);
    if (named) openTrace(named);
  }

  // --- the timeline -------------------------------------------------------------------------------

  function lanesOf(chrome) {
    // One lane per node: otherData.nodes gives each node's thread; its tasks and spans sit on the
    // threads just below it (up to the next node's).
    const nodes = (chrome.otherData && chrome.otherData.nodes) || [];
    const lanes = nodes.map((n) => ({ name: n.node, calculator: n.calculator, tid: n.tid, items: [], packets: [] }));
    const sorted = [...lanes].sort((a, b) => a.tid - b.tid);
    const laneOf = (tid) => {
      let found = null;
      for (const lane of sorted) if (lane.tid <= tid) found = lane;
      return found;
    };
    let total = 0;
    for (const event of chrome.traceEvents) {
      if (event.ph === "X" && event.tid === 0 && event.cat === "run") total = Math.max(total, event.dur);
      if (event.tid === 0 || (event.ph !== "X" && event.ph !== "C")) continue;
      const lane = laneOf(event.tid);
      if (!lane) continue;
      if (event.ph === "C") lane.packets.push(event.ts);
      else {
        const kind = event.cat === "node" ? "node" : event.cat === "spawned" ? "task" : event.cat === "span" ? "span" : event.name;
        lane.items.push({ kind, ts: event.ts, dur: event.dur, name: event.name });
        total = Math.max(total, event.ts + event.dur);
      }
    }
    return { lanes, total: total || 1 };
  }

  function timeline(chrome, ids) {
    const { lanes, total } = lanesOf(chrome);
    const scale = (us) => LABEL_W + (us / total) * PLOT_W;
    const height = TOP + lanes.length * LANE_H + 8;
    const width = LABEL_W + PLOT_W + 16;
    const drawing = svg("svg", { class: "traces-timeline", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "timeline of the trace's nodes" });
    for (let i = 0; i <= 4; i++) {
      const x = scale((total * i) / 4);
      drawing.appendChild(svg("line", { x1: x, y1: TOP - 6, x2: x, y2: height - 8, stroke: "#c8c8c8" }));
      drawing.appendChild(svg("text", { x, y: TOP - 10, "font-size": 11, "text-anchor": i === 4 ? "end" : "middle", fill: "#1a1a1a" }, `${((total * i) / 4 / 1000).toFixed(1)} ms`));
    }
    lanes.forEach((lane, i) => {
      const y = TOP + i * LANE_H;
      const g = svg("g", { class: "traces-lane", "data-lane": lane.name });
      if (ids.has(lane.name)) g.setAttribute("data-node-id", ids.get(lane.name)); // the Graph view's id

      g.appendChild(svg("text", { x: 4, y: y + LANE_H / 2 + 4, "font-size": 12, fill: "#111" }, lane.name));
      g.appendChild(svg("title", {}, `${lane.name} (${lane.calculator})`));
      // The node's lifetime first (behind), then its tasks/spans, then open/process/close on top.
      const order = { node: 0, task: 1, span: 1 };
      const items = [...lane.items].sort((a, b) => (order[a.kind] ?? 2) - (order[b.kind] ?? 2));
      let lastPixel = { kind: "", x: -1 };
      for (const item of items) {
        // Thousands of sub-pixel calls (a long generation) draw as one mark per pixel.
        const x = Math.floor(scale(item.ts));
        if ((item.dur / total) * PLOT_W < 1 && lastPixel.kind === item.kind && lastPixel.x === x) continue;
        lastPixel = { kind: item.kind, x };
        const inset = item.kind === "node" ? 3 : item.kind === "task" || item.kind === "span" ? 16 : 7;
        const bottom = item.kind === "task" || item.kind === "span" ? 3 : inset;
        const rect = svg("rect", {
          class: "traces-bar-" + item.kind,
          x: scale(item.ts),
          y: y + inset,
          width: Math.max(1, (item.dur / total) * PLOT_W),
          height: LANE_H - inset - bottom,
          fill: COLORS[item.kind] || COLORS.process,
        });
        rect.appendChild(svg("title", {}, `${item.name}: ${(item.dur / 1000).toFixed(3)} ms at ${(item.ts / 1000).toFixed(3)} ms`));
        g.appendChild(rect);
      }
      let lastMark = -1;
      for (const ts of lane.packets) {
        const x = Math.floor(scale(ts));
        if (x === lastMark) continue;
        lastMark = x;
        g.appendChild(svg("line", { class: "traces-packet", x1: scale(ts), y1: y + 2, x2: scale(ts), y2: y + 8, stroke: COLORS.packet, "stroke-width": 1.5 }));
      }
      drawing.appendChild(g);
    });
    return { drawing, lanes };
  }

  function legend() {
    const wrap = html("ul", { class: "traces-legend", "aria-label": "legend" });
    for (const [kind, text] of [["open", "open()"], ["process", "process()"], ["close", "close()"], ["task", "spawned task"], ["span", "span"], ["packet", "packet out (mark)"], ["node", "node alive"]]) {
      const item = html("li", { "data-kind": kind });
      const swatch = svg("svg", { width: 14, height: 14, "aria-hidden": "true" });
      swatch.appendChild(svg("rect", { width: 14, height: 14, fill: COLORS[kind] }));
      item.append(swatch, document.createTextNode(" " + text));
      wrap.appendChild(item);
    }
    return wrap;
  }

  async function nodeIds(servable) {
    // The Graph view's node ids by runner name (the names a trace uses), when the graph is known.
    try {
      const graph = await getJSON(`/console/api/graphs/${encodeURIComponent(servable)}`);
      return new Map(graph.nodes.map((node) => [node.name, node.id]));
    } catch (_) {
      return new Map(); // the servable is gone (reloaded away): names only
    }
  }

  async function openTrace(trace) {
    detail.replaceChildren(html("p", {}, `Loading trace ${trace.id}…`));
    let chrome;
    try {
      chrome = await getJSON(`/debug/traces/${encodeURIComponent(trace.id)}`);
    } catch (error) {
      detail.replaceChildren(html("p", {}, `Could not load trace ${trace.id}: ${error.message}`));
      return;
    }
    for (const row of list.querySelectorAll("tr[aria-current]")) row.removeAttribute("aria-current");
    const row = list.querySelector(`tr[data-trace-id="${CSS.escape(trace.id)}"]`);
    if (row) row.setAttribute("aria-current", "true");
    const { drawing, lanes } = timeline(chrome, await nodeIds(trace.servable));
    const heading = html("h3", { "data-open-trace": trace.id }, `Trace ${trace.id}: ${trace.route || trace.endpoint || ""} on ${trace.servable || ""}`);
    const touched = lanes.filter((lane) => lane.items.length || lane.packets.length).map((lane) => lane.name);
    const onGraph = html("button", { type: "button", class: "traces-show-on-graph" }, "Show on graph");
    onGraph.addEventListener("click", () => showOnGraph(trace.servable, touched));
    const scroller = html("div", { class: "traces-scroll" });
    scroller.appendChild(drawing);
    detail.replaceChildren(heading, onGraph, legend(), scroller);
  }

  function showOnGraph(servable, names) {
    const graph = window.ovserveGraph;
    if (!graph) return;
    graph.highlight(names);
    const shown = graph.current();
    if (servable && (!shown || shown.servable !== servable)) graph.load(servable);
    window.location.hash = "#graph";
  }

  window.ovserveTraces = { refresh: refreshList };

  function start() {
    if (!build() || !window.ovserveConsole) return;
    refreshList();
    // Every time the view is shown (app.js's onViewChange), and for each #traces/<id> opened.
    window.addEventListener("hashchange", () => window.location.hash.startsWith("#traces") && refreshList());
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
