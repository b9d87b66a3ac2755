// The console's shell: views by URL hash, the servable picker, the API key, and the helpers the
// views share (window.ovserveConsole). Text from the server is always set as textContent.
"use strict";

(() => {
  const VIEWS = ["chat", "graph", "traces", "health"];
  const KEY_STORE = "ovserve.apiKey"; // sessionStorage: gone when the tab closes
  const PICK_STORE = "ovserve.servable";
  const picker = document.getElementById("servable");
  const keyField = document.getElementById("api-key");
  const statusLine = document.getElementById("status");
  const servableListeners = [];
  const viewListeners = [];
  let servables = []; // /console/api/servables: [{name, served_names, kind, state, error}]
  let server = { trace: "off", metrics: false };
  let shown = ""; // the picker's options as last built
  let announced = ""; // name/kind/state the views last heard of
  let failed = false; // the status line shows why the list could not be read

  // fetch() with the key the user typed, if any, as a Bearer token.
  function api(path, opts = {}) {
    const headers = new Headers(opts.headers || {});
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers.set("Authorization", "Bearer " + key);
    return fetch(path, { ...opts, headers });
  }

  function setStatus(text, isError = false) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", isError);
  }

  // An error answer's message (OpenAI's {"error": {"message"}} or any JSON), else its status.
  async function errorText(response) {
    try {
      const body = await response.json();
      const message = body && body.error ? body.error.message || body.error : body.message;
      if (message) return `${response.status}: ${message}`;
    } catch (_) {
      // not JSON: the status says enough
    }
    return `${response.status} ${response.statusText}`;
  }

  function view() {
    const name = location.hash.slice(1).split("/")[0];
    return VIEWS.includes(name) ? name : "chat";
  }

  function showView() {
    const current = view();
    for (const name of VIEWS) {
      document.getElementById("view-" + name).hidden = name !== current;
    }
    for (const link of document.querySelectorAll("nav a[data-view]")) {
      if (link.dataset.view === current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    for (const fn of viewListeners) fn(current);
  }

  function servableInfo() {
    const name = picker.value;
    const found = servables.find((s) => s.served_names.includes(name));
    return found ? { name, kind: found.kind, state: found.state, base: found.name } : null;
  }

  function announceServable() {
    sessionStorage.setItem(PICK_STORE, picker.value);
    const picked = servableInfo();
    announced = picked ? picked.name + "/" + picked.kind + "/" + picked.state : "";
    for (const fn of servableListeners) fn(picker.value, picked);
  }

  async function loadServables() {
    let response;
    try {
      response = await api("/console/api/servables");
    } catch (exc) {
      setStatus("The server does not answer: " + exc.message, true);
      failed = true;
      return;
    }
    if (response.status === 401) {
      setStatus("This server needs an API key: enter it above.", true);
      failed = true;
      return;
    }
    if (!response.ok) {
      setStatus("Servables: " + (await errorText(response)), true);
      failed = true;
      return;
    }
    const body = await response.json();
    servables = body.servables;
    server = { trace: body.trace, metrics: body.metrics };
    const options = servables.flatMap((s) => s.served_names.map((name) => [name, `${name} (${s.kind.replaceAll("_", " ")}, ${s.state})`]));
    const signature = JSON.stringify(options);
    if (signature !== shown) {
      // rebuilt only when something changed (the health view refreshes this every 2 s)
      shown = signature;
      const before = picker.value || sessionStorage.getItem(PICK_STORE);
      picker.replaceChildren(...options.map(([value, text]) => new Option(text, value)));
      if (before && options.some(([value]) => value === before)) picker.value = before;
    }
    if (failed || !servables.length) setStatus(servables.length ? "" : "No servables.");
    failed = false;
    const info = servableInfo();
    const now = info ? info.name + "/" + info.kind + "/" + info.state : "";
    if (now !== announced) announceServable();
  }

  window.ovserveConsole = {
    api,
    errorText,
    setStatus,
    view,
    servable: () => picker.value,
    servableInfo,
    servables: () => servables,
    server: () => server,
    refreshServables: loadServables,
    // fn(name, info) now (when one is picked) and on every change
    onServableChange(fn) {
      servableListeners.push(fn);
      if (picker.value) fn(picker.value, servableInfo());
    },
    // fn(viewName) whenever the shown view changes
    onViewChange(fn) {
      viewListeners.push(fn);
    },
  };

  keyField.value = sessionStorage.getItem(KEY_STORE) || "";
  keyField.addEventListener("change", () => {
    const key = keyField.value.trim();
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
    loadServables();
  });
  picker.addEventListener("change", announceServable);
  window.addEventListener("hashchange", showView);
  document.addEventListener("DOMContentLoaded", () => {
    showView();
    loadServables();
  });
})();
