// The Chat view: a streamed chat for text-generation servables (TTFT, tokens/s and usage under
// each answer), small forms for embeddings and rerank servables, and for image and audio ones a
// line naming the routes that serve them. Model and user text is only ever inserted as text nodes.
"use strict";

(() => {
  const con = window.ovserveConsole;
  const $ = (id) => document.getElementById(id);
  const panels = { text_generation: $("chat-llm"), embeddings: $("embed-form"), rerank: $("rerank-form") };
  // Image and audio servables get no form: the line says where their API is and which doc shows it.
  const ROUTES = {
    image_generation: "POST /v3/images/generations and /v3/images/edits (see docs/images.md)",
    speech_to_text: "POST /v3/audio/transcriptions and /v3/audio/translations (see docs/audio.md)",
    text_to_speech: "POST /v3/audio/speech (see docs/speech.md)",
  };
  const NONE = $("chat-none").textContent;
  const log = $("chat-log");
  const input = $("chat-input");
  const sendButton = $("chat-send");
  const stopButton = $("chat-stop");
  let history = []; // the conversation's messages so far, without the system prompt
  let running = null; // the AbortController of the answer being streamed

  let shownName = null;

  function show(info) {
    const kind = info ? info.kind : null;
    for (const [name, panel] of Object.entries(panels)) panel.hidden = name !== kind;
    const none = $("chat-none");
    none.hidden = !info || kind in panels;
    none.textContent = ROUTES[kind] ? `This servable is served at ${ROUTES[kind]}: no form here.` : NONE;
    if (info && info.name === shownName) return; // only its state changed: keep the conversation
    shownName = info ? info.name : null;
    newChat();
  }

  function newChat() {
    if (running) running.abort();
    history = [];
    log.replaceChildren();
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function entry(role, text) {
    const item = element("li", "msg " + role);
    const body = element("p", "text", text);
    item.append(element("p", "who", role === "user" ? "You" : "Assistant"), body);
    log.append(item);
    return { item, body };
  }

  // Server-sent events from a fetch body: yields each event's data (strings), in order.
  async function* events(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) yield data;
      }
    }
  }

  function figures(t0, tFirst, tEnd, usage, finish) {
    const parts = [];
    if (tFirst !== null) parts.push(`TTFT ${Math.round(tFirst - t0)} ms`);
    if (usage) {
      const n = usage.completion_tokens;
      // over the whole answer, TTFT included: a small model's tokens arrive in bursts, so the
      // time after the first token alone can be too short to divide by
      parts.push(`${((n * 1000) / Math.max(tEnd - t0, 1)).toFixed(1)} tokens/s`);
      parts.push(`usage: ${usage.prompt_tokens} prompt + ${n} completion = ${usage.total_tokens} tokens`);
    }
    if (finish) parts.push(`finish: ${finish}`);
    return parts.join(" · ");
  }

  // The figures, then the trace id as a link to its timeline in the Traces view.
  function showFigures(stats, text, traceId) {
    stats.textContent = text;
    if (!traceId) return;
    const link = element("a", "", `trace ${traceId}`);
    link.href = "#traces/" + encodeURIComponent(traceId);
    stats.append(" · ", link);
  }

  async function send(text) {
    const model = con.servable();
    const system = $("chat-system").value.trim();
    const user = { role: "user", content: text };
    const messages = [...(system ? [{ role: "system", content: system }] : []), ...history, user];
    const body = {
      model,
      messages,
      stream: true,
      stream_options: { include_usage: true },
      temperature: Number($("chat-temperature").value),
      max_tokens: Number($("chat-max-tokens").value),
    };
    entry("user", text);
    const answer = entry("assistant", "");
    const textNode = document.createTextNode("");
    answer.body.append(textNode);
    const stats = element("p", "stats", "…");
    answer.item.append(stats);
    running = new AbortController();
    sendButton.disabled = true;
    stopButton.disabled = false;
    const t0 = performance.now();
    let tFirst = null;
    let usage = null;
    let finish = null;
    let traceId = null;
    try {
      const response = await con.api("/v3/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Ovserve-Trace": "1" },
        body: JSON.stringify(body),
        signal: running.signal,
      });
      if (!response.ok) throw new Error(await con.errorText(response));
      traceId = response.headers.get("X-Ovserve-Trace-Id");
      for await (const data of events(response)) {
        if (data === "[DONE]") break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "the stream failed");
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices && chunk.choices[0];
        if (!choice) continue;
        const delta = choice.delta && choice.delta.content;
        if (delta) {
          if (tFirst === null) tFirst = performance.now();
          textNode.appendData(delta);
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      showFigures(stats, figures(t0, tFirst, performance.now(), usage, finish), traceId);
      history.push(user, { role: "assistant", content: textNode.data });
    } catch (exc) {
      const stopped = exc.name === "AbortError";
      stats.textContent = stopped ? "stopped" : exc.message;
      stats.classList.add(stopped ? "muted" : "error");
    } finally {
      running = null;
      sendButton.disabled = false;
      stopButton.disabled = true;
    }
  }

  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || running) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("chat-form").requestSubmit();
    }
  });
  stopButton.addEventListener("click", () => running && running.abort());
  $("chat-clear").addEventListener("click", newChat);

  async function post(path, body) {
    const response = await con.api(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: con.servable(), ...body }),
    });
    if (!response.ok) throw new Error(await con.errorText(response));
    return response.json();
  }

  $("embed-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = $("embed-result");
    out.classList.remove("error");
    out.textContent = "…";
    try {
      const reply = await post("/v3/embeddings", { input: $("embed-input").value });
      const vector = reply.data[0].embedding;
      const first = vector.slice(0, 8).map((x) => x.toFixed(4));
      out.textContent = `dimension ${vector.length}; first values: ${first.join(", ")}`;
    } catch (exc) {
      out.textContent = exc.message;
      out.classList.add("error");
    }
  });

  $("rerank-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const table = $("rerank-result");
    const rows = table.querySelector("tbody");
    const documents = $("rerank-documents")
      .value.split("\n")
      .map((line) => line.trim())
      .filter(Boolean);
    rows.replaceChildren();
    try {
      const reply = await post("/v3/rerank", { query: $("rerank-query").value, documents });
      const results = [...reply.results].sort((a, b) => b.relevance_score - a.relevance_score);
      for (const result of results) {
        const row = document.createElement("tr");
        row.append(element("td", "number", result.relevance_score.toFixed(4)), element("td", "", documents[result.index]));
        rows.append(row);
      }
      table.hidden = false;
      con.setStatus("");
    } catch (exc) {
      table.hidden = true;
      con.setStatus("Rerank: " + exc.message, true);
    }
  });

  con.onServableChange((_, info) => show(info));
})();
