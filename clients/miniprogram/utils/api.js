// The platform's HTTP API for the mini-program: base URL from config.js, JWT kept in wx storage,
// one refresh at a time (the server rotates refresh tokens and blacklists the old one, so two
// parallel refreshes would log the user out), the error envelope turned into a Chinese toast,
// and 429 Retry-After honoured locally so a busy user does not hammer the server.
const { getConfig } = require("./config");

const TOKENS_KEY = "cs_tokens";
const REQUEST_TIMEOUT_MS = 15000;
const UPLOAD_TIMEOUT_MS = 60000;
// Used when a 429 comes without a usable Retry-After header.
const DEFAULT_RETRY_AFTER_S = 5;

const TEXT = {
  network: "网络连接失败，请检查网络后重试",
  server: "服务暂时不可用，请稍后再试",
  badResponse: "服务器返回了无法识别的数据，请稍后再试",
  authLost: "登录已过期，请重新登录",
  loginFailed: "登录失败，请稍后重试",
  unknown: "出错了，请稍后再试",
  rateLimited(seconds) {
    return "操作太频繁，请 " + seconds + " 秒后再试";
  },
};

class ApiError extends Error {
  constructor({ status = 0, code = "error", message = TEXT.unknown, fields = {}, retryAfter = 0 }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.fields = fields || {};
    this.retryAfter = retryAfter;
  }
}

// --- tokens -----------------------------------------------------------------------------------

function getTokens() {
  const stored = wx.getStorageSync(TOKENS_KEY);
  return stored && stored.access ? stored : null;
}

function saveTokens(values) {
  const current = getTokens() || {};
  wx.setStorageSync(TOKENS_KEY, {
    access: values.access,
    refresh: values.refresh || current.refresh,
    user: values.user || current.user || null,
  });
}

function clearTokens() {
  wx.removeStorageSync(TOKENS_KEY);
}

// The access token's `exp` (seconds), read without verifying: only to refresh ahead of time.
// The mini-program runtime has no atob on every base library, hence the small decoder.
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function base64UrlDecode(text) {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const char of text.replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_")) {
    const index = B64.indexOf(char);
    if (index < 0) return null;
    value = (value << 6) | index;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((value >> bits) & 0xff);
    }
  }
  return out;
}

function tokenExpiry(token) {
  const parts = typeof token === "string" ? token.split(".") : [];
  if (parts.length !== 3) return 0;
  try {
    const payload = JSON.parse(base64UrlDecode(parts[1]) || "null");
    return payload && typeof payload.exp === "number" ? payload.exp : 0;
  } catch (e) {
    return 0;
  }
}

// True when the stored access token will still be valid for `marginS` seconds. A WebSocket
// handshake with an expired token is refused before it opens (the client only sees the socket
// fail, no 4401), so the socket refreshes first instead of retrying with a dead token forever.
function accessTokenFresh(marginS) {
  const tokens = getTokens();
  if (!tokens) return false;
  return tokenExpiry(tokens.access) - (marginS === undefined ? 30 : marginS) > Date.now() / 1000;
}

// --- listeners (auth lost) --------------------------------------------------------------------

const authLostListeners = [];

function onAuthLost(listener) {
  authLostListeners.push(listener);
  return function off() {
    const index = authLostListeners.indexOf(listener);
    if (index >= 0) authLostListeners.splice(index, 1);
  };
}

function authLost() {
  clearTokens();
  authLostListeners.slice().forEach(function (listener) {
    try {
      listener();
    } catch (e) {
      // A broken listener must not hide the error from the caller.
    }
  });
  return new ApiError({ status: 401, code: "auth_lost", message: TEXT.authLost });
}

// --- low level --------------------------------------------------------------------------------

function absoluteUrl(path) {
  if (/^https?:\/\//.test(path)) return path;
  return getConfig().baseUrl + path;
}

function headerValue(headers, name) {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === wanted) return headers[key];
  }
  return undefined;
}

