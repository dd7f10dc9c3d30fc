// Where the platform lives, per mini-program environment. Nothing secret belongs here: the
// AppSecret stays on the server (WECHAT_SECRET), the client only ever sends wx.login()'s code.
//
// develop: `make run` on this machine (DevTools: 详情 → 本地设置 → 不校验合法域名…).
// trial / release: the production domain, which must be whitelisted in the mini-program console
// (开发管理 → 开发设置 → 服务器域名: request / uploadFile / downloadFile = https://…, socket = wss://…).
const ENVIRONMENTS = {
  develop: {
    baseUrl: "http://127.0.0.1:8000",
    // `make run` has no WeChat AppID/secret: DEBUG=1 + WECHAT_DEV_LOGIN=1 enable the demo login.
    loginPath: "/api/auth/dev-login/",
  },
  trial: { baseUrl: "https://cs.example.com", loginPath: "/api/auth/wechat/" },
  release: { baseUrl: "https://cs.example.com", loginPath: "/api/auth/wechat/" },
};

let override = null;

function envVersion() {
  try {
    return wx.getAccountInfoSync().miniProgram.envVersion || "develop";
  } catch (e) {
    return "develop";
  }
}

function getConfig() {
  const base = ENVIRONMENTS[envVersion()] || ENVIRONMENTS.develop;
  const config = Object.assign({}, base, override || {});
  config.baseUrl = config.baseUrl.replace(/\/+$/, "");
  // ws:// for http, wss:// for https: the mini-program console only accepts wss:// domains.
  config.wsBaseUrl = config.baseUrl.replace(/^http/, "ws");
  return config;
}

// Tests and special builds point the client elsewhere (e.g. a LAN address for a real phone).
function setConfig(values) {
  override = values ? Object.assign({}, override || {}, values) : null;
}

module.exports = { ENVIRONMENTS, getConfig, setConfig };
