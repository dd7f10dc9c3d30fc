/**
 * @jest-environment node
 *
 * The client's utils/* against a real server (uvicorn + PostgreSQL + Redis + a local fake of
 * WeChat's jscode2session), started by clients/tests/test_miniprogram.py, which sets:
 *   CS_BASE_URL, CS_AGENT_USERNAME, CS_AGENT_PASSWORD, CS_GROUPS (core | workflow | voice),
 *   CS_VOICE_FILE (an mp3 for the voice group).
 * Run it through pytest (`make test` does), not on its own.
 */
const path = require("path");
const { createNodeWx } = require("../helpers/wx-node");

const BASE = process.env.CS_BASE_URL;
const GROUPS = (process.env.CS_GROUPS || "core").split(",");
const RUN = Date.now().toString(36);
const ROOT = path.join(__dirname, "../..");

if (!BASE) {
  throw new Error("CS_BASE_URL is not set: run this through `pytest clients/tests/test_miniprogram.py`");
}

function group(name) {
  return GROUPS.includes(name) ? describe : describe.skip;
}

let openidSeq = 0;

// A fresh mini-program: new module instances (no shared token/refresh state), new storage, and
// a new WeChat user (the fake jscode2session maps "ok-<openid>" to that openid).
function freshClient() {
  jest.resetModules();
  openidSeq += 1;
  const openid = "mp-" + RUN + "-" + openidSeq;
  const shim = createNodeWx({ nextCode: () => "ok-" + openid });
  global.wx = shim.wx;
  require(path.join(ROOT, "utils/config")).setConfig({ baseUrl: BASE, loginPath: "/api/auth/wechat/" });
  return {
    shim,
    openid,
    api: require(path.join(ROOT, "utils/api")),
    messages: require(path.join(ROOT, "utils/messages")),
    conversation: require(path.join(ROOT, "utils/conversation")),
    ChatSocket: require(path.join(ROOT, "utils/socket")).ChatSocket,
  };
}

async function waitFor(what, predicate, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("timed out waiting for " + what);
}

