// Web chat page: the mini-program's flow in a browser. Dev login -> JWT kept in memory ->
// resume/start a conversation -> messages over HTTP, live events over the chat WebSocket
// (polling fallback). Plain JS, no build step, no inline handlers (CSP-friendly).
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const box = document.getElementById("messages");
  const form = document.getElementById("send-form");
  const input = document.getElementById("text");
  const sendError = document.getElementById("send-error");
  const statusLine = document.getElementById("status");
  const loginButton = document.getElementById("login");
  const t = box.dataset;
  const senders = { customer: t.i18nCustomer, agent: t.i18nAgent, bot: t.i18nBot, system: t.i18nSystem };

  let access = "";
  let conversation = null;
  let lastId = 0;
  let pollTimer = null;
  let newestReplyId = 0;
  let playedId = 0;

  function setStatus(state, text) {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
  }

  // --- HTTP -------------------------------------------------------------------------------
  async function login() {
    const response = await fetch(config.devLoginUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code: "web-chat" }),
    });
    if (!response.ok) throw new Error("login failed: " + response.status);
    access = (await response.json()).access;
  }

  async function api(url, options, retried) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ Authorization: "Bearer " + access }, opts.headers);
    const response = await fetch(url, opts);
    if (response.status === 401 && !retried) {
      await login();  // the access token expired (15 min): the demo login is free to repeat
      return api(url, options, true);
    }
    return response;
  }

  function messagesUrl(after) {
    return config.conversationsUrl + conversation.id + "/messages/?after=" + after;
  }

  async function fetchMessages(after) {
    let url = messagesUrl(after);
    while (url) {
      const response = await api(url);
      if (!response.ok) return;
      const page = await response.json();
      page.results.forEach(upsert);
      url = page.next;
    }
  }

  // --- rendering --------------------------------------------------------------------------
  function renderAudio(wrapper, m) {
    const audio = m.audio;  // the same shape from the API and from WebSocket events
    let slot = wrapper.querySelector(".audio");
    if (!slot) {
      slot = document.createElement("div");
      slot.className = "audio";
      wrapper.appendChild(slot);
    }
    wrapper.dataset.audioStatus = audio.status;
    if (audio.status === "ready" && audio.url) {
      let player = slot.querySelector("audio");
      if (!player) {
        slot.textContent = "";
        player = document.createElement("audio");
        player.controls = true;
        player.preload = "auto";
        slot.appendChild(player);
      }
      if (player.getAttribute("src") !== audio.url) player.src = audio.url;
      if (m.id === newestReplyId && playedId !== m.id) {
        playedId = m.id;
        // Autoplay is allowed only after a user gesture on most browsers: ignore a refusal.
        const attempt = player.play();
        if (attempt && attempt.catch) attempt.catch(function () {});
      }
    } else if (audio.status === "pending") {
      slot.textContent = t.i18nPending;
      slot.className = "audio muted";
    } else if (audio.status === "failed") {
      slot.textContent = t.i18nFailed;
      slot.className = "audio muted";
    }
  }

  function upsert(m) {
    let wrapper = box.querySelector('[data-message-id="' + m.id + '"]');
    const isNew = !wrapper;
    if (isNew) {
      wrapper = document.createElement("div");
      wrapper.className = "msg from-" + m.sender_kind;
      wrapper.dataset.messageId = m.id;
      wrapper.dataset.sender = m.sender_kind;
      const meta = document.createElement("div");
      meta.className = "muted meta";
      meta.textContent = [senders[m.sender_kind] || m.sender_kind, m.author, new Date(m.created_at).toLocaleTimeString()]
        .filter(Boolean).join(" · ");
      wrapper.appendChild(meta);
      const bubble = document.createElement("div");
      bubble.className = "bubble";
      bubble.textContent = m.text;
      wrapper.appendChild(bubble);
      box.appendChild(wrapper);
      if (m.sender_kind !== "customer" && m.id > newestReplyId) newestReplyId = m.id;
    }
    if (m.sender_kind !== "customer") renderAudio(wrapper, m);
    lastId = Math.max(lastId, m.id);
    if (isNew) box.scrollTop = box.scrollHeight;
  }

  // --- live updates -----------------------------------------------------------------------
  function pollFrom() {
    // Re-read from the oldest reply still waiting for audio, so its URL arrives too.
    const pending = box.querySelectorAll('[data-audio-status="pending"]');
    return pending.length ? Number(pending[0].dataset.messageId) - 1 : lastId;
  }

  function startPolling() {
    if (!pollTimer) pollTimer = setInterval(function () { fetchMessages(pollFrom()); }, 3000);
  }

  function connect(attempt) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const path = config.wsPathTemplate.replace("{id}", conversation.id);
    let socket;
    try {
      socket = new WebSocket(scheme + location.host + path + "?token=" + encodeURIComponent(access));
    } catch (e) {
      startPolling();
      return;
    }
    socket.onopen = function () {
      setStatus("live", t.i18nConnected);
      if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
      fetchMessages(pollFrom());  // catch up on anything sent while connecting
    };
    socket.onmessage = function (event) {
      const data = JSON.parse(event.data);
      if ((data.type === "message.created" || data.type === "message.audio_ready") && data.message) {
        upsert(data.message);
      }
    };
    socket.onclose = function (event) {
      setStatus("polling", t.i18nPolling);
      startPolling();
      if (event.code === 4403 || event.code === 4404) return;  // refused for good
      // 4401: the token expired; the next api() call refreshes it before we reconnect.
      setTimeout(async function () {
        if (event.code === 4401) await login();
        connect(attempt + 1);
      }, Math.min(30000, 1000 * 2 ** attempt));
    };
  }

  // --- sending ----------------------------------------------------------------------------
  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  async function send(text) {
    // The same client_id on the retry: the server stores the message at most once.
    const body = JSON.stringify({ text: text, client_id: newClientId() });
    const post = function () {
      return api(config.conversationsUrl + conversation.id + "/messages/", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: body,
      });
    };
    let response;
    try {
      response = await post();
    } catch (e) {
      response = await post();  // a dropped connection: retry once, idempotently
    }
    const data = await response.json();
    if (!response.ok) throw new Error((data.error && data.error.message) || t.i18nSendFailed);
    upsert(data.message);
    if (data.bot_reply) upsert(data.bot_reply);
  }

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    sendError.textContent = "";
    form.querySelector("button").disabled = true;
    try {
      await send(text);
      input.value = "";
    } catch (err) {
      sendError.textContent = err.message || t.i18nSendFailed;
    } finally {
      form.querySelector("button").disabled = false;
    }
  });

  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  // --- start ------------------------------------------------------------------------------
  async function start() {
    await login();
    const response = await api(config.conversationsUrl, { method: "POST" });
    if (!response.ok) throw new Error("conversation: " + response.status);
    conversation = await response.json();
    document.body.dataset.conversationId = conversation.id;
    document.getElementById("login-box").hidden = true;
    box.hidden = false;
    form.hidden = false;
    await fetchMessages(0);
    connect(0);
    input.focus();
  }

  if (loginButton) {
    loginButton.addEventListener("click", function () {
      loginButton.disabled = true;
      start().catch(function (err) {
        loginButton.disabled = false;
        sendError.textContent = err.message;
      });
    });
  }
})();
