// A `wx` for node: wx.request / wx.uploadFile over node's HTTP client, wx.connectSocket over the
// `ws` package, storage in memory. It lets the integration test run the client's utils/* against
// a real server, so the client and the API cannot drift apart unnoticed.
const fs = require("fs");
const http = require("http");
const https = require("https");
const path = require("path");
const WebSocket = require("ws");

function client(url) {
  return url.startsWith("https:") ? https : http;
}

function lowerHeaders(headers) {
  const out = {};
  Object.keys(headers || {}).forEach((key) => {
    out[key] = Array.isArray(headers[key]) ? headers[key].join(", ") : headers[key];
  });
  return out;
}

// Like the real wx.request: JSON bodies are parsed when they parse, otherwise the string.
function decode(buffer) {
  const text = buffer.toString("utf8");
  try {
    return JSON.parse(text);
  } catch (e) {
    return text;
  }
}

function send({ url, method, headers, body, timeout }, done, fail) {
  let finished = false;
  const request = client(url).request(url, { method, headers }, (response) => {
    const chunks = [];
    response.on("data", (chunk) => chunks.push(chunk));
    response.on("end", () => {
      if (finished) return;
      finished = true;
      done({ statusCode: response.statusCode, header: lowerHeaders(response.headers), body: Buffer.concat(chunks) });
    });
  });
  request.setTimeout(timeout || 15000, () => request.destroy(new Error("timeout")));
  request.on("error", (error) => {
    if (finished) return;
    finished = true;
    fail({ errMsg: "request:fail " + error.message });
  });
  if (body) request.write(body);
  request.end();
}

function socketTask(url) {
  const ws = new WebSocket(url);
  const handlers = { open: [], message: [], close: [], error: [] };
  ws.on("open", () => handlers.open.forEach((fn) => fn({})));
  ws.on("message", (data, isBinary) => {
    const payload = isBinary ? data : data.toString("utf8");
    handlers.message.forEach((fn) => fn({ data: payload }));
  });
  ws.on("close", (code, reason) => handlers.close.forEach((fn) => fn({ code, reason: reason.toString() })));
  ws.on("error", (error) => handlers.error.forEach((fn) => fn({ errMsg: error.message })));
  return {
    ws,
    onOpen: (fn) => handlers.open.push(fn),
    onMessage: (fn) => handlers.message.push(fn),
    onClose: (fn) => handlers.close.push(fn),
    onError: (fn) => handlers.error.push(fn),
    send({ data, success, fail }) {
      ws.send(data, (error) => (error ? fail && fail({ errMsg: error.message }) : success && success()));
    },
    close({ code } = {}) {
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(code || 1000);
    },
  };
}

function createNodeWx({ nextCode }) {
  const storage = {};
  const log = { requests: [], toasts: [], sockets: [] };
  const wx = {
    getStorageSync: (key) => (key in storage ? JSON.parse(JSON.stringify(storage[key])) : ""),
    setStorageSync: (key, value) => {
      storage[key] = JSON.parse(JSON.stringify(value));
    },
    removeStorageSync: (key) => {
      delete storage[key];
    },
    getAccountInfoSync: () => ({ miniProgram: { envVersion: "develop" } }),
    login({ success, fail }) {
      const code = nextCode();
      setImmediate(() => (code ? success({ code, errMsg: "login:ok" }) : fail({ errMsg: "login:fail" })));
    },
    request({ url, method = "GET", data, header, timeout, success, fail }) {
      log.requests.push({ url, method });
      let target = url;
      let body = null;
      if (method === "GET" && data && typeof data === "object") {
        target += (url.includes("?") ? "&" : "?") + new URLSearchParams(data).toString();
      } else if (data !== undefined && data !== null) {
        body = typeof data === "string" ? data : JSON.stringify(data);
      }
      const headers = Object.assign({}, header);
      if (body) headers["Content-Length"] = Buffer.byteLength(body);
      send(
        { url: target, method, headers, body, timeout },
        (response) => success({ statusCode: response.statusCode, header: response.header, data: decode(response.body) }),
        fail
      );
    },
    uploadFile({ url, filePath, name, formData, header, timeout, success, fail }) {
      log.requests.push({ url, method: "UPLOAD" });
      const boundary = "----wxnode" + Date.now().toString(16);
      const parts = [];
      Object.keys(formData || {}).forEach((key) => {
        parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${key}"\r\n\r\n${formData[key]}\r\n`));
      });
      parts.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${path.basename(filePath)}"\r\nContent-Type: audio/mpeg\r\n\r\n`
        )
      );
      parts.push(fs.readFileSync(filePath));
      parts.push(Buffer.from(`\r\n--${boundary}--\r\n`));
      const body = Buffer.concat(parts);
      const headers = Object.assign({}, header, {
        "Content-Type": "multipart/form-data; boundary=" + boundary,
        "Content-Length": body.length,
      });
      // wx.uploadFile hands the body over as a string, whatever it is.
      send(
        { url, method: "POST", headers, body, timeout },
        (response) => success({ statusCode: response.statusCode, header: response.header, data: response.body.toString("utf8") }),
        fail
      );
    },
    connectSocket({ url }) {
      const task = socketTask(url);
      log.sockets.push(task);
      return task;
    },
    onNetworkStatusChange() {},
    offNetworkStatusChange() {},
    showToast: ({ title }) => log.toasts.push(title),
    createInnerAudioContext() {
      throw new Error("no audio output in node");
    },
  };
  return { wx, log, storage };
}

module.exports = { createNodeWx };
