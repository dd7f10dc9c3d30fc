// The chat WebSocket (/ws/chat/{id}/?token=JWT): live events for one conversation.
//
// The socket is only a fast path: every (re)connect is followed by a catch-up over HTTP
// (GET .../messages/?after=<last id>), so nothing sent while we were away is lost, and the page
// deduplicates by message id, so nothing arrives twice. A ping every 20 s keeps proxies from
// closing an idle socket and tells us when the connection silently died.
const api = require("./api");
const { getConfig } = require("./config");

const CLOSE_UNAUTHENTICATED = 4401;
const CLOSE_FORBIDDEN = 4403;
const CLOSE_NOT_FOUND = 4404;
const SEEN_EVENT_IDS = 500;

class ChatSocket {
  constructor(options) {
    this.conversationId = options.conversationId;
    this.onEvent = options.onEvent || function () {};
    this.onStateChange = options.onStateChange || function () {};
    this.onCatchUp = options.onCatchUp || function () {};
    this.onMalformed = options.onMalformed || function () {};
    this.heartbeatMs = options.heartbeatMs || 20000;
    // No frame at all (not even our pong) for this long: the connection is dead.
    this.silenceMs = options.silenceMs || 45000;
    this.backoffBaseMs = options.backoffBaseMs || 1000;
    this.backoffMaxMs = options.backoffMaxMs || 30000;
    this.random = options.random || Math.random;
    this.state = "idle";
    this.attempt = 0;
    this.task = null;
    this.generation = 0;
    this.timers = { reconnect: null, heartbeat: null };
    this.lastFrameAt = 0;
    this.seenEventIds = [];
    this.stopped = false;
    this.malformedCount = 0;
    this.networkListener = this.handleNetworkChange.bind(this);
  }

  start() {
    this.stopped = false;
    if (wx.onNetworkStatusChange) wx.onNetworkStatusChange(this.networkListener);
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.clearTimers();
    if (wx.offNetworkStatusChange) wx.offNetworkStatusChange(this.networkListener);
    this.closeTask(1000);
    this.setState("closed");
  }

  setState(state, detail) {
    if (this.state === state) return;
    this.state = state;
    this.onStateChange(state, detail || {});
  }

  clearTimers() {
    clearTimeout(this.timers.reconnect);
    clearInterval(this.timers.heartbeat);
    this.timers.reconnect = null;
    this.timers.heartbeat = null;
  }

  closeTask(code) {
    const task = this.task;
    this.task = null;
    this.generation += 1; // events of the old task are ignored from now on
    if (task) {
      try {
        task.close({ code: code || 1000 });
      } catch (e) {
        // already closed
      }
    }
  }

  url() {
    const tokens = api.getTokens();
    const token = tokens ? tokens.access : "";
    return (
      getConfig().wsBaseUrl +
      "/ws/chat/" +
      this.conversationId +
      "/?token=" +
      encodeURIComponent(token)
    );
  }

  // Refresh an expired (or unreadable) access token before the handshake, then connect.
  connect() {
    if (this.stopped) return;
    if (api.accessTokenFresh()) {
      this.open();
      return;
    }
    this.clearTimers();
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    api.refreshTokens().then(
      () => this.open(),
      (error) => {
        if (this.stopped) return;
        if (error && error.code === "auth_lost") this.setState("closed", { authLost: true });
        else this.scheduleReconnect(0);
      }
    );
  }

  open() {
    if (this.stopped) return;
    this.clearTimers();
    this.closeTask(1000);
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    const generation = this.generation;
    const mine = () => generation === this.generation && !this.stopped;
    let task;
    try {
      task = wx.connectSocket({
        url: this.url(),
        fail: () => {
          if (mine()) this.dropped(0);
        },
      });
    } catch (e) {
      this.dropped(0);
      return;
    }
    if (!task) {
      this.dropped(0);
      return;
    }
    this.task = task;
    task.onOpen(() => {
      if (!mine()) return;
      this.attempt = 0;
      this.lastFrameAt = Date.now();
      this.startHeartbeat();
      this.setState("online");
      this.onCatchUp();
    });
    task.onMessage((frame) => {
      if (!mine()) return;
      this.lastFrameAt = Date.now();
      this.handleFrame(frame && frame.data);
    });
    task.onClose((result) => {
      if (!mine()) return;
      this.task = null;
      this.dropped((result && result.code) || 0);
    });
    task.onError(() => {
      // onClose follows on every platform; handling the error there keeps one code path.
    });
  }

