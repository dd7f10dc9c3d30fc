// The chat page rendered by miniprogram-simulate (the official component test tool) on top of
// the fake wx runtime: bubbles, voice playback, sending, 转人工, queue/agent banner, CSAT,
// offline state, and bad input that must never crash the page.
const path = require("path");
const simulate = require("miniprogram-simulate");
const { createFakeWx, fakeJwt, flush, json } = require("../helpers/fake-wx");

const ACCESS = fakeJwt("A");

const PAGE = path.join(__dirname, "../../pages/chat/chat");

let fake;
let server;

function message(id, extra) {
  return Object.assign(
    {
      id,
      conversation_id: 1,
      sender_kind: "bot",
      author: "",
      text: "您好，请问有什么可以帮您？",
      audio_status: "none",
      audio_url: "",
      created_at: "2026-12-03T16:00:00+08:00",
      client_id: null,
      audio: { status: "none", url: null, duration_ms: null, format: null, emotion: null },
    },
    extra || {}
  );
}

function readyAudio(url, ms) {
  return { audio_status: "ready", audio_url: url, audio: { status: "ready", url, duration_ms: ms || 3000, format: "mp3", emotion: "warm" } };
}

// A tiny in-memory platform answering the page's HTTP calls.
function fakeServer() {
  const state = {
    conversation: { id: 1, status: "open", priority: 0, assigned_agent: null, last_message_id: null },
    messages: [
      message(1, { sender_kind: "customer", text: "你好", author: "微信用户" }),
      message(2, readyAudio("/media/audio/old", 2000)),
    ],
    down: false,
    handoff: true,
    postAnswer: null,
  };
  fake.respond = (req) => {
    if (state.down) return "fail";
    const url = req.url.replace("http://127.0.0.1:8000", "");
    if (url === "/api/auth/dev-login/") return json(200, { access: ACCESS, refresh: "R", user: { id: 5 } });
    if (url === "/api/conversations/" && req.method === "POST") return json(200, state.conversation);
    if (url === "/api/conversations/1/") return json(200, state.conversation);
    const list = url.match(/^\/api\/conversations\/1\/messages\/\?after=(\d+)$/);
    if (list) {
      const after = Number(list[1]);
      return json(200, { next: null, previous: null, results: state.messages.filter((m) => m.id > after) });
    }
    if (url === "/api/conversations/1/messages/" && req.method === "POST") {
      if (state.postAnswer) return state.postAnswer(req);
      const mine = message(state.messages.length + 1, { sender_kind: "customer", text: req.data.text, client_id: req.data.client_id });
      const reply = message(state.messages.length + 2, { text: "退款将在三到五个工作日内原路退回。", audio_status: "pending", audio: { status: "pending", url: null } });
      state.messages.push(mine, reply);
      return json(201, { message: mine, bot_reply: reply });
    }
    if (url === "/api/conversations/1/handoff/") {
      if (!state.handoff) return json(404, { error: { code: "not_found", message: "未找到。", fields: {} } });
      state.conversation = Object.assign({}, state.conversation, { status: "waiting", queue_position: 3 });
      return json(200, state.conversation);
    }
    if (url === "/api/conversations/1/csat/") {
      if (state.csatGiven) return json(400, { error: { code: "csat_exists", message: "您已经评价过了。", fields: {} } });
      state.csatGiven = true;
      return json(201, { rating: req.data.rating });
    }
    return json(404, { error: { code: "not_found", message: "未找到。", fields: {} } });
  };
  fake.respondUpload = (req) => {
    const voice = message(state.messages.length + 1, {
      sender_kind: "customer",
      kind: "voice",
      text: "",
      client_id: req.formData.client_id,
      voice: { url: "/media/voice/v1", duration_ms: 2300, format: "mp3" },
      transcript: { status: "pending", text: "", empty: false },
    });
    state.messages.push(voice);
    return json(201, JSON.stringify({ message: voice, bot_reply: null }));
  };
  return state;
}

