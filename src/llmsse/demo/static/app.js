// The llmsse demo page: POST the conversation with fetch, read the "text" event stream,
// render it as it arrives. No framework, no build step.
"use strict";

// Exposed for the browser tests (and for curious people with a console open).
const demo = (window.llmsseDemo = { mutations: 0, turns: [] });

const log = document.getElementById("log");
const form = document.getElementById("ask");
const prompt = document.getElementById("prompt");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const history = [];
let controller = null;

new MutationObserver((records) => { demo.mutations += records.length; })
  .observe(log, { childList: true, subtree: true, characterData: true });

// An event-stream parser (WHATWG HTML "Parsing an event stream"): lines end with CRLF, LF
// or CR; "data" lines are joined with "\n"; comments (": ping") are skipped. id/retry only
// matter to EventSource's reconnection, which a fetch reader does not do.
function eventStreamParser(onEvent) {
  let buffer = "";
  let data = [];
  let type = "";
  function line(text) {
    if (text === "") {
      if (data.length) onEvent(type || "message", data.join("\n"));
      data = [];
      type = "";
      return;
    }
    if (text[0] === ":") return;
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value[0] === " ") value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") type = value;
  }
  return function feed(chunk) {
    buffer += chunk;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer[i];
      if (c !== "\n" && c !== "\r") continue;
      // A CR at the very end may be the first half of a CRLF split across reads.
      if (c === "\r" && i === buffer.length - 1) break;
      line(buffer.slice(start, i));
      if (c === "\r" && buffer[i + 1] === "\n") i++;
      start = i + 1;
    }
    buffer = buffer.slice(start);
  };
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Inline `code` spans, everything else as text (never innerHTML: the model's text is data).
function inline(parent, text) {
  text.split("`").forEach((part, i) => {
    if (!part) return;
    parent.appendChild(i % 2 ? el("code", "", part) : document.createTextNode(part));
  });
  return parent;
}

// Just enough Markdown for a chat: ``` fenced code blocks and paragraphs.
function renderAnswer(target, text) {
  const nodes = [];
  let paragraph = [];
  let code = null;
  const flush = () => {
    if (paragraph.length) nodes.push(inline(el("p"), paragraph.join("\n")));
    paragraph = [];
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("```")) {
      if (code === null) {
        flush();
        code = [];
      } else {
        nodes.push(codeBlock(code));
        code = null;
      }
    } else if (code !== null) {
      code.push(line);
    } else if (line === "") {
      flush();
    } else {
      paragraph.push(line);
    }
  }
  if (code !== null) nodes.push(codeBlock(code)); // still streaming: show it open
  flush();
  target.replaceChildren(...nodes);
}

function codeBlock(lines) {
  const pre = el("pre");
  pre.appendChild(el("code", "", lines.join("\n")));
  return pre;
}

function addMessage(role) {
  const node = el("div", `msg ${role}`);
  log.appendChild(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

function setBusy(busy) {
  sendButton.disabled = busy;
  stopButton.disabled = !busy;
}

async function ask(question) {
  history.push({ role: "user", content: question });
  addMessage("user").textContent = question;
  const bubble = addMessage("assistant");
  const turn = { question, text: "", reasoning: "", toolCalls: [], refusal: "", events: 0,
    done: null, error: null, stopped: false, finished: false };
  demo.turns.push(turn);

  const answer = el("div", "answer streaming");
  let reasoningBox = null;
  bubble.appendChild(answer);

  const show = {
    message(data) {
      turn.text += data;
      renderAnswer(answer, turn.text);
    },
    reasoning(data) {
      if (!reasoningBox) {
        const details = el("details", "reasoning");
        details.open = true;
        details.appendChild(el("summary", "", "Reasoning"));
        reasoningBox = details.appendChild(el("div"));
        bubble.insertBefore(details, answer);
      }
      turn.reasoning += data;
      reasoningBox.textContent = turn.reasoning;
    },
    refusal(data) {
      turn.refusal += data;
      let box = bubble.querySelector(".refusal");
      if (!box) box = bubble.appendChild(el("div", "refusal"));
      box.textContent = turn.refusal;
    },
    tool_call(data) {
      const call = JSON.parse(data);
      turn.toolCalls.push(call);
      const card = el("div", "tool-call");
      card.appendChild(el("strong", "", `Tool call: ${call.name}`));
      let args = call.arguments;
      try { args = JSON.stringify(JSON.parse(args), null, 2); } catch (e) { /* as sent */ }
      card.appendChild(el("pre", "", args));
      bubble.appendChild(card);
    },
    done(data) {
      turn.done = JSON.parse(data);
      const usage = turn.done.usage;
      const parts = [`finish_reason: ${turn.done.finish_reason}`];
      if (usage) parts.push(`${usage.completion_tokens} completion tokens`);
      bubble.appendChild(el("div", "meta", parts.join(" · ")));
    },
    error(data) {
      turn.error = JSON.parse(data).error;
      bubble.appendChild(el("div", "error", `⚠ ${turn.error.message}`));
    },
  };

  controller = new AbortController();
  setBusy(true);
  try {
    const response = await fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ messages: history }),
      signal: controller.signal,
    });
    if (!response.ok) {
      const detail = (await response.text()).slice(0, 200);
      throw new Error(`The server answered HTTP ${response.status}: ${detail}`);
    }
    const feed = eventStreamParser((type, data) => {
      turn.events += 1;
      (show[type] || (() => {}))(data);
      bubble.scrollIntoView({ block: "end" });
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      feed(value);
    }
    if (!turn.done && !turn.error) {
      throw new Error("The stream ended before the answer was complete.");
    }
  } catch (err) {
    if (err.name === "AbortError") {
      turn.stopped = true;
      bubble.appendChild(el("div", "meta", "Stopped. The request was aborted, so the server closes the model's stream."));
    } else {
      turn.error = turn.error || { type: "client", message: err.message };
      bubble.appendChild(el("div", "error", `⚠ ${err.message}`));
    }
  } finally {
    answer.classList.remove("streaming");
    if (turn.text) history.push({ role: "assistant", content: turn.text });
    turn.finished = true;
    controller = null;
    setBusy(false);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = prompt.value.trim();
  if (!question || controller) return;
  prompt.value = "";
  ask(question);
});

prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});

stopButton.addEventListener("click", () => {
  if (controller) controller.abort();
});

for (const chip of document.querySelectorAll(".chip")) {
  chip.addEventListener("click", () => {
    prompt.value = chip.textContent;
    form.requestSubmit();
  });
}

fetch("/api/stats").then((r) => r.json()).then((stats) => {
  document.getElementById("mode").textContent =
    stats.mode === "offline" ? "Offline fake model." : `Model: ${stats.model}.`;
}).catch(() => {});
