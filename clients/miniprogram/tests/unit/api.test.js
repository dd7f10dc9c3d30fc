const { createFakeWx, flush, json } = require("../helpers/fake-wx");

let fake;
let api;

beforeEach(() => {
  jest.resetModules();
  fake = createFakeWx();
  global.wx = fake.wx;
  api = require("../../utils/api");
  require("../../utils/config").setConfig({ baseUrl: "http://api.test" });
});

afterEach(() => {
  jest.useRealTimers();
});

function loggedIn(access = "A1", refresh = "R1") {
  api.saveTokens({ access, refresh, user: { id: 7 } });
}

describe("requests", () => {
  test("sends the bearer token to the configured base URL and returns the JSON body", async () => {
    loggedIn();
    fake.respond = () => json(200, { id: 3, status: "open" });
    const body = await api.post("/api/conversations/");
    expect(body).toEqual({ id: 3, status: "open" });
    const request = fake.requests[0];
    expect(request.url).toBe("http://api.test/api/conversations/");
    expect(request.method).toBe("POST");
    expect(request.header.Authorization).toBe("Bearer A1");
  });

  test("the error envelope becomes an ApiError carrying the server's Chinese message", async () => {
    loggedIn();
    fake.respond = () =>
      json(400, { error: { code: "invalid", message: "输入无效。", fields: { text: ["该字段不能为空。"] } } });
    const error = await api.post("/api/conversations/1/messages/", { text: "" }).catch((e) => e);
    expect(error.name).toBe("ApiError");
    expect(error.status).toBe(400);
    expect(error.code).toBe("invalid");
    expect(error.message).toBe("输入无效。");
    expect(error.fields.text).toEqual(["该字段不能为空。"]);
    expect(api.showError(error)).toBe("输入无效。");
    expect(fake.toasts).toEqual(["输入无效。"]);
  });

  test("server down (request fails) is a network error in Chinese, never a crash", async () => {
    loggedIn();
    fake.respond = () => "fail";
    const error = await api.get("/api/me/").catch((e) => e);
    expect(error.code).toBe("network");
    expect(error.message).toBe("网络连接失败，请检查网络后重试");
  });

  test("an HTML 502 from a proxy becomes a Chinese server message", async () => {
    loggedIn();
    fake.respond = () => json(502, "<html>Bad Gateway</html>");
    const error = await api.get("/api/me/").catch((e) => e);
    expect(error.status).toBe(502);
    expect(error.message).toBe("服务暂时不可用，请稍后再试");
  });

  test("a 200 that is not JSON is refused instead of handed to the page", async () => {
    loggedIn();
    fake.respond = () => json(200, "<html>captive portal</html>");
    const error = await api.get("/api/me/").catch((e) => e);
    expect(error.code).toBe("bad_response");
  });

  test("showError never leaks a JavaScript error's English text", () => {
    expect(api.showError(new TypeError("x is undefined"))).toBe("出错了，请稍后再试");
  });
});

describe("login", () => {
  test("wx.login() code goes to the configured login path and the pair is stored", async () => {
    fake.respond = (req) => json(200, { access: "A", refresh: "R", user: { id: 1 } });
    const user = await api.login();
    expect(user).toEqual({ id: 1 });
    expect(fake.requests[0].url).toBe("http://api.test/api/auth/dev-login/");
    expect(fake.requests[0].data).toEqual({ code: "code-1" });
    expect(fake.requests[0].header.Authorization).toBeUndefined();
    expect(api.getTokens()).toMatchObject({ access: "A", refresh: "R" });
  });

  test("production config logs in through /api/auth/wechat/", async () => {
    require("../../utils/config").setConfig({ loginPath: "/api/auth/wechat/" });
    fake.respond = () => json(200, { access: "A", refresh: "R", user: null });
    await api.login();
    expect(fake.requests[0].url).toBe("http://api.test/api/auth/wechat/");
  });

  test("concurrent logins share one wx.login() and one request", async () => {
    fake.respond = () => json(200, { access: "A", refresh: "R" });
    await Promise.all([api.ensureLogin(), api.ensureLogin(), api.login()]);
    expect(fake.requests).toHaveLength(1);
  });

  test("wx.login failing is reported in Chinese", async () => {
    fake.loginFails = true;
    const error = await api.login().catch((e) => e);
    expect(error.message).toBe("登录失败，请稍后重试");
  });
});