async function openPage() {
  const id = simulate.load(PAGE);
  const page = simulate.render(id);
  const parent = document.createElement("parent-wrapper");
  page.attach(parent);
  await page.instance.onLoad();
  await flush();
  return page;
}

function rows(page) {
  return page.querySelectorAll(".row");
}

function texts(page, selector) {
  return page.querySelectorAll(selector).map((node) => node.dom.textContent.trim());
}

beforeEach(() => {
  jest.resetModules();
  fake = createFakeWx();
  global.wx = fake.wx;
  server = fakeServer();
});

afterEach(() => {
  jest.useRealTimers();
});

test("renders history as WeChat bubbles: mine on the right, replies with a play chip and duration", async () => {
  const page = await openPage();
  expect(page.data.phase).toBe("ready");
  const all = rows(page);
  expect(all).toHaveLength(2);
  expect(all[0].dom.className).toContain("mine");
  expect(all[1].dom.className).toContain("theirs");
  expect(texts(page, ".bubble.text")).toEqual(["你好", "您好，请问有什么可以帮您？"]);
  expect(texts(page, ".audio-chip")).toEqual(['▶ 播放语音2"']);
  expect(texts(page, ".conversation-status")).toEqual(["智能客服为您服务"]);
  expect(texts(page, ".handoff")).toEqual(["转人工"]);
  // History never plays by itself.
  expect(fake.audioContexts).toHaveLength(0);
  // The socket was opened for this conversation.
  expect(fake.sockets[0].url).toBe("ws://127.0.0.1:8000/ws/chat/1/?token=" + ACCESS);
});

test("tap to play, tap again to stop; one voice at a time", async () => {
  server.messages.push(message(3, Object.assign({ sender_kind: "agent", author: "小王" }, readyAudio("/media/audio/three", 5000))));
  const page = await openPage();
  const chips = page.querySelectorAll(".audio-chip");
  chips[0].dispatchEvent("tap");
  await flush();
  const player = fake.audioContexts[0];
  expect(player.src).toBe("http://127.0.0.1:8000/media/audio/old");
  expect(page.data.playingId).toBe(2);
  expect(texts(page, ".audio-chip")[0]).toContain("■ 停止");
  page.querySelectorAll(".audio-chip")[1].dispatchEvent("tap");
  await flush();
  expect(fake.audioContexts).toHaveLength(1); // one shared context
  expect(player.calls.map((c) => c[0])).toEqual(["play", "stop", "play"]);
  expect(page.data.playingId).toBe(3);
  page.querySelectorAll(".audio-chip")[1].dispatchEvent("tap");
  await flush();
  expect(page.data.playingId).toBeNull();
  expect(texts(page, ".sender")).toEqual(["智能客服", "小王"]);
});

test("sending text: optimistic bubble, then the server's message and the bot reply; only that new reply autoplays", async () => {
  const page = await openPage();
  page.instance.onInput({ detail: { value: "退款多久到账？" } });
  const sending = page.instance.onSend();
  await Promise.resolve();
  expect(texts(page, ".send-state")).toEqual(["发送中…"]);
  await sending;
  await flush();
  expect(texts(page, ".bubble.text").slice(-2)).toEqual(["退款多久到账？", "退款将在三到五个工作日内原路退回。"]);
  expect(texts(page, ".audio-note")).toEqual(["语音生成中…"]);
  expect(fake.requests.find((r) => r.method === "POST" && r.url.endsWith("/messages/")).data.client_id).toMatch(/^mp-/);
  // The reply's audio arrives on the socket: it plays by itself (it is new).
  fake.sockets[0].open();
  await flush();
  fake.sockets[0].receive({ type: "message.audio_ready", message: message(4, Object.assign({ text: "退款将在三到五个工作日内原路退回。" }, readyAudio("/media/audio/new", 4000))) });
  await flush();
  expect(fake.audioContexts[0].src).toBe("http://127.0.0.1:8000/media/audio/new");
  expect(page.data.playingId).toBe(4);
  // A late, stale 'pending' for the same message does not bring back "语音生成中".
  fake.sockets[0].receive({ type: "message.created", message: message(4, { audio_status: "pending", audio: { status: "pending" } }) });
  await flush();
  expect(texts(page, ".audio-note")).toEqual([]);
  expect(rows(page)).toHaveLength(4);
});