function parseRetryAfter(value) {
  if (value === undefined || value === null || value === "") return DEFAULT_RETRY_AFTER_S;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.max(1, Math.ceil(seconds));
  const date = Date.parse(value); // Retry-After may also be an HTTP date
  if (!Number.isNaN(date)) return Math.max(1, Math.ceil((date - Date.now()) / 1000));
  return DEFAULT_RETRY_AFTER_S;
}

function parseBody(data) {
  // wx.uploadFile always answers a string; wx.request parses JSON itself when it can.
  if (typeof data !== "string") return data;
  if (data === "") return null;
  try {
    return JSON.parse(data);
  } catch (e) {
    return undefined; // not JSON (an HTML error page from a proxy, say)
  }
}

function errorFromResponse(response) {
  const status = response.statusCode;
  const body = parseBody(response.data);
  const envelope = body && typeof body === "object" && body.error && typeof body.error === "object"
    ? body.error
    : null;
  const retryAfter = status === 429 || status === 503
    ? parseRetryAfter(headerValue(response.header, "Retry-After"))
    : 0;
  let message = envelope && typeof envelope.message === "string" && envelope.message
    ? envelope.message // the server speaks Chinese (zh-hans by default): show its words
    : null;
  if (!message) {
    if (status === 429) message = TEXT.rateLimited(retryAfter);
    else if (status === 401) message = TEXT.authLost;
    else if (status >= 500) message = TEXT.server;
    else message = TEXT.unknown;
  }
  return new ApiError({
    status,
    code: (envelope && envelope.code) || (status >= 500 ? "server_error" : "http_" + status),
    message,
    fields: (envelope && envelope.fields) || {},
    retryAfter,
  });
}

function wxRequest({ method, url, data, token }) {
  return new Promise(function (resolve, reject) {
    const header = { "Content-Type": "application/json", "Accept-Language": "zh-hans" };
    if (token) header.Authorization = "Bearer " + token;
    wx.request({
      url,
      method,
      data,
      header,
      timeout: REQUEST_TIMEOUT_MS,
      success: resolve,
      fail: function () {
        reject(new ApiError({ code: "network", message: TEXT.network }));
      },
    });
  });
}

function wxUpload({ url, filePath, name, formData, token }) {
  return new Promise(function (resolve, reject) {
    const header = { "Accept-Language": "zh-hans" };
    if (token) header.Authorization = "Bearer " + token;
    wx.uploadFile({
      url,
      filePath,
      name,
      formData,
      header,
      timeout: UPLOAD_TIMEOUT_MS,
      success: resolve,
      fail: function () {
        reject(new ApiError({ code: "network", message: TEXT.network }));
      },
    });
  });
}

// --- rate limits ------------------------------------------------------------------------------

// "METHOD /path" -> epoch ms before which we refuse locally instead of asking the server again.
const cooldowns = {};

function cooldownError(key) {
  const until = cooldowns[key];
  if (!until) return null;
  const left = Math.ceil((until - Date.now()) / 1000);
  if (left <= 0) {
    delete cooldowns[key];
    return null;
  }
  return new ApiError({
    status: 429,
    code: "rate_limited",
    message: TEXT.rateLimited(left),
    retryAfter: left,
  });
}

// --- refresh and login (one in flight each) ---------------------------------------------------

let refreshing = null;
let loggingIn = null;

function refreshTokens() {
  if (refreshing) return refreshing;
  const tokens = getTokens();
  if (!tokens || !tokens.refresh) return Promise.reject(authLost());
  refreshing = wxRequest({
    method: "POST",
    url: absoluteUrl("/api/auth/token/refresh/"),
    data: { refresh: tokens.refresh },
  })
    .then(function (response) {
      const body = parseBody(response.data);
      if (response.statusCode === 200 && body && body.access) {
        saveTokens({ access: body.access, refresh: body.refresh });
        return body.access;
      }
      if (response.statusCode === 401 || response.statusCode === 400) {
        throw authLost(); // refresh token expired, blacklisted or garbage: log in again
      }
      throw errorFromResponse(response); // 5xx / 429: keep the tokens, try later
    })
    .finally(function () {
      refreshing = null;
    });
  return refreshing;
}

