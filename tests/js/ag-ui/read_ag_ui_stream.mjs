// What AG-UI's own client makes of response bodies: for each body (base64, from stdin
// as {"streams": [...], "piece": n}), an HttpAgent whose fetch returns that body, fed
// `piece` bytes at a time, runs once. HttpAgent parses the SSE, validates every event
// with @ag-ui/core's schemas and applies verifyEvents (PROTOCOLS.md §5.3).
// Prints [{events, messages, error}] as JSON.
import { HttpAgent } from "@ag-ui/client";

function respond(bytes, piece) {
  const body = new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += piece) {
        controller.enqueue(bytes.subarray(i, i + piece));
      }
      controller.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

async function read(data, piece) {
  const bytes = new Uint8Array(Buffer.from(data, "base64"));
  const agent = new HttpAgent({
    url: "http://llmsse.test/api/agent",
    threadId: "thread_js",
    fetch: async () => respond(bytes, piece),
  });
  agent.addMessage({ id: "u1", role: "user", content: "Hi" });
  const events = [];
  let error = null;
  try {
    await agent.runAgent(
      {},
      {
        onEvent({ event }) {
          events.push(event);
        },
        onRunFailed({ error: failure }) {
          error = String(failure);
        },
      },
    );
  } catch (failure) {
    error = error ?? String(failure);
  }
  return { events, messages: agent.messages.slice(1), error };
}

let input = "";
for await (const part of process.stdin) input += part;
const request = JSON.parse(input);
const results = [];
for (const stream of request.streams) results.push(await read(stream, request.piece ?? 7));
process.stdout.write(JSON.stringify(results));