test("a failed send stays as a red bubble with a Chinese toast; tapping resends with the same client_id", async () => {
  const page = await openPage();
  server.postAnswer = () => json(429, { error: { code: "rate_limited", message: "请求过于频繁，请稍后再试。", fields: {} } }, { "Retry-After": "1" });
  page.instance.onInput({ detail: { value: "在吗" } });
  await page.instance.onSend();
  await flush();
  expect(fake.toasts).toContain("请求过于频繁，请稍后再试。");
  expect(texts(page, ".send-state.failed")).toEqual(["发送失败，点击重试"]);
  const firstClientId = fake.requests.filter((r) => r.method === "POST" && r.url.endsWith("/messages/"))[0].data.client_id;
  server.postAnswer = null;
  await new Promise((resolve) => setTimeout(resolve, 1100)); // Retry-After: 1
  const failed = page.querySelectorAll(".send-state.failed")[0];
  failed.dispatchEvent("tap");
  await new Promise((resolve) => setTimeout(resolve, 10));
  await flush();
  const posts = fake.requests.filter((r) => r.method === "POST" && r.url.endsWith("/messages/"));
  expect(posts).toHaveLength(2);
  expect(posts[1].data.client_id).toBe(firstClientId);
  expect(texts(page, ".send-state.failed")).toEqual([]);
});

test("转人工: queue position, then the serving agent from conversation.updated", async () => {
  const page = await openPage();
  fake.sockets[0].open();
  await page.instance.onHandoff();
  await flush();
  expect(texts(page, ".conversation-status")).toEqual(["正在为您转接人工客服，您前面还有 2 人"]);
  expect(page.querySelectorAll(".handoff")).toHaveLength(0); // queued: no second handoff
  expect(fake.toasts).toContain("已为您转接人工客服");
  fake.sockets[0].receive({ type: "conversation.updated", event_id: 9, conversation: { id: 1, status: "open", assigned_agent: { id: 3, display_name: "小王" }, queue_position: null } });
  await flush();
  expect(texts(page, ".conversation-status")).toEqual(["客服 小王 正在为您服务"]);
});

test("转人工 on a server without the handoff endpoint sends the words instead", async () => {
  server.handoff = false;
  const page = await openPage();
  await page.instance.onHandoff();
  await flush();
  const post = fake.requests.find((r) => r.method === "POST" && r.url.endsWith("/messages/"));
  expect(post.data.text).toBe("转人工");
});

test("CSAT card after resolve: pick stars, submit once, the card does not come back", async () => {
  const page = await openPage();
  fake.sockets[0].open();
  server.conversation = Object.assign({}, server.conversation, { status: "resolved", csat: null });
  fake.sockets[0].receive({ type: "conversation.updated", conversation: server.conversation });
  await flush();
  expect(texts(page, ".conversation-status")).toEqual(["本次会话已结束"]);
  expect(page.querySelectorAll(".csat")).toHaveLength(1);
  await page.instance.onSubmitCsat();
  expect(fake.toasts).toContain("请先选择评分");
  page.querySelectorAll(".star")[3].dispatchEvent("tap");
  await flush();
  expect(page.querySelectorAll(".star.on")).toHaveLength(4);
  await page.instance.onSubmitCsat();
  await flush();
  expect(fake.requests.find((r) => r.url.endsWith("/csat/")).data).toEqual({ rating: 4, comment: "" });
  expect(page.querySelectorAll(".csat")).toHaveLength(0);
  expect(texts(page, ".csat-done")).toEqual(["感谢您的评价"]);
  // csat.requested after submitting does not bring the card back.
  fake.sockets[0].receive({ type: "csat.requested" });
  await flush();
  expect(page.querySelectorAll(".csat")).toHaveLength(0);
});