// The agent side is not the code under test: plain fetch.
let agentAccess = null;
async function agent(method, urlPath, body) {
  if (!agentAccess) {
    const response = await fetch(BASE + "/api/auth/token/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: process.env.CS_AGENT_USERNAME, password: process.env.CS_AGENT_PASSWORD }),
    });
    if (response.status !== 200) throw new Error("agent login failed: " + response.status);
    agentAccess = (await response.json()).access;
  }
  const response = await fetch(BASE + urlPath, {
    method,
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + agentAccess },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

// Login, conversation, a store fed by the socket and by catch-up, like the chat page does.
async function startChat(client, socketOptions) {
  await client.api.login();
  const conversation = await client.api.post("/api/conversations/");
  const store = new client.messages.MessageStore();
  const audioHistory = {};
  const events = [];
  const feed = (raw) => {
    const outcome = store.upsert(raw);
    const message = raw && store.find(Number(raw.id));
    if (message && outcome !== "ignored") {
      (audioHistory[message.id] = audioHistory[message.id] || []).push(message.audio.status);
    }
    return outcome;
  };
  const catchUp = async () => {
    let url = "/api/conversations/" + conversation.id + "/messages/?after=" + store.lastId;
    while (url) {
      const page = await client.api.get(url);
      page.results.forEach(feed);
      url = page.next;
    }
  };
  await catchUp();
  const socket = new client.ChatSocket(
    Object.assign(
      {
        conversationId: conversation.id,
        backoffBaseMs: 200,
        backoffMaxMs: 1000,
        onEvent: (event) => {
          events.push(event);
          if (event.message) feed(event.message);
        },
        onCatchUp: () => {
          catchUp().catch(() => {});
        },
      },
      socketOptions || {}
    )
  );
  return { conversation, store, socket, events, audioHistory, feed, catchUp };
}

group("core")("the client against the real API", () => {
  const chats = [];
  afterEach(() => {
    chats.splice(0).forEach((chat) => chat.socket.stop());
  });

  test("wx.login() -> /api/auth/wechat/ -> JWT; the server's shapes fit the client's normaliser", async () => {
    const client = freshClient();
    const user = await client.api.login();
    expect(user).toMatchObject({ role: "customer" });
    const me = await client.api.get("/api/me/");
    expect(me.id).toBe(user.id);
    const conversation = await client.api.post("/api/conversations/");
    expect(Number.isInteger(conversation.id)).toBe(true);
    const view = client.conversation.conversationView(conversation);
    expect(view.statusText).toBe("智能客服为您服务");
    const body = await client.api.post("/api/conversations/" + conversation.id + "/messages/", {
      text: "你好，请问退款多久到账？",
      client_id: "it-" + RUN,
    });
    const mine = client.messages.normalizeMessage(body.message);
    expect(mine).toMatchObject({ mine: true, sender: "customer", text: "你好，请问退款多久到账？", clientId: "it-" + RUN, kind: "text" });
    expect(body.bot_reply).not.toBeNull();
    const reply = client.messages.normalizeMessage(body.bot_reply);
    expect(reply).toMatchObject({ mine: false, sender: "bot" });
    expect(reply.text).toMatch(/退款/);
    expect(["pending", "ready", "failed"]).toContain(reply.audio.status);
    // The same client_id again: stored once (the retry after a dropped connection).
    const again = await client.api.post("/api/conversations/" + conversation.id + "/messages/", {
      text: "你好，请问退款多久到账？",
      client_id: "it-" + RUN,
    });
    expect(again.message.id).toBe(body.message.id);
  });

  test("live events on the socket; audio status only moves forward; the clip URL downloads", async () => {
    const client = freshClient();
    const chat = await startChat(client);
    chats.push(chat);
    chat.socket.start();
    await waitFor("socket online", () => chat.socket.state === "online");
    const reply = await agent("POST", "/api/agent/conversations/" + chat.conversation.id + "/reply/", {
      text: "您好，我是客服小李，请问有什么可以帮您？",
    });
    expect(reply.status).toBe(201);
    await waitFor("the agent's message on the socket", () => chat.store.find(reply.body.id));
    await waitFor(
      "the reply's audio (ready or failed)",
      () => ["ready", "failed"].includes(chat.store.find(reply.body.id).audio.status),
      150000
    );
    for (const [id, statuses] of Object.entries(chat.audioHistory)) {
      const ranks = statuses.map((status) => client.messages.AUDIO_RANK[status]);
      expect({ id, ranks }).toEqual({ id, ranks: ranks.slice().sort((a, b) => a - b) });
    }
    const message = chat.store.find(reply.body.id);
    expect(message.audio.status).toBe("ready");
    expect(message.audio.url.startsWith(BASE + "/")).toBe(true);
    const clip = await fetch(message.audio.url);
    expect(clip.status).toBe(200);
    expect(clip.headers.get("content-type")).toMatch(/^audio\//);
  }, 180000);

  test("a dropped socket reconnects and catches up what was missed, each message exactly once", async () => {
    const client = freshClient();
    const chat = await startChat(client);
    chats.push(chat);
    chat.socket.start();
    await waitFor("socket online", () => chat.socket.state === "online");
    chat.socket.task.ws.terminate(); // the phone lost its connection
    await waitFor("socket offline", () => chat.socket.state !== "online");
    const sent = [];
    for (const text of ["第一条：正在为您查询。", "第二条：已经查到了。"]) {
      const reply = await agent("POST", "/api/agent/conversations/" + chat.conversation.id + "/reply/", { text });
      expect(reply.status).toBe(201);
      sent.push(reply.body.id);
    }
    await waitFor("socket online again", () => chat.socket.state === "online", 20000);
    await waitFor("caught up", () => sent.every((id) => chat.store.find(id)));
    const ids = chat.store.items.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(ids.slice().sort((a, b) => a - b));
  }, 60000);

  test("an expired access token: refreshed before the handshake, socket online with the new one", async () => {
    const client = freshClient();
    const chat = await startChat(client);
    chats.push(chat);
    const before = client.api.getTokens();
    client.api.saveTokens({ access: "expired.garbage.token", refresh: before.refresh });
    chat.socket.start();
    await waitFor("socket online", () => chat.socket.state === "online");
    const refreshes = client.shim.log.requests.filter((r) => r.url.endsWith("/api/auth/token/refresh/"));
    expect(refreshes).toHaveLength(1);
    const after = client.api.getTokens();
    expect(after.access).not.toBe("expired.garbage.token");
    expect(after.refresh).not.toBe(before.refresh); // rotated
  });

  test("parallel 401s share one refresh; the rotated-out refresh token is refused by the server", async () => {
    const client = freshClient();
    await client.api.login();
    const conversation = await client.api.post("/api/conversations/");
    const before = client.api.getTokens();
    client.api.saveTokens({ access: "expired.garbage.token", refresh: before.refresh });
    const results = await Promise.all([
      client.api.get("/api/me/"),
      client.api.get("/api/conversations/" + conversation.id + "/"),
      client.api.get("/api/conversations/" + conversation.id + "/messages/?after=0"),
    ]);
    expect(results[1].id).toBe(conversation.id);
    const refreshes = client.shim.log.requests.filter((r) => r.url.endsWith("/api/auth/token/refresh/"));
    expect(refreshes).toHaveLength(1);
    const reuse = await fetch(BASE + "/api/auth/token/refresh/", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh: before.refresh }),
    });
    expect(reuse.status).toBe(401);
  });

  test("401 after the refresh token was revoked: tokens cleared, auth lost, wx.login again works", async () => {
    const client = freshClient();
    await client.api.login();
    const tokens = client.api.getTokens();
    const logout = await fetch(BASE + "/api/auth/logout/", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + tokens.access },
      body: JSON.stringify({ refresh: tokens.refresh }),
    });
    expect(logout.status).toBe(204);
    client.api.saveTokens({ access: "expired.garbage.token", refresh: tokens.refresh });
    let lost = 0;
    client.api.onAuthLost(() => {
      lost += 1;
    });
    const error = await client.api.get("/api/me/").catch((e) => e);
    expect(error.code).toBe("auth_lost");
    expect(error.message).toBe("登录已过期，请重新登录");
    expect(lost).toBe(1);
    expect(client.api.getTokens()).toBeNull();
    await client.api.login();
    await expect(client.api.get("/api/me/")).resolves.toMatchObject({ role: "customer" });
  });

  test("429: the server's Chinese message, Retry-After honoured without asking the server again", async () => {
    const client = freshClient();
    await client.api.login();
    const conversation = await client.api.post("/api/conversations/");
    const url = "/api/conversations/" + conversation.id + "/messages/";
    let limited = null;
    for (let i = 0; i < 40 && !limited; i += 1) {
      limited = await client.api.post(url, { text: "测试消息 " + i, client_id: "rl-" + RUN + "-" + i }).then(
        () => null,
        (error) => error
      );
    }
    expect(limited).not.toBeNull();
    expect(limited.status).toBe(429);
    expect(limited.message).toMatch(/[\u4e00-\u9fff]/);
    expect(limited.retryAfter).toBeGreaterThan(0);
    const asked = client.shim.log.requests.length;
    const local = await client.api.post(url, { text: "再试一次" }).catch((e) => e);
    expect(local.code).toBe("rate_limited");
    expect(local.message).toMatch(/^操作太频繁，请 \d+ 秒后再试$/);
    expect(client.shim.log.requests.length).toBe(asked);
  });

  test("server down: a Chinese network error, and a socket that keeps retrying without throwing", async () => {
    const client = freshClient();
    await client.api.login();
    const conversation = await client.api.post("/api/conversations/");
    require(path.join(ROOT, "utils/config")).setConfig({ baseUrl: "http://127.0.0.1:9" }); // nothing listens
    const error = await client.api.get("/api/me/").catch((e) => e);
    expect(error.code).toBe("network");
    expect(error.message).toBe("网络连接失败，请检查网络后重试");
    const states = [];
    const socket = new client.ChatSocket({
      conversationId: conversation.id,
      backoffBaseMs: 100,
      backoffMaxMs: 200,
      onStateChange: (state) => states.push(state),
    });
    socket.start();
    await waitFor("two failed attempts", () => states.filter((s) => s === "offline").length >= 2, 10000);
    socket.stop();
    expect(socket.state).toBe("closed");
  });

  test("a garbage frame makes the server close the socket; the client reconnects", async () => {
    const client = freshClient();
    const chat = await startChat(client);
    chats.push(chat);
    const codes = [];
    chat.socket.onStateChange = (state, detail) => codes.push(detail.code);
    chat.socket.start();
    await waitFor("socket online", () => chat.socket.state === "online");
    chat.socket.task.ws.send("this is not json");
    await waitFor("closed by the server", () => codes.includes(4400));
    await waitFor("online again", () => chat.socket.state === "online", 10000);
  });
});

