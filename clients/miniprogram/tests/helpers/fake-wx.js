// A stand-in for the WeChat runtime (`wx.*`) in unit tests: storage, request/uploadFile answered
// by a test-provided function, socket tasks the test drives by hand, toasts recorded, audio and
// recorder objects that remember what they were told. Our own modules run unmodified on top.

class FakeSocketTask {
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = null;
    this.handlers = { open: [], message: [], close: [], error: [] };
  }
  onOpen(fn) { this.handlers.open.push(fn); }
  onMessage(fn) { this.handlers.message.push(fn); }
  onClose(fn) { this.handlers.close.push(fn); }
  onError(fn) { this.handlers.error.push(fn); }
  send({ data }) { this.sent.push(data); }
  close({ code } = {}) { this.closed = { code: code || 1000, byClient: true }; }
  // --- the "server" side, driven by the test ---
  open() { this.handlers.open.forEach((fn) => fn({})); }
  receive(frame) {
    const data = typeof frame === "string" ? frame : JSON.stringify(frame);
    this.handlers.message.forEach((fn) => fn({ data }));
  }
  serverClose(code) {
    this.closed = { code, byClient: false };
    this.handlers.error.forEach((fn) => fn({ errMsg: "closed" }));
    this.handlers.close.forEach((fn) => fn({ code, reason: "" }));
  }
}

class FakeAudioContext {
  constructor() {
    this.src = "";
    this.calls = [];
    this.handlers = { ended: [], stop: [], error: [] };
  }
  onEnded(fn) { this.handlers.ended.push(fn); }
  onStop(fn) { this.handlers.stop.push(fn); }
  onError(fn) { this.handlers.error.push(fn); }
  play() { this.calls.push(["play", this.src]); }
  stop() {
    this.calls.push(["stop", this.src]);
    this.handlers.stop.forEach((fn) => fn());
  }
  destroy() { this.calls.push(["destroy"]); }
  end() { this.handlers.ended.forEach((fn) => fn()); }
}

class FakeRecorder {
  constructor() {
    this.handlers = { start: [], stop: [], error: [] };
    this.started = [];
    this.result = { tempFilePath: "wxfile://tmp/voice.mp3", duration: 2300, fileSize: 9000 };
  }
  onStart(fn) { this.handlers.start.push(fn); }
  onStop(fn) { this.handlers.stop.push(fn); }
  onError(fn) { this.handlers.error.push(fn); }
  start(options) {
    this.started.push(options);
    this.handlers.start.forEach((fn) => fn());
  }
  stop() { this.handlers.stop.forEach((fn) => fn(this.result)); }
  fail(errMsg) { this.handlers.error.forEach((fn) => fn({ errMsg })); }
}

function createFakeWx() {
  let loginCount = 0;
  const fake = {
    storage: {},
    requests: [],
    uploads: [],
    sockets: [],
    toasts: [],
    audioContexts: [],
    networkListeners: [],
    recorder: new FakeRecorder(),
    loginFails: false,
    // (request) -> {statusCode, data, header} | "fail" | Promise of either
    respond: function () { return "fail"; },
    respondUpload: function () { return "fail"; },
  };
  function deliver(options, answer) {
    Promise.resolve(answer).then(function (result) {
      if (result === "fail") options.fail && options.fail({ errMsg: "request:fail" });
      else options.success && options.success(Object.assign({ header: {} }, result));
    });
  }
  fake.wx = {
    getStorageSync(key) {
      return key in fake.storage ? JSON.parse(JSON.stringify(fake.storage[key])) : "";
    },
    setStorageSync(key, value) { fake.storage[key] = JSON.parse(JSON.stringify(value)); },
    removeStorageSync(key) { delete fake.storage[key]; },
    getAccountInfoSync() { return { miniProgram: { envVersion: "develop" } }; },
    login({ success, fail }) {
      loginCount += 1;
      if (fake.loginFails) fail({ errMsg: "login:fail" });
      else success({ code: "code-" + loginCount });
    },
    request(options) {
      fake.requests.push(options);
      deliver(options, fake.respond(options));
    },
    uploadFile(options) {
      fake.uploads.push(options);
      deliver(options, fake.respondUpload(options));
    },
    connectSocket(options) {
      const task = new FakeSocketTask(options.url);
      fake.sockets.push(task);
      return task;
    },
    onNetworkStatusChange(fn) { fake.networkListeners.push(fn); },
    offNetworkStatusChange(fn) {
      fake.networkListeners = fake.networkListeners.filter((item) => item !== fn);
    },
    showToast(options) { fake.toasts.push(options.title); },
    createInnerAudioContext() {
      const context = new FakeAudioContext();
      fake.audioContexts.push(context);
      return context;
    },
    getRecorderManager() { return fake.recorder; },
  };
  return fake;
}

// Let queued promise callbacks run (works with fake timers too: no timer involved).
async function flush(times = 30) {
  for (let i = 0; i < times; i += 1) await Promise.resolve();
}

function json(statusCode, data, header) {
  return { statusCode, data, header: header || {} };
}

// A token shaped like the server's (header.payload.signature, base64url) expiring in `seconds`.
function fakeJwt(name, seconds = 900) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const exp = Math.floor(Date.now() / 1000) + seconds;
  return encode({ alg: "HS256", typ: "JWT" }) + "." + encode({ exp, jti: name }) + ".sig-" + name;
}

module.exports = { fakeJwt, FakeAudioContext, FakeRecorder, FakeSocketTask, createFakeWx, flush, json };