test("CSAT refused by the server (already rated): its Chinese message, the card stays", async () => {
  server.csatGiven = true;
  server.conversation = Object.assign({}, server.conversation, { status: "resolved", csat: null });
  const page = await openPage();
  expect(page.querySelectorAll(".csat")).toHaveLength(1);
  page.instance.onRate({ currentTarget: { dataset: { rating: 5 } } });
  await page.instance.onSubmitCsat();
  await flush();
  expect(fake.toasts).toContain("您已经评价过了。");
  expect(page.querySelectorAll(".csat")).toHaveLength(1);
});

test("a transcript arriving later (message.transcribed) shows under the voice bubble", async () => {
  server.messages.push(message(3, { sender_kind: "customer", kind: "voice", text: "", voice: { url: "/media/voice/a", duration_ms: 4100 }, transcript: { status: "pending", text: "" } }));
  const page = await openPage();
  fake.sockets[0].open();
  await flush();
  expect(texts(page, ".bubble.voice")).toEqual(['◀))4"']);
  expect(texts(page, ".transcript")).toEqual([]);
  fake.sockets[0].receive({ type: "message.transcribed", message: message(3, { sender_kind: "customer", kind: "voice", text: "我要退款", voice: { url: "/media/voice/a", duration_ms: 4100 }, transcript: { status: "ready", text: "我要退款" } }) });
  await flush();
  expect(texts(page, ".transcript")).toEqual(["我要退款"]);
  // Tapping my own voice message plays the recording.
  page.querySelectorAll(".bubble.voice")[0].dispatchEvent("tap");
  await flush();
  expect(fake.audioContexts[0].src).toBe("http://127.0.0.1:8000/media/voice/a");
});

test("offline: a banner while reconnecting; catch-up fills in what was missed", async () => {
  jest.useFakeTimers({ doNotFake: ["queueMicrotask", "nextTick", "setImmediate"] });
  const page = await openPage();
  fake.sockets[0].open();
  await flush();
  fake.sockets[0].serverClose(1006);
  await flush();
  expect(texts(page, ".offline")).toEqual(["网络已断开，正在重新连接…"]);
  server.messages.push(message(3, { sender_kind: "agent", author: "小王", text: "您好，我是小王。" }));
  jest.advanceTimersByTime(2000);
  fake.sockets[1].open();
  await flush(60);
  expect(texts(page, ".offline")).toEqual([]);
  expect(texts(page, ".bubble.text")).toContain("您好，我是小王。");
  // One catch-up per successful open, each from the last message id we had.
  const catchUp = fake.requests.filter((r) => /messages\/\?after=\d+$/.test(r.url)).map((r) => r.url.split("=")[1]);
  expect(catchUp).toEqual(["0", "2", "2"]);
});

test("server down at start: a Chinese error and a retry button that works", async () => {
  server.down = true;
  const page = await openPage();
  expect(page.data.phase).toBe("error");
  expect(texts(page, ".state-text")).toEqual(["网络连接失败，请检查网络后重试"]);
  server.down = false;
  page.querySelectorAll(".retry")[0].dispatchEvent("tap");
  await flush(80);
  expect(page.data.phase).toBe("ready");
  expect(rows(page)).toHaveLength(2);
});

