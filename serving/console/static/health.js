// The Health view: each servable's state and engine figures, and the server's, from
// /console/api/servables and /metrics (Prometheus text, parsed here), every 2 s while shown.
"use strict";

(() => {
  const con = window.ovserveConsole;
  const $ = (id) => document.getElementById(id);
  const PERIOD_MS = 2000;
  let timer = null;

  // Prometheus text format -> [{name, labels, value}] (comments and malformed lines skipped).
  function parseMetrics(text) {
    const samples = [];
    const line = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
    const label = /([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (const row of text.split("\n")) {
      const m = row.startsWith("#") ? null : line.exec(row);
      if (!m) continue;
      const labels = {};
      for (const [, key, raw] of (m[2] || "").matchAll(label)) {
        labels[key] = raw.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
      }
      samples.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return samples;
  }

  // The first sample of `name` whose labels include `match`, or null.
  function pick(samples, name, match = {}) {
    const found = samples.find((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
    return found ? found.value : null;
  }

  // Loop lag from its histogram: mean, and the bucket bound 99 % of the ticks stayed under.
  function loopLag(samples) {
    const count = pick(samples, "ovserve_event_loop_lag_seconds_count");
    const sum = pick(samples, "ovserve_event_loop_lag_seconds_sum");
    if (!count) return null;
    const buckets = samples
      .filter((s) => s.name === "ovserve_event_loop_lag_seconds_bucket")
      .map((s) => ({ le: Number(s.labels.le), n: s.value }))
      .sort((a, b) => a.le - b.le);
    const p99 = buckets.find((b) => b.n >= 0.99 * count);
    const ms = (s) => (s * 1000).toFixed(1) + " ms";
    return `mean ${ms(sum / count)}, 99 % under ${p99 && isFinite(p99.le) ? ms(p99.le) : "the largest bucket"}`;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  const show = (value, unit = "") => (value === null ? "–" : `${value}${unit}`);

  function renderServables(servables, samples) {
    const rows = [];
    for (const s of servables) {
      const model = { model: s.name };
      const kv = samples ? pick(samples, "ovserve_kv_cache_usage_ratio", model) : null;
      const row = document.createElement("tr");
      row.dataset.servable = s.name;
      row.append(
        cell(s.name),
        cell(s.kind.replaceAll("_", " ")),
        cell(s.state.toUpperCase() + (s.error ? ": " + s.error : ""), "state " + s.state),
        cell(show(samples && pick(samples, "ovserve_engine_requests_running", model)), "number"),
        cell(show(samples && pick(samples, "ovserve_engine_requests_waiting", model)), "number"),
        cell(kv === null ? "–" : (kv * 100).toFixed(1) + " %", "number"),
      );
      rows.push(row);
    }
    $("health-servables").querySelector("tbody").replaceChildren(...rows);
  }

  function renderServer(samples) {
    const figures = samples
      ? [
          ["HTTP requests in flight", show(pick(samples, "ovserve_http_requests_in_flight"))],
          ["Requests running (admission)", show(pick(samples, "ovserve_admission_requests_running"))],
          ["Requests queued", show(pick(samples, "ovserve_admission_queue_length"))],
          ["Event-loop lag", loopLag(samples) || "–"],
        ]
      : [["Engine and server figures", "start the server with --metrics_enable to see them here"]];
    const items = [];
    for (const [term, value] of figures) {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = term;
      dd.textContent = value;
      items.push(dt, dd);
    }
    $("health-server").replaceChildren(...items);
  }

  async function refresh() {
    try {
      await con.refreshServables();
      let samples = null;
      if (con.server().metrics) {
        const response = await con.api("/metrics");
        if (!response.ok) throw new Error("/metrics: " + (await con.errorText(response)));
        samples = parseMetrics(await response.text());
      }
      renderServables(con.servables(), samples);
      renderServer(samples);
      $("health-updated").textContent = "Updated " + new Date().toLocaleTimeString();
    } catch (exc) {
      con.setStatus("Health: " + exc.message, true);
    }
  }

  function schedule(view) {
    clearInterval(timer);
    timer = null;
    if (view !== "health") return;
    refresh();
    timer = setInterval(() => document.hidden || refresh(), PERIOD_MS);
  }

  window.ovserveHealth = { parseMetrics }; // for tests and the curious
  con.onViewChange(schedule);
})();