function wxLoginCode() {
  return new Promise(function (resolve, reject) {
    wx.login({
      success: function (result) {
        if (result && result.code) resolve(result.code);
        else reject(new ApiError({ code: "wx_login", message: TEXT.loginFailed }));
      },
      fail: function () {
        reject(new ApiError({ code: "wx_login", message: TEXT.loginFailed }));
      },
    });
  });
}

// wx.login() -> code -> /api/auth/wechat/ (or the dev login under `make run`) -> JWT pair.
function login() {
  if (loggingIn) return loggingIn;
  loggingIn = wxLoginCode()
    .then(function (code) {
      return request("POST", getConfig().loginPath, { data: { code }, auth: false });
    })
    .then(function (body) {
      if (!body || !body.access || !body.refresh) {
        throw new ApiError({ code: "bad_response", message: TEXT.badResponse });
      }
      saveTokens(body);
      return body.user || null;
    })
    .finally(function () {
      loggingIn = null;
    });
  return loggingIn;
}

function ensureLogin() {
  const tokens = getTokens();
  if (tokens) return Promise.resolve(tokens.user || null);
  return login();
}

// --- requests ---------------------------------------------------------------------------------

async function send(method, path, auth, perform) {
  const key = method + " " + path.split("?")[0];
  const refused = cooldownError(key);
  if (refused) throw refused;
  let tokens = auth ? getTokens() : null;
  if (auth && !tokens) throw authLost();
  let response = await perform(tokens && tokens.access);
  if (auth && response.statusCode === 401) {
    // The access token expired (15 min): refresh once, then retry once with the new one.
    const access = await refreshTokens();
    response = await perform(access);
    if (response.statusCode === 401) throw authLost();
  }
  if (response.statusCode === 429) {
    const error = errorFromResponse(response);
    cooldowns[key] = Date.now() + error.retryAfter * 1000;
    throw error;
  }
  if (response.statusCode < 200 || response.statusCode >= 300) throw errorFromResponse(response);
  const body = parseBody(response.data);
  if (body === undefined) {
    throw new ApiError({ status: response.statusCode, code: "bad_response", message: TEXT.badResponse });
  }
  return body;
}

function request(method, path, options) {
  const opts = options || {};
  const auth = opts.auth !== false;
  const url = absoluteUrl(path);
  return send(method, path, auth, function (token) {
    return wxRequest({ method, url, data: opts.data, token });
  });
}

function upload(path, { filePath, name, formData }) {
  const url = absoluteUrl(path);
  return send("POST", path, true, function (token) {
    return wxUpload({ url, filePath, name, formData, token });
  });
}

// Every page shows errors the same way: the server's own (Chinese) message, never a stack.
function showError(error) {
  const message = error && error.name === "ApiError" ? error.message : TEXT.unknown;
  wx.showToast({ title: message, icon: "none", duration: 2500 });
  return message;
}

function resetForTests() {
  refreshing = null;
  loggingIn = null;
  Object.keys(cooldowns).forEach(function (key) {
    delete cooldowns[key];
  });
  authLostListeners.length = 0;
}

module.exports = {
  ApiError,
  accessTokenFresh,
  tokenExpiry,
  TEXT,
  absoluteUrl,
  clearTokens,
  ensureLogin,
  getTokens,
  login,
  onAuthLost,
  parseRetryAfter,
  refreshTokens,
  request,
  resetForTests,
  saveTokens,
  showError,
  upload,
  get: function (path) {
    return request("GET", path);
  },
  post: function (path, data) {
    return request("POST", path, { data });
  },
};
