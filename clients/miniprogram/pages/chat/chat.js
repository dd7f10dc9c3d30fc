// The chat page. Built with Component() (a page constructor WeChat supports) so the official
// component test tool, miniprogram-simulate, can render it in unit tests.
//
// Flow: wx.login() -> JWT -> resume/start the conversation -> history -> the chat socket (live
// events, catch-up over HTTP after every reconnect). Errors never escape: each one becomes a
// Chinese toast or an on-page state with a retry button.
const api = require("../../utils/api");
const { MessageStore } = require("../../utils/messages");
const { ChatSocket } = require("../../utils/socket");
const { VoicePlayer } = require("../../utils/audio");
const { HoldToTalk } = require("../../utils/recorder");
const { conversationView } = require("../../utils/conversation");

const TEXT = {
  loading: "正在连接客服…",
  relogin: "登录已过期，正在重新登录…",
  offline: "网络已断开，正在重新连接…",
  closed: "连接已关闭",
  malformed: "收到无法识别的消息，已忽略",
  sendFailed: "发送失败，点击重试",
  handoffDone: "已为您转接人工客服",
  csatThanks: "感谢您的评价",
  csatPick: "请先选择评分",
  holdToTalk: "按住 说话",
  releaseToSend: "松开 发送",
  releaseToCancel: "松开手指，取消发送",
  typing: "对方正在输入…",
};
const CANCEL_SLIDE_PX = 60;
const MAX_CATCH_UP_PAGES = 20;

function newClientId() {
  return "mp-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
}

