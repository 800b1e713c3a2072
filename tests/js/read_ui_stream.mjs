// Reads UI message streams the way useChat does, with the AI SDK's own code.
//
// stdin:  {"streams": ["<base64 of the response body>", ...], "piece": 7, "client": "ai"}
// stdout: [{"chunks": [...], "message": {...} | null, "error": "..." | null,
//           "chat": {"status", "error", "messages", "finish", "toolCalls"}}, ...]
//
// Each body goes through DefaultChatTransport.sendMessages() (a fake fetch returns it
// in pieces of `piece` bytes, so events split across reads are exercised): that runs
// parseJsonEventStream with uiMessageChunkSchema. The validated chunks are kept, and
// readUIMessageStream({terminateOnError: true}) (the processUIMessageStream state
// machine behind useChat) builds the assistant message from them. Then the same body
// goes through AbstractChat, the class useChat wraps, driven by sendMessage({text}):
// "chat" is what the hook would hand a component (status, error, messages) and what
// onFinish and onToolCall were called with.
// `client` picks the package: "ai" (6.x), or the aliases "ai5" and "ai7" (see package.json).

function bodyStream(bytes, piece) {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.subarray(offset, offset + piece));
      offset += piece;
    },
  });
}

function transportFor(DefaultChatTransport, bytes, piece) {
  return new DefaultChatTransport({
    api: "http://llmsse.test/api/chat",
    fetch: async () =>
      new Response(bodyStream(bytes, piece), {
        headers: {
          "content-type": "text/event-stream",
          "x-vercel-ai-ui-message-stream": "v1",
        },
      }),
  });
}

// The state a framework binding keeps for AbstractChat (React's is a useSyncExternalStore).
class PlainChatState {
  constructor() {
    this.messages = [];
    this.status = "ready";
    this.error = undefined;
  }
  pushMessage(message) {
    this.messages = [...this.messages, message];
  }
  popMessage() {
    this.messages = this.messages.slice(0, -1);
  }
  replaceMessage(index, message) {
    this.messages = this.messages.map((m, i) => (i === index ? message : m));
  }
  snapshot(value) {
    return structuredClone(value);
  }
}

async function chatWith(ai, bytes, piece) {
  const outcome = { finish: null, toolCalls: [] };
  const chat = new (class extends ai.AbstractChat {})({
    id: "chat-1",
    state: new PlainChatState(),
    transport: transportFor(ai.DefaultChatTransport, bytes, piece),
    onToolCall: ({ toolCall }) => {
      outcome.toolCalls.push({ toolName: toolCall.toolName, toolCallId: toolCall.toolCallId, input: toolCall.input });
    },
    onFinish: ({ isError, isAbort, finishReason }) => {
      outcome.finish = { isError, isAbort, finishReason: finishReason ?? null };
    },
  });
  await chat.sendMessage({ text: "Hi" });
  return {
    status: chat.status,
    error: chat.error ? String(chat.error.message) : null,
    messages: chat.messages,
    ...outcome,
  };
}

async function read(ai, bytes, piece) {
  const transport = transportFor(ai.DefaultChatTransport, bytes, piece);
  const result = { chunks: [], message: null, error: null, chat: null };
  let stream;
  try {
    stream = await transport.sendMessages({
      chatId: "chat-1",
      messages: [{ id: "u1", role: "user", parts: [{ type: "text", text: "Hi" }] }],
      trigger: "submit-message",
      messageId: undefined,
      abortSignal: undefined,
    });
  } catch (error) {
    result.error = String(error?.message ?? error);
    return result;
  }
  const [forChunks, forMessage] = stream.tee();
  const collect = (async () => {
    const reader = forChunks.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        result.chunks.push(value);
      }
    } catch {
      // reported through the message reader below
    }
  })();
  const build = (async () => {
    try {
      for await (const message of ai.readUIMessageStream({
        stream: forMessage,
        terminateOnError: true,
      })) {
        result.message = message;
      }
    } catch (error) {
      result.error = `${error?.name ?? "Error"}: ${error?.message ?? error}`;
    }
  })();
  await Promise.all([collect, build]);
  result.chat = await chatWith(ai, bytes, piece);
  return result;
}

let input = "";
for await (const text of process.stdin.setEncoding("utf8")) input += text;
const { streams, piece = 7, client = "ai" } = JSON.parse(input);
const ai = await import(client);
const results = [];
for (const encoded of streams) {
  results.push(await read(ai, new Uint8Array(Buffer.from(encoded, "base64")), piece));
}
process.stdout.write(JSON.stringify(results));