test("malformed event frames: ignored with one Chinese toast, the page keeps working", async () => {
  const page = await openPage();
  fake.sockets[0].open();
  await flush();
  const task = fake.sockets[0];
  ["{oops", "[]", JSON.stringify({ type: "message.created", message: { id: "x" } }), JSON.stringify({ type: "message.created", message: "str" }), JSON.stringify({ type: "conversation.updated", conversation: 7 })].forEach((frame) => task.receive(frame));
  await flush();
  expect(fake.toasts.filter((t) => t === "收到无法识别的消息，已忽略")).toHaveLength(1);
  expect(rows(page)).toHaveLength(2);
  task.receive({ type: "message.created", message: message(9, { sender_kind: "agent", author: "小王", text: "还在吗？" }) });
  await flush();
  expect(texts(page, ".bubble.text")).toContain("还在吗？");
});

test("401 after the refresh token expired: back to login (wx.login again), then the chat resumes", async () => {
  const page = await openPage();
  const logins = () => fake.requests.filter((r) => r.url.endsWith("/api/auth/dev-login/")).length;
  expect(logins()).toBe(1);
  const normal = fake.respond;
  let expired = true;
  fake.respond = (req) => {
    if (expired && req.url.endsWith("/token/refresh/")) return json(401, { error: { code: "token_not_valid", message: "令牌无效或已过期" } });
    if (expired && req.header.Authorization === "Bearer " + ACCESS) return json(401, { error: { code: "token_not_valid", message: "令牌无效" } });
    if (req.url.endsWith("/api/auth/dev-login/")) expired = false;
    return normal(req);
  };
  page.instance.onInput({ detail: { value: "你好" } });
  await page.instance.onSend();
  await flush(80);
  await page.instance.pendingRestart;
  await flush();
  expect(fake.toasts).toContain("登录已过期，正在重新登录…");
  expect(logins()).toBe(2);
  expect(page.data.phase).toBe("ready");
});

test("hold to talk: mp3 at 16 kHz, uploaded as a voice message, shown as a voice bubble with its duration", async () => {
  const page = await openPage();
  page.instance.onToggleMode();
  await flush();
  const hold = page.querySelectorAll(".hold")[0];
  hold.dispatchEvent("touchstart", { touches: [{ clientX: 10, clientY: 500 }] });
  await flush();
  expect(fake.recorder.started[0]).toMatchObject({ format: "mp3", sampleRate: 16000, numberOfChannels: 1 });
  expect(texts(page, ".hold")).toEqual(["松开 发送"]);
  hold.dispatchEvent("touchend");
  await flush(60);
  expect(fake.uploads).toHaveLength(1);
  expect(fake.uploads[0]).toMatchObject({ url: "http://127.0.0.1:8000/api/conversations/1/messages/", name: "audio", filePath: "wxfile://tmp/voice.mp3" });
  expect(fake.uploads[0].formData.client_id).toMatch(/^mp-/);
  expect(texts(page, ".bubble.voice")).toEqual(['◀))2"']);
  expect(page.querySelectorAll(".send-state")).toHaveLength(0);
});

test("hold to talk: slide up cancels, a too-short recording is refused in Chinese, a denied microphone explained", async () => {
  const page = await openPage();
  page.instance.onToggleMode();
  page.instance.onHoldStart({ touches: [{ clientY: 500 }] });
  page.instance.onHoldMove({ touches: [{ clientY: 400 }] });
  await flush();
  expect(texts(page, ".record-overlay")).toEqual(["松开手指，取消发送"]);
  page.instance.onHoldEnd();
  await flush();
  expect(fake.uploads).toHaveLength(0);
  fake.recorder.result = { tempFilePath: "wxfile://short.mp3", duration: 400 };
  page.instance.onHoldStart({ touches: [{ clientY: 500 }] });
  page.instance.onHoldEnd();
  await flush();
  expect(fake.toasts).toContain("说话时间太短");
  fake.recorder.fail("operateRecorder:fail auth deny");
  expect(fake.toasts).toContain("需要麦克风权限，请在设置中允许使用麦克风");
  expect(fake.uploads).toHaveLength(0);
});