Component({
  data: {
    phase: "loading", // loading | ready | error
    phaseText: TEXT.loading,
    messages: [],
    connection: "idle",
    connectionText: "",
    conversation: null,
    draft: "",
    inputMode: "text",
    recording: false,
    recordCancel: false,
    holdText: TEXT.holdToTalk,
    playingId: null,
    typingText: "",
    csat: { visible: false, rating: 0, comment: "", submitting: false, submitted: false },
    stars: [1, 2, 3, 4, 5],
    handoffBusy: false,
    sending: false,
    scrollInto: "",
  },

  lifetimes: {
    attached() {
      this.store = new MessageStore();
      this.historyMaxId = 0;
      this.autoplayId = null;
      this.socket = null;
      this.recorder = null;
      this.player = new VoicePlayer((playingId) => this.setData({ playingId }));
      this.offAuthLost = api.onAuthLost(() => this.authLost());
    },
    detached() {
      this.teardown();
    },
  },

  methods: {
    // --- page lifecycle (Component-built pages get these as methods) --------------------------
    onLoad() {
      return this.start();
    },

    onUnload() {
      this.teardown();
    },

    onHide() {
      this.player.stop();
    },

    onShow() {
      if (this.socket) this.socket.reconnectNow();
    },

    teardown() {
      if (this.socket) this.socket.stop();
      this.socket = null;
      if (this.player) this.player.destroy();
      if (this.offAuthLost) this.offAuthLost();
      this.offAuthLost = null;
      clearTimeout(this.typingTimer);
    },

    async start() {
      if (this.socket) {
        this.socket.stop();
        this.socket = null;
      }
      this.setData({ phase: "loading", phaseText: this.relogging ? TEXT.relogin : TEXT.loading });
      try {
        await api.ensureLogin();
        const conversation = await api.post("/api/conversations/");
        this.conversationId = conversation.id;
        this.applyConversation(conversation);
        this.store = new MessageStore();
        this.live = false;
        await this.fetchMessages(0);
        this.historyMaxId = this.store.lastId;
        this.live = true;
        this.relogging = false;
        this.setData({ phase: "ready" });
        this.render(true);
        this.connect();
      } catch (error) {
        this.relogging = false;
        this.setData({ phase: "error", phaseText: error && error.message ? error.message : api.TEXT.unknown });
      }
    },

    onRetry() {
      return this.start();
    },

    authLost() {
      // 401 after the refresh token expired (or was revoked): back to login, once.
      if (this.relogging) return;
      this.relogging = true;
      if (this.socket) this.socket.stop();
      this.socket = null;
      wx.showToast({ title: TEXT.relogin, icon: "none" });
      this.pendingRestart = this.start();
    },

    // --- socket -------------------------------------------------------------------------------
    connect() {
      this.socket = new ChatSocket({
        conversationId: this.conversationId,
        onEvent: (event) => this.handleEvent(event),
        onStateChange: (state, detail) => this.connectionChanged(state, detail),
        onCatchUp: () => this.catchUp(),
        onMalformed: () => {
          // Tell the user once per page, not per frame.
          if (!this.malformedShown) {
            this.malformedShown = true;
            wx.showToast({ title: TEXT.malformed, icon: "none" });
          }
        },
      });
      this.socket.start();
    },

    connectionChanged(state, detail) {
      let text = "";
      if (state === "offline" || state === "reconnecting") text = TEXT.offline;
      if (state === "closed" && !(detail && detail.authLost) && this.socket) text = TEXT.closed;
      this.setData({ connection: state, connectionText: text });
    },

    handleEvent(event) {
      const type = event.type;
      if (type.indexOf("message.") === 0) {
        if (!event.message) return;
        const outcome = this.upsert(event.message);
        if (outcome !== "ignored") this.render(outcome === "added");
      } else if (type === "conversation.updated") {
        if (!event.conversation) return;
        this.conversationEvents = (this.conversationEvents || 0) + 1;
        this.applyConversation(event.conversation);
      } else if (type === "csat.requested") {
        this.showCsat();
      } else if (type === "typing") {
        if (event.sender_kind && event.sender_kind !== "customer") this.showTyping();
      }
    },

    showTyping() {
      clearTimeout(this.typingTimer);
      this.setData({ typingText: TEXT.typing });
      this.typingTimer = setTimeout(() => this.setData({ typingText: "" }), 5000);
    },

    // Catch up after (re)connecting: everything after the last message we have, and again
    // anything whose audio was still pending (its audio_ready event may have been missed).
    async catchUp() {
      try {
        await this.fetchMessages(this.catchUpFrom());
        if (this.conversationId) {
          // An event that arrives while this GET is under way is newer than its answer.
          const seen = this.conversationEvents || 0;
          const conversation = await api.get("/api/conversations/" + this.conversationId + "/");
          if ((this.conversationEvents || 0) === seen) this.applyConversation(conversation);
        }
      } catch (error) {
        if (error && error.code !== "auth_lost") api.showError(error);
      }
    },

    catchUpFrom() {
      const pending = this.store.items.find(function (m) {
        return m.id > 0 && m.audio.status === "pending";
      });
      return pending ? pending.id - 1 : this.store.lastId;
    },

    async fetchMessages(after) {
      let url = "/api/conversations/" + this.conversationId + "/messages/?after=" + after;
      for (let page = 0; url && page < MAX_CATCH_UP_PAGES; page += 1) {
        const body = await api.get(url);
        const results = body && Array.isArray(body.results) ? body.results : [];
        results.forEach((raw) => this.upsert(raw));
        url = body && typeof body.next === "string" ? body.next : null;
      }
      this.render(true);
    },

    // --- messages -----------------------------------------------------------------------------
    // Store a message (no rendering: callers render once per batch).
    upsert(raw) {
      const outcome = this.store.upsert(raw);
      if (outcome === "ignored") return outcome;
      const message = this.store.find(Number(raw.id));
      if (message && outcome === "added" && !message.mine && this.live && message.id > this.historyMaxId) {
        // Only replies that arrive while the page is open may play by themselves.
        if (!this.autoplayId || message.id > this.autoplayId) this.autoplayId = message.id;
      }
      if (
        message &&
        message.id === this.autoplayId &&
        message.audio.status === "ready" &&
        message.audio.url
      ) {
        this.autoplayId = null;
        if (this.player.playingId === null) this.player.play(message.id, message.audio.url);
      }
      return outcome;
    },

    render(scroll) {
      const items = this.store.items;
      const data = { messages: items.slice() };
      if (scroll && items.length) data.scrollInto = "msg-" + String(items[items.length - 1].id).replace("-", "n");
      this.setData(data);
    },

    applyConversation(raw) {
      const conversation = conversationView(raw);
      if (!conversation) return;
      this.setData({ conversation });
      if (conversation.status === "resolved" && !conversation.csatGiven && !this.data.csat.submitted) {
        this.showCsat();
      }
    },

    // --- sending text -------------------------------------------------------------------------
    onInput(event) {
      this.setData({ draft: event.detail.value });
      if (this.socket && event.detail.value) this.socket.sendTyping();
    },

    async onSend() {
      const text = (this.data.draft || "").trim();
      if (!text || this.data.sending) return;
      const clientId = newClientId();
      this.store.addLocal({ clientId, text });
      this.setData({ draft: "" });
      this.render(true);
      await this.postText(clientId, text);
    },

    async postText(clientId, text) {
      this.setData({ sending: true });
      try {
        const body = await api.post("/api/conversations/" + this.conversationId + "/messages/", {
          text,
          client_id: clientId,
        });
        this.acceptPostAnswer(body, clientId);
      } catch (error) {
        this.sendFailed(clientId, error);
      } finally {
        this.setData({ sending: false });
      }
    },

    acceptPostAnswer(body, clientId) {
      if (body && body.message) this.upsert(body.message);
      else this.store.setSendState(clientId, "sent");
      if (body && body.bot_reply) this.upsert(body.bot_reply);
      this.render(true);
    },

    sendFailed(clientId, error) {
      this.store.setSendState(clientId, "failed");
      this.render(false);
      if (!error || error.code !== "auth_lost") api.showError(error);
    },

    // Tap a failed bubble: send it again with the same client_id (stored at most once).
    async onResend(event) {
      const id = Number(event.currentTarget.dataset.id);
      const message = this.store.find(id);
      if (!message || message.sendState !== "failed") return;
      this.store.setSendState(message.clientId, "sending");
      this.render(false);
      if (message.kind === "voice") await this.uploadVoice(message.clientId, message.voice);
      else await this.postText(message.clientId, message.text);
    },

    // --- voice playback ----------------------------------------------------------------------
    onTapVoice(event) {
      const id = Number(event.currentTarget.dataset.id);
      const message = this.store.find(id);
      if (!message) return;
      const url = message.kind === "voice" && message.voice ? message.voice.url : message.audio.url;
      if (!url) return;
      this.autoplayId = null; // the user chose: no surprise autoplay afterwards
      this.player.toggle(id, url);
    },

    // --- hold to talk -------------------------------------------------------------------------
    onToggleMode() {
      this.setData({ inputMode: this.data.inputMode === "text" ? "voice" : "text" });
    },

    ensureRecorder() {
      if (this.recorder) return this.recorder;
      this.recorder = new HoldToTalk({
        onRecorded: (result) => this.sendVoice(result),
        onError: (message) => wx.showToast({ title: message, icon: "none" }),
        onStateChange: (recording) => {
          if (!recording) this.setData({ recording: false, recordCancel: false, holdText: TEXT.holdToTalk });
        },
      });
      return this.recorder;
    },

    onHoldStart(event) {
      const touch = event.touches && event.touches[0];
      this.holdStartY = touch ? touch.clientY : 0;
      this.player.stop();
      this.ensureRecorder().start();
      this.setData({ recording: true, recordCancel: false, holdText: TEXT.releaseToSend });
    },

    onHoldMove(event) {
      const touch = event.touches && event.touches[0];
      if (!touch || !this.data.recording) return;
      const cancel = this.holdStartY - touch.clientY > CANCEL_SLIDE_PX;
      if (cancel !== this.data.recordCancel) {
        this.setData({ recordCancel: cancel, holdText: cancel ? TEXT.releaseToCancel : TEXT.releaseToSend });
      }
    },

    onHoldEnd() {
      if (!this.recorder) return;
      if (this.data.recordCancel) this.recorder.cancel();
      else this.recorder.stop();
      this.setData({ recording: false, holdText: TEXT.holdToTalk });
    },

    async sendVoice({ filePath, durationMs }) {
      const clientId = newClientId();
      const voice = { url: filePath, durationMs, durationLabel: Math.max(1, Math.round(durationMs / 1000)) + '"' };
      this.store.addLocal({ clientId, kind: "voice", voice });
      this.render(true);
      await this.uploadVoice(clientId, voice);
    },

    async uploadVoice(clientId, voice) {
      try {
        const body = await api.upload("/api/conversations/" + this.conversationId + "/messages/", {
          filePath: voice.url,
          name: "audio",
          formData: { client_id: clientId, format: "mp3" },
        });
        this.acceptPostAnswer(body, clientId);
      } catch (error) {
        this.sendFailed(clientId, error);
      }
    },

    // --- 转人工 -------------------------------------------------------------------------------
    async onHandoff() {
      if (this.data.handoffBusy || !this.conversationId) return;
      this.setData({ handoffBusy: true });
      try {
        const conversation = await api.post("/api/conversations/" + this.conversationId + "/handoff/");
        this.applyConversation(conversation);
        wx.showToast({ title: TEXT.handoffDone, icon: "none" });
      } catch (error) {
        if (error && error.status === 404 && error.code !== "auth_lost") {
          // A server without the handoff endpoint still recognises the words in a message.
          const clientId = newClientId();
          this.store.addLocal({ clientId, text: "转人工" });
          this.render(true);
          await this.postText(clientId, "转人工");
        } else if (!error || error.code !== "auth_lost") {
          api.showError(error);
        }
      } finally {
        this.setData({ handoffBusy: false });
      }
    },

    // --- CSAT ---------------------------------------------------------------------------------
    showCsat() {
      if (this.data.csat.submitted || this.data.csat.visible) return;
      this.setData({ "csat.visible": true });
    },

    onRate(event) {
      this.setData({ "csat.rating": Number(event.currentTarget.dataset.rating) });
    },

    onCsatComment(event) {
      this.setData({ "csat.comment": event.detail.value });
    },

    async onSubmitCsat() {
      const { rating, comment, submitting } = this.data.csat;
      if (submitting) return;
      if (!rating) {
        wx.showToast({ title: TEXT.csatPick, icon: "none" });
        return;
      }
      this.setData({ "csat.submitting": true });
      try {
        await api.post("/api/conversations/" + this.conversationId + "/csat/", { rating, comment: comment || "" });
        this.setData({ "csat.submitted": true, "csat.visible": false });
        wx.showToast({ title: TEXT.csatThanks, icon: "none" });
      } catch (error) {
        if (!error || error.code !== "auth_lost") api.showError(error);
      } finally {
        this.setData({ "csat.submitting": false });
      }
    },

    onCloseCsat() {
      this.setData({ "csat.visible": false });
    },
  },
});