  handleFrame(data) {
    let event = null;
    if (typeof data === "string") {
      try {
        event = JSON.parse(data);
      } catch (e) {
        event = null;
      }
    }
    if (!event || typeof event !== "object" || Array.isArray(event) || typeof event.type !== "string") {
      // A frame we cannot read: count it, tell the page, carry on. Never throw from here.
      this.malformedCount += 1;
      this.onMalformed(data);
      return;
    }
    if (event.type === "pong") return;
    if (typeof event.event_id === "number") {
      if (this.seenEventIds.indexOf(event.event_id) >= 0) return; // delivered twice
      this.seenEventIds.push(event.event_id);
      if (this.seenEventIds.length > SEEN_EVENT_IDS) this.seenEventIds.shift();
    }
    try {
      this.onEvent(event);
    } catch (e) {
      this.malformedCount += 1;
      this.onMalformed(data);
    }
  }

  // "The customer is typing" for the agent's console; at most one every 3 s (the server limits
  // frames per socket, and the agent needs no more).
  sendTyping() {
    const now = Date.now();
    if (!this.task || this.state !== "online" || now - (this.lastTypingAt || 0) < 3000) return false;
    this.lastTypingAt = now;
    try {
      this.task.send({ data: JSON.stringify({ type: "typing" }) });
    } catch (e) {
      return false;
    }
    return true;
  }

  startHeartbeat() {
    clearInterval(this.timers.heartbeat);
    this.timers.heartbeat = setInterval(() => {
      if (!this.task) return;
      if (Date.now() - this.lastFrameAt > this.silenceMs) {
        this.closeTask(4000);
        this.dropped(0);
        return;
      }
      try {
        this.task.send({ data: JSON.stringify({ type: "ping" }) });
      } catch (e) {
        // the close handler reconnects
      }
    }, this.heartbeatMs);
  }

  backoffDelay() {
    const ceiling = Math.min(this.backoffMaxMs, this.backoffBaseMs * Math.pow(2, this.attempt));
    // Jitter: after a server restart, thousands of phones must not reconnect in the same second.
    return Math.round(ceiling / 2 + (ceiling / 2) * this.random());
  }

  dropped(code) {
    this.clearTimers();
    if (this.stopped) return;
    if (code === CLOSE_FORBIDDEN || code === CLOSE_NOT_FOUND) {
      this.setState("closed", { code });
      return;
    }
    if (code === CLOSE_UNAUTHENTICATED) {
      // The access token expired while connected: refresh once, then reconnect at once.
      this.setState("reconnecting", { attempt: this.attempt, code });
      api.refreshTokens().then(
        () => {
          this.attempt += 1;
          this.open();
        },
        (error) => {
          if (error && error.code === "auth_lost") this.setState("closed", { code, authLost: true });
          else this.scheduleReconnect(code);
        }
      );
      return;
    }
    this.scheduleReconnect(code);
  }

  scheduleReconnect(code) {
    const delay = this.backoffDelay();
    this.attempt += 1;
    this.setState("offline", { code, retryInMs: delay });
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }

  handleNetworkChange(result) {
    // Back online: don't wait out the backoff.
    if (result && result.isConnected) this.reconnectNow();
  }

  // The page is shown again (WeChat may have dropped the socket in the background).
  reconnectNow() {
    if (this.stopped || this.state === "online" || this.state === "connecting") return;
    this.attempt = 0;
    this.connect();
  }
}

module.exports = { ChatSocket, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED };
