const { createFakeWx, fakeJwt, flush, json } = require("../helpers/fake-wx");

const A1 = fakeJwt("A1");
const A2 = fakeJwt("A2");

let fake;
let api;
let ChatSocket;

beforeEach(() => {
  jest.resetModules();
  jest.useFakeTimers();
  fake = createFakeWx();
  global.wx = fake.wx;
  api = require("../../utils/api");
  require("../../utils/config").setConfig({ baseUrl: "https://cs.example.com" });
  ({ ChatSocket } = require("../../utils/socket"));
  api.saveTokens({ access: A1, refresh: "R1" });
});

afterEach(() => {
  jest.useRealTimers();
});

function makeSocket(extra) {
  const calls = { events: [], states: [], catchUps: 0, malformed: [] };
  const socket = new ChatSocket(
    Object.assign(
      {
        conversationId: 42,
        random: () => 1, // no jitter: the delays below are exact
        onEvent: (event) => calls.events.push(event),
        onStateChange: (state, detail) => calls.states.push([state, detail]),
        onCatchUp: () => {
          calls.catchUps += 1;
        },
        onMalformed: (data) => calls.malformed.push(data),
      },
      extra || {}
    )
  );
  return { socket, calls };
}

test("connects to wss://…/ws/chat/{id}/ with the access token, catches up on open", () => {
  const { socket, calls } = makeSocket();
  socket.start();
  expect(fake.sockets).toHaveLength(1);
  expect(fake.sockets[0].url).toBe("wss://cs.example.com/ws/chat/42/?token=" + A1);
  fake.sockets[0].open();
  expect(socket.state).toBe("online");
  expect(calls.catchUps).toBe(1);
});

test("heartbeat: a ping every 20 s; 45 s of silence closes and reconnects", () => {
  const { socket } = makeSocket();
  socket.start();
  const task = fake.sockets[0];
  task.open();
  jest.advanceTimersByTime(20000);
  expect(task.sent).toEqual([JSON.stringify({ type: "ping" })]);
  task.receive({ type: "pong" });
  jest.advanceTimersByTime(40000);
  expect(task.sent).toHaveLength(3);
  expect(fake.sockets).toHaveLength(1);
  // No frame since the pong at t=20 s: at t=80 s the socket is declared dead.
  jest.advanceTimersByTime(20000);
  expect(task.closed).toMatchObject({ byClient: true });
  expect(socket.state).toBe("offline");
  jest.advanceTimersByTime(1000);
  expect(fake.sockets).toHaveLength(2);
});

test("reconnects with exponential backoff capped at 30 s, and catches up each time", () => {
  const { socket, calls } = makeSocket();
  socket.start();
  const delays = [];
  for (let i = 0; i < 7; i += 1) {
    const before = fake.sockets.length;
    fake.sockets[before - 1].serverClose(1006);
    const state = calls.states[calls.states.length - 1];
    delays.push(state[1].retryInMs);
    jest.advanceTimersByTime(state[1].retryInMs - 1);
    expect(fake.sockets).toHaveLength(before);
    jest.advanceTimersByTime(1);
    expect(fake.sockets).toHaveLength(before + 1);
  }
  expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  fake.sockets[fake.sockets.length - 1].open();
  expect(calls.catchUps).toBe(1);
  // A successful open resets the backoff.
  fake.sockets[fake.sockets.length - 1].serverClose(1006);
  expect(calls.states[calls.states.length - 1][1].retryInMs).toBe(1000);
});

test("jitter spreads reconnects between half and all of the backoff", () => {
  const { socket } = makeSocket({ random: () => 0 });
  socket.attempt = 3;
  expect(socket.backoffDelay()).toBe(4000);
});

test("back online: reconnect at once instead of waiting out the backoff", () => {
  const { socket } = makeSocket();
  socket.start();
  fake.sockets[0].serverClose(1006);
  fake.networkListeners.forEach((fn) => fn({ isConnected: true, networkType: "wifi" }));
  expect(fake.sockets).toHaveLength(2);
});

test("4401 (token expired) refreshes the token and reconnects with the new one", async () => {
  fake.respond = () => json(200, { access: A2, refresh: "R2" });
  const { socket } = makeSocket();
  socket.start();
  fake.sockets[0].serverClose(4401);
  await flush();
  expect(fake.sockets).toHaveLength(2);
  expect(fake.sockets[1].url).toContain("token=" + A2);
});

test("4401 and the refresh is refused: closed with authLost, no reconnect loop", async () => {
  fake.respond = () => json(401, { error: { code: "token_not_valid", message: "令牌无效" } });
  const { socket, calls } = makeSocket();
  socket.start();
  fake.sockets[0].serverClose(4401);
  await flush();
  jest.advanceTimersByTime(60000);
  expect(fake.sockets).toHaveLength(1);
  expect(socket.state).toBe("closed");
  expect(calls.states[calls.states.length - 1][1]).toMatchObject({ authLost: true });
});

test("an expired access token is refreshed before the handshake (the server refuses it without a 4401)", async () => {
  api.saveTokens({ access: fakeJwt("old", -5), refresh: "R1" });
  fake.respond = () => json(200, { access: A2, refresh: "R2" });
  const { socket } = makeSocket();
  socket.start();
  expect(fake.sockets).toHaveLength(0);
  await flush();
  expect(fake.requests.map((r) => r.url)).toEqual(["https://cs.example.com/api/auth/token/refresh/"]);
  expect(fake.sockets[0].url).toContain("token=" + A2);
  expect(socket.state).toBe("connecting");
});

test("an unreadable token is refreshed too; a refused refresh closes with authLost", async () => {
  api.saveTokens({ access: "garbage", refresh: "R1" });
  fake.respond = () => json(401, { error: { code: "token_not_valid", message: "令牌无效" } });
  const { socket, calls } = makeSocket();
  socket.start();
  await flush();
  jest.advanceTimersByTime(60000);
  expect(fake.sockets).toHaveLength(0);
  expect(socket.state).toBe("closed");
  expect(calls.states[calls.states.length - 1][1]).toMatchObject({ authLost: true });
});

test("a refresh that fails for lack of network is retried with backoff", async () => {
  api.saveTokens({ access: "garbage", refresh: "R1" });
  fake.respond = () => "fail";
  const { socket } = makeSocket();
  socket.start();
  await flush();
  expect(socket.state).toBe("offline");
  fake.respond = () => json(200, { access: A2, refresh: "R2" });
  jest.advanceTimersByTime(1000);
  await flush();
  expect(fake.sockets).toHaveLength(1);
});

test("4403/4404 are final: no reconnect", () => {
  const { socket } = makeSocket();
  socket.start();
  fake.sockets[0].serverClose(4404);
  jest.advanceTimersByTime(60000);
  expect(fake.sockets).toHaveLength(1);
  expect(socket.state).toBe("closed");
});

test("malformed frames are counted and reported, never thrown; good frames still flow", () => {
  const { socket, calls } = makeSocket();
  socket.start();
  const task = fake.sockets[0];
  task.open();
  const garbage = ["not json", "[1,2]", "null", "42", JSON.stringify({ no: "type" }), JSON.stringify({ type: 5 })];
  expect(() => garbage.forEach((frame) => task.receive(frame))).not.toThrow();
  task.handlers.message.forEach((fn) => fn({ data: new ArrayBuffer(4) }));
  task.handlers.message.forEach((fn) => fn(undefined));
  expect(socket.malformedCount).toBe(8);
  expect(calls.malformed).toHaveLength(8);
  task.receive({ type: "message.created", event_id: 1, message: { id: 1 } });
  expect(calls.events).toHaveLength(1);
});

test("an event handler that throws does not kill the socket", () => {
  const { socket } = makeSocket({
    onEvent: () => {
      throw new Error("boom");
    },
  });
  socket.start();
  fake.sockets[0].open();
  expect(() => fake.sockets[0].receive({ type: "message.created", message: {} })).not.toThrow();
  expect(socket.state).toBe("online");
  expect(socket.malformedCount).toBe(1);
});

test("the same event_id twice is delivered once", () => {
  const { socket, calls } = makeSocket();
  socket.start();
  fake.sockets[0].open();
  fake.sockets[0].receive({ type: "message.created", event_id: 5, message: { id: 1 } });
  fake.sockets[0].receive({ type: "message.created", event_id: 5, message: { id: 1 } });
  fake.sockets[0].receive({ type: "message.audio_ready", event_id: 6, message: { id: 1 } });
  expect(calls.events.map((e) => e.event_id)).toEqual([5, 6]);
});

test("events of a replaced socket are ignored; stop() closes for good", () => {
  const { socket, calls } = makeSocket();
  socket.start();
  const first = fake.sockets[0];
  first.serverClose(1006);
  jest.advanceTimersByTime(1000);
  first.receive({ type: "message.created", message: { id: 1 } });
  expect(calls.events).toHaveLength(0);
  socket.stop();
  expect(fake.sockets[1].closed).toMatchObject({ code: 1000, byClient: true });
  fake.sockets[1].serverClose(1006);
  jest.advanceTimersByTime(60000);
  expect(fake.sockets).toHaveLength(2);
  expect(fake.networkListeners).toHaveLength(0);
});

test("typing frames: only when online, at most one every 3 s", () => {
  const { socket } = makeSocket();
  socket.start();
  expect(socket.sendTyping()).toBe(false); // not open yet
  fake.sockets[0].open();
  expect(socket.sendTyping()).toBe(true);
  expect(socket.sendTyping()).toBe(false);
  jest.advanceTimersByTime(3000);
  expect(socket.sendTyping()).toBe(true);
  expect(fake.sockets[0].sent.filter((f) => f === JSON.stringify({ type: "typing" }))).toHaveLength(2);
});

test("reconnectNow (page shown again) skips the backoff, and does nothing while online", () => {
  const { socket } = makeSocket();
  socket.start();
  fake.sockets[0].open();
  socket.reconnectNow();
  expect(fake.sockets).toHaveLength(1);
  fake.sockets[0].serverClose(1006);
  socket.attempt = 4; // deep in the backoff
  socket.reconnectNow();
  expect(fake.sockets).toHaveLength(2);
  expect(socket.attempt).toBe(0);
});
