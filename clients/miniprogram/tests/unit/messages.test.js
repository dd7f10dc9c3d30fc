const { createFakeWx } = require("../helpers/fake-wx");

let MessageStore;
let normalizeMessage;

beforeEach(() => {
  jest.resetModules();
  global.wx = createFakeWx().wx;
  require("../../utils/config").setConfig({ baseUrl: "http://127.0.0.1:8000" });
  ({ MessageStore, normalizeMessage } = require("../../utils/messages"));
});

function apiMessage(id, extra) {
  return Object.assign(
    {
      id,
      conversation_id: 1,
      sender_kind: "bot",
      author: "",
      text: "退款将在三到五个工作日内原路退回。",
      audio_status: "pending",
      audio_url: "",
      created_at: "2026-12-03T16:00:00+08:00",
      client_id: null,
      audio: { status: "pending", url: null, duration_ms: null, format: null, emotion: "calm" },
    },
    extra || {}
  );
}

function ready(id, url) {
  return apiMessage(id, {
    audio_status: "ready",
    audio_url: url,
    audio: { status: "ready", url, duration_ms: 3400, format: "mp3", emotion: "calm" },
  });
}

test("normalises the API payload; relative clip URLs get the base URL", () => {
  const m = normalizeMessage(ready(4, "/media/audio/tok"));
  expect(m).toMatchObject({ id: 4, sender: "bot", mine: false, kind: "text" });
  expect(m.audio).toEqual({ status: "ready", url: "http://127.0.0.1:8000/media/audio/tok", durationMs: 3400, durationLabel: '3"' });
});

test("the flat WebSocket fields alone are enough", () => {
  const m = normalizeMessage({ id: 2, sender_kind: "agent", text: "您好", audio_status: "ready", audio_url: "/media/audio/x" });
  expect(m.audio.status).toBe("ready");
  expect(m.audio.url).toBe("http://127.0.0.1:8000/media/audio/x");
});

test("voice messages (#10 contract): kind, voice, transcript, masked text", () => {
  const m = normalizeMessage({
    id: 9,
    sender_kind: "customer",
    kind: "voice",
    text: "我要退款 混蛋",
    voice: { url: "/media/voice/t", duration_ms: 2300, format: "mp3" },
    transcript: { status: "ready", text: "我要退款 **", empty: false },
    moderation: { flagged: true, masked_text: "我要退款 **" },
    audio: { status: "none" },
  });
  expect(m.kind).toBe("voice");
  expect(m.voice).toEqual({ url: "http://127.0.0.1:8000/media/voice/t", durationMs: 2300, durationLabel: '2"' });
  expect(m.transcript).toEqual({ status: "ready", text: "我要退款 **", empty: false });
  expect(m.text).toBe("我要退款 **");
});

test("garbage is not a message", () => {
  for (const bad of [null, 5, "x", [], {}, { id: "abc" }, { id: -3 }, { id: 1.5 }]) {
    expect(normalizeMessage(bad)).toBeNull();
  }
  const store = new MessageStore();
  expect(store.upsert({ id: "x" })).toBe("ignored");
  expect(store.items).toHaveLength(0);
});

test("dedupe by id: the same message from POST, socket and catch-up shows once", () => {
  const store = new MessageStore();
  expect(store.upsert(apiMessage(5))).toBe("added");
  expect(store.upsert(apiMessage(5))).toBe("ignored");
  expect(store.upsert(apiMessage(3))).toBe("added");
  expect(store.items.map((m) => m.id)).toEqual([3, 5]);
  expect(store.lastId).toBe(5);
});

test("an optimistic bubble is replaced by the server's message with the same client_id", () => {
  const store = new MessageStore();
  store.addLocal({ clientId: "c1", text: "你好" });
  store.addLocal({ clientId: "c2", text: "在吗" });
  expect(store.lastId).toBe(0);
  expect(store.upsert(apiMessage(11, { sender_kind: "customer", client_id: "c1", text: "你好" }))).toBe("updated");
  expect(store.items.map((m) => [m.id, m.sendState])).toEqual([[11, "sent"], [-2, "sending"]]);
  store.setSendState("c2", "failed");
  expect(store.items[1].sendState).toBe("failed");
});

test("audio status only moves forward: ready never goes back to pending", () => {
  const store = new MessageStore();
  store.upsert(ready(7, "/media/audio/a"));
  // A late message.created (pending) after message.audio_ready arrives.
  expect(store.upsert(apiMessage(7))).toBe("ignored");
  expect(store.find(7).audio.status).toBe("ready");
  expect(store.find(7).audio.url).toBe("http://127.0.0.1:8000/media/audio/a");
});

test("failed never goes back to pending, but may still become ready", () => {
  const store = new MessageStore();
  store.upsert(apiMessage(8, { audio_status: "failed", audio: { status: "failed" } }));
  store.upsert(apiMessage(8));
  expect(store.find(8).audio.status).toBe("failed");
  store.upsert(ready(8, "/media/audio/b"));
  expect(store.find(8).audio.status).toBe("ready");
  store.upsert(apiMessage(8, { audio_status: "failed", audio: { status: "failed" } }));
  expect(store.find(8).audio.status).toBe("ready");
});

test("a ready message re-read later gets its fresh signed URL", () => {
  const store = new MessageStore();
  store.upsert(ready(7, "/media/audio/old"));
  expect(store.upsert(ready(7, "/media/audio/new"))).toBe("updated");
  expect(store.find(7).audio.url).toBe("http://127.0.0.1:8000/media/audio/new");
});

test("a transcript never goes back from ready to pending", () => {
  const store = new MessageStore();
  const voice = { id: 3, sender_kind: "customer", kind: "voice", voice: { url: "/v", duration_ms: 1000 } };
  store.upsert(Object.assign({}, voice, { transcript: { status: "ready", text: "你好" } }));
  store.upsert(Object.assign({}, voice, { transcript: { status: "pending", text: "" } }));
  expect(store.find(3).transcript).toMatchObject({ status: "ready", text: "你好" });
});

test("h1's one payload (#14 step 2): no flat audio fields, intent/emotion objects, audio.error", () => {
  const m = normalizeMessage({
    id: 42,
    conversation_id: 7,
    client_id: "c-7f3a",
    sender_kind: "agent",
    author: "小王",
    text: "您好",
    intent: { name: "complaint", label: "投诉" },
    created_at: "2026-12-03T16:45:00+08:00",
    audio: { status: "ready", url: "/media/audio/tok/", duration_ms: 2310, format: "mp3", emotion: { name: "calm", label: "平静" }, error: null },
  });
  expect(m).toMatchObject({ id: 42, clientId: "c-7f3a", sender: "agent", author: "小王", text: "您好", mine: false });
  expect(m.audio).toEqual({ status: "ready", url: "http://127.0.0.1:8000/media/audio/tok/", durationMs: 2310, durationLabel: '2"' });
  const failed = normalizeMessage({ id: 43, sender_kind: "bot", text: "x", audio: { status: "failed", url: null, error: "语音暂不可用" } });
  expect(failed.audio.status).toBe("failed");
  expect(failed.audio.url).toBe("");
});