group("workflow")("转人工, queue, serving agent and CSAT (#9)", () => {
  test("handoff puts the customer in the queue; claim shows the agent; resolve asks for CSAT once", async () => {
    const client = freshClient();
    const chat = await startChat(client);
    chat.socket.start();
    try {
      await waitFor("socket online", () => chat.socket.state === "online");
      const waiting = await client.api.post("/api/conversations/" + chat.conversation.id + "/handoff/");
      expect(waiting.status).toBe("waiting");
      expect(Number.isInteger(waiting.queue_position)).toBe(true);
      const view = client.conversation.conversationView(waiting);
      expect(view.statusText).toMatch(/^正在为您转接人工客服/);
      const claimed = await agent("POST", "/api/agent/conversations/" + chat.conversation.id + "/claim/");
      expect(claimed.status).toBe(200);
      await waitFor("conversation.updated with the agent", () =>
        chat.events.some((e) => e.type === "conversation.updated" && e.conversation && e.conversation.assigned_agent)
      );
      const updated = chat.events.filter((e) => e.type === "conversation.updated").pop().conversation;
      expect(client.conversation.conversationView(updated).statusText).toMatch(/^客服 .+ 正在为您服务$/);
      expect(typeof updated.assigned_agent.display_name).toBe("string");
      expect(updated.assigned_agent.username).toBeUndefined();
      const resolved = await agent("POST", "/api/agent/conversations/" + chat.conversation.id + "/resolve/");
      expect(resolved.status).toBe(200);
      await waitFor("CSAT asked", () =>
        chat.events.some(
          (e) => e.type === "csat.requested" || (e.type === "conversation.updated" && e.conversation.status === "resolved")
        )
      );
      await client.api.post("/api/conversations/" + chat.conversation.id + "/csat/", { rating: 5, comment: "很好" });
      const twice = await client.api
        .post("/api/conversations/" + chat.conversation.id + "/csat/", { rating: 4, comment: "" })
        .catch((e) => e);
      expect(twice.status).toBeGreaterThanOrEqual(400);
      expect(twice.status).toBeLessThan(500);
      expect(twice.message).toMatch(/[\u4e00-\u9fff]/);
      const outOfRange = await client.api
        .post("/api/conversations/" + chat.conversation.id + "/csat/", { rating: 9 })
        .catch((e) => e);
      expect(outOfRange.status).toBe(400);
    } finally {
      chat.socket.stop();
    }
  }, 60000);
});

group("voice")("voice messages (#10)", () => {
  test("a hold-to-talk mp3 is uploaded as a voice message and comes back with kind=voice", async () => {
    const client = freshClient();
    const chat = await startChat(client);
    chat.socket.start();
    try {
      await waitFor("socket online", () => chat.socket.state === "online");
      const body = await client.api.upload("/api/conversations/" + chat.conversation.id + "/messages/", {
        filePath: process.env.CS_VOICE_FILE,
        name: "audio",
        formData: { client_id: "voice-" + RUN, format: "mp3" },
      });
      const message = client.messages.normalizeMessage(body.message);
      expect(message).toMatchObject({ kind: "voice", mine: true, clientId: "voice-" + RUN });
      expect(message.voice.durationMs).toBeGreaterThan(0);
      expect(message.voice.url.startsWith(BASE + "/")).toBe(true);
      chat.feed(body.message);
      await waitFor(
        "the transcript",
        () => {
          const stored = chat.store.find(message.id);
          return stored && stored.transcript && stored.transcript.status !== "pending";
        },
        120000
      );
    } finally {
      chat.socket.stop();
    }
  }, 150000);
});