describe("token refresh", () => {
  test("a 401 refreshes once, stores the rotated pair and retries with the new access token", async () => {
    loggedIn("OLD", "R1");
    fake.respond = (req) => {
      if (req.url.endsWith("/api/auth/token/refresh/")) return json(200, { access: "NEW", refresh: "R2" });
      return req.header.Authorization === "Bearer NEW" ? json(200, { ok: true }) : json(401, { error: { code: "token_not_valid", message: "令牌无效" } });
    };
    expect(await api.get("/api/me/")).toEqual({ ok: true });
    expect(api.getTokens()).toMatchObject({ access: "NEW", refresh: "R2" });
    const refreshCalls = fake.requests.filter((r) => r.url.endsWith("/token/refresh/"));
    expect(refreshCalls).toHaveLength(1);
    expect(refreshCalls[0].data).toEqual({ refresh: "R1" });
  });

  test("five requests failing at once share a single in-flight refresh", async () => {
    loggedIn("OLD", "R1");
    let releaseRefresh;
    fake.respond = (req) => {
      if (req.url.endsWith("/token/refresh/")) {
        return new Promise((resolve) => {
          releaseRefresh = () => resolve(json(200, { access: "NEW", refresh: "R2" }));
        });
      }
      return req.header.Authorization === "Bearer NEW" ? json(200, { url: req.url }) : json(401, {});
    };
    const pending = [1, 2, 3, 4, 5].map((n) => api.get("/api/conversations/" + n + "/"));
    await flush();
    expect(fake.requests.filter((r) => r.url.endsWith("/token/refresh/"))).toHaveLength(1);
    releaseRefresh();
    const results = await Promise.all(pending);
    expect(results.map((r) => r.url)).toEqual([1, 2, 3, 4, 5].map((n) => "http://api.test/api/conversations/" + n + "/"));
    expect(fake.requests.filter((r) => r.url.endsWith("/token/refresh/"))).toHaveLength(1);
  });

  test("a refused refresh (expired/blacklisted) clears the tokens and signals auth lost", async () => {
    loggedIn("OLD", "R1");
    const lost = jest.fn();
    api.onAuthLost(lost);
    fake.respond = (req) =>
      req.url.endsWith("/token/refresh/")
        ? json(401, { error: { code: "token_not_valid", message: "令牌无效或已过期" } })
        : json(401, {});
    const error = await api.get("/api/me/").catch((e) => e);
    expect(error.code).toBe("auth_lost");
    expect(error.message).toBe("登录已过期，请重新登录");
    expect(api.getTokens()).toBeNull();
    expect(lost).toHaveBeenCalledTimes(1);
  });

  test("still 401 after a successful refresh: auth lost, no loop", async () => {
    loggedIn("OLD", "R1");
    fake.respond = (req) =>
      req.url.endsWith("/token/refresh/") ? json(200, { access: "NEW", refresh: "R2" }) : json(401, {});
    const error = await api.get("/api/me/").catch((e) => e);
    expect(error.code).toBe("auth_lost");
    expect(fake.requests).toHaveLength(3);
  });

  test("refresh while the server is down keeps the tokens (try again later)", async () => {
    loggedIn("OLD", "R1");
    fake.respond = (req) => (req.url.endsWith("/token/refresh/") ? "fail" : json(401, {}));
    const error = await api.get("/api/me/").catch((e) => e);
    expect(error.code).toBe("network");
    expect(api.getTokens()).toMatchObject({ refresh: "R1" });
  });
});

describe("429 Retry-After", () => {
  test("the server's message is shown and the same call is refused locally until Retry-After passes", async () => {
    jest.useFakeTimers({ now: new Date("2026-12-03T08:00:00Z"), doNotFake: ["queueMicrotask"] });
    loggedIn();
    fake.respond = () =>
      json(429, { error: { code: "rate_limited", message: "请求过于频繁，请稍后再试。" } }, { "retry-after": "60" });
    const first = await api.post("/api/conversations/1/messages/", { text: "a" }).catch((e) => e);
    expect(first.status).toBe(429);
    expect(first.retryAfter).toBe(60);
    expect(first.message).toBe("请求过于频繁，请稍后再试。");
    const second = await api.post("/api/conversations/1/messages/", { text: "b" }).catch((e) => e);
    expect(second.code).toBe("rate_limited");
    expect(second.message).toBe("操作太频繁，请 60 秒后再试");
    expect(fake.requests).toHaveLength(1); // the server was not asked again
    // Other endpoints are not blocked.
    fake.respond = () => json(200, { ok: true });
    await expect(api.get("/api/me/")).resolves.toEqual({ ok: true });
    jest.setSystemTime(new Date("2026-12-03T08:01:01Z"));
    await expect(api.post("/api/conversations/1/messages/", { text: "c" })).resolves.toEqual({ ok: true });
  });

  test("Retry-After as seconds, HTTP date or garbage", () => {
    expect(api.parseRetryAfter("7")).toBe(7);
    expect(api.parseRetryAfter(undefined)).toBe(5);
    expect(api.parseRetryAfter("soon")).toBe(5);
    const inTen = new Date(Date.now() + 10000).toUTCString();
    expect(api.parseRetryAfter(inTen)).toBeGreaterThanOrEqual(9);
  });
});

describe("upload", () => {
  test("uploads multipart with the token and parses the string body; 401 refreshes like requests", async () => {
    loggedIn("OLD", "R1");
    fake.respond = () => json(200, { access: "NEW", refresh: "R2" });
    fake.respondUpload = (req) =>
      req.header.Authorization === "Bearer NEW"
        ? json(201, JSON.stringify({ message: { id: 9 } }))
        : json(401, JSON.stringify({ error: { code: "token_not_valid", message: "x" } }));
    const body = await api.upload("/api/conversations/1/messages/", {
      filePath: "wxfile://a.mp3",
      name: "audio",
      formData: { client_id: "c1" },
    });
    expect(body).toEqual({ message: { id: 9 } });
    expect(fake.uploads[1]).toMatchObject({ name: "audio", filePath: "wxfile://a.mp3", formData: { client_id: "c1" } });
  });
});
