// Web chat page: the mini-program's flow in a browser. Dev login -> JWT kept in memory ->
// resume/start a conversation -> messages over HTTP, live events over the chat WebSocket
// (polling fallback). Plain JS, no build step, no inline handlers (CSP-friendly).
//
// Rules the page keeps (see the tests in dialogs/tests/test_chat_page.py):
// - history never autoplays; only a reply first seen while the page is open may, once, and one
//   clip plays at a time (a new clip stops the previous one);
// - audio status only moves forward (none < pending < ready|failed), whatever order the POST
//   response and the `message.audio_ready` event arrive in;
// - a failed send keeps its client_id, so a retry is stored at most once (text and voice);
// - hold to talk: press 按住 说话, release to send; slide up (or leave the button) and release
//   to cancel; a press under config.voiceMinMs sends nothing; the server's limit stops it.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const box = document.getElementById("messages");
  const history = document.getElementById("history");
  const form = document.getElementById("send-form");
  const input = document.getElementById("text");
  const sendButton = document.getElementById("send");
  const sendError = document.getElementById("send-error");
  const statusLine = document.getElementById("status");
  const serving = document.getElementById("serving");
  const handoffButton = document.getElementById("handoff");
  const typingLine = document.getElementById("typing");
  const csatForm = document.getElementById("csat");
  const modeButton = document.getElementById("mode");
  const holdButton = document.getElementById("hold");
  const loginButton = document.getElementById("login");
  const t = box.dataset;
  const senders = { customer: t.i18nCustomer, agent: t.i18nAgent, bot: t.i18nBot, system: t.i18nSystem };
  const RANK = { none: 0, pending: 1, ready: 2, failed: 2 };
  const TIME_GAP_MS = 5 * 60 * 1000;

  let access = "";
  let conversation = null;
  const store = new Map();      // message id -> merged message
  let lastId = 0;
  let oldestId = null;
  let hasOlder = false;
  let loadingOlder = false;
  let booted = false;           // the first page is rendered: later messages are "live"
  const live = new Set();       // ids first seen while the page was open
  const autoplayed = new Set();
  let autoplayTimer = null;
  let pollTimer = null;
  let socket = null;
  let typingTimer = null;
  let lastTypingSent = 0;
  let csatRating = 0;

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key]; });
  }

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
    if (!response.ok) throw new Error(t.i18nSendFailed);
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

  function conversationUrl(suffix) {
    return config.conversationsUrl + conversation.id + "/" + (suffix || "");
  }

  async function fetchAfter(after) {
    let url = conversationUrl("messages/?after=" + after);
    while (url) {
      const response = await api(url);
      if (!response.ok) return;
      const page = await response.json();
      page.results.forEach(function (m) { upsert(m); });
      url = page.next;
    }
  }

  async function fetchInitial() {
    if (config.scrollBack) {
      // The newest page (oldest first inside it); earlier pages load on scroll.
      const response = await api(conversationUrl("messages/?before=" + ((conversation.last_message_id || 0) + 1)));
      if (response.ok) {
        const page = await response.json();
        page.results.forEach(function (m) { upsert(m); });
        hasOlder = Boolean(page.has_more !== undefined ? page.has_more : page.previous || page.next);
        if (!page.results.length) hasOlder = false;
        // Anything newer than the snapshot (a reply voiced meanwhile) comes with `after`.
        await fetchAfter(lastId);
        return;
      }
    }
    await fetchAfter(0);
  }

  async function loadOlder() {
    if (!hasOlder || loadingOlder || oldestId === null) return;
    loadingOlder = true;
    history.textContent = t.i18nEarlier;
    const before = box.scrollHeight - box.scrollTop;
    try {
      const response = await api(conversationUrl("messages/?before=" + oldestId));
      if (!response.ok) return;
      const page = await response.json();
      page.results.forEach(function (m) { upsert(m); });
      hasOlder = page.results.length > 0 && Boolean(page.has_more !== undefined ? page.has_more : page.previous || page.next);
      box.scrollTop = box.scrollHeight - before;  // keep what the reader was looking at in place
    } finally {
      loadingOlder = false;
      history.textContent = hasOlder ? "" : t.i18nNoEarlier;
    }
  }

  // --- message state ----------------------------------------------------------------------
  function audioOf(m) {
    // API messages carry `audio`; older WebSocket events carry only the flat fields.
    if (m.audio) return Object.assign({}, m.audio);
    return { status: m.audio_status || "none", url: m.audio_url || null, duration_ms: m.audio_duration_ms || null };
  }

  function merge(previous, incoming) {
    const next = Object.assign({}, previous || {}, incoming);
    const oldAudio = previous ? previous.audio : null;
    const newAudio = audioOf(incoming);
    if (oldAudio && (RANK[newAudio.status] || 0) < (RANK[oldAudio.status] || 0)) {
      next.audio = oldAudio;  // a late POST response or a stale poll: never go back
    } else {
      if (oldAudio && !newAudio.duration_ms && oldAudio.url === newAudio.url) newAudio.duration_ms = oldAudio.duration_ms;
      next.audio = newAudio;
    }
    if (previous && previous.transcript && incoming.transcript && previous.transcript.status !== "pending" &&
        incoming.transcript.status === "pending") {
      next.transcript = previous.transcript;
    }
    return next;
  }

  // --- rendering --------------------------------------------------------------------------
  function timeLabel(date) {
    const now = new Date();
    const hm = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
    if (date.toDateString() === now.toDateString()) return hm;
    const yesterday = new Date(now.getTime() - 86400000);
    if (date.toDateString() === yesterday.toDateString()) return t.i18nYesterday + " " + hm;
    return date.toLocaleDateString() + " " + hm;
  }

  function relabelTimes() {
    // WeChat shows a centred time when more than five minutes separate two messages.
    let previous = 0;
    box.querySelectorAll(".row[data-ts]").forEach(function (row) {
      const ts = Number(row.dataset.ts);
      const sep = row.previousElementSibling;
      const want = ts - previous > TIME_GAP_MS;
      const has = sep && sep.classList.contains("time-sep");
      if (want && !has) {
        const label = document.createElement("div");
        label.className = "time-sep";
        label.textContent = timeLabel(new Date(ts));
        row.before(label);
      } else if (!want && has) {
        sep.remove();
      }
      previous = ts;
    });
  }

  function senderName(m) {
    if (m.sender_kind === "agent") {
      // A nickname chosen by the agent (客服小李); never a username.
      return (config.staffNames && m.author) || senders.agent;
    }
    return senders[m.sender_kind] || "";
  }

  function avatarText(m) {
    if (m.sender_kind === "customer") return t.i18nCustomer.slice(0, 1);
    if (m.sender_kind === "bot") return "AI";
    return senders.agent.slice(0, 1);
  }

  function formatDuration(ms) {
    return Math.max(1, Math.round(ms / 1000)) + "″";
  }

  function voiceButton(row) {
    let button = row.querySelector(".voice");
    if (!button) {
      button = document.createElement("button");
      button.type = "button";
      button.className = "voice";
      button.addEventListener("click", function () { togglePlay(Number(row.dataset.messageId), false); });
      row.querySelector(".col").appendChild(button);
    }
    return button;
  }

  function renderVoiceMessage(row, m) {
    // The customer's own recording: green, the wave on the right, its length like 6″.
    const button = voiceButton(row);
    button.dataset.state = "ready";
    button.textContent = "";
    const wave = document.createElement("span");
    wave.className = "wave";
    wave.append(document.createElement("i"), document.createElement("i"), document.createElement("i"));
    const duration = document.createElement("span");
    duration.className = "dur";
    const ms = m.voice.duration_ms;
    if (ms) {
      duration.textContent = formatDuration(ms);
      button.style.width = Math.min(12, 4.5 + ms / 2000) + "rem";
    }
    button.append(wave, duration);
    button.disabled = false;
    button.setAttribute("aria-label", t.i18nVoiceMessage + (ms ? " " + formatDuration(ms) : ""));
    button.classList.toggle("playing", playingId === m.id);
  }

  function renderAudio(row, m) {
    if (m.kind === "voice" && m.voice && m.sender_kind === "customer") { renderVoiceMessage(row, m); return; }
    const audio = m.audio;
    row.dataset.audioStatus = audio.status;
    if (audio.status === "none" && !m.voice) {
      const old = row.querySelector(".voice");
      if (old) old.remove();
      return;
    }
    const button = voiceButton(row);
    button.dataset.state = audio.status;
    button.textContent = "";
    if (audio.status === "ready" && audio.url) {
      const wave = document.createElement("span");
      wave.className = "wave";
      wave.append(document.createElement("i"), document.createElement("i"), document.createElement("i"));
      const duration = document.createElement("span");
      duration.className = "dur";
      button.append(wave, duration);
      button.disabled = false;
      button.setAttribute("aria-label", t.i18nPlay);
      if (audio.duration_ms) {
        duration.textContent = formatDuration(audio.duration_ms);
        button.style.width = Math.min(12, 4.5 + audio.duration_ms / 2000) + "rem";
      } else {
        probeDuration(m.id, audio.url);
      }
      if (playingId === m.id) button.classList.add("playing");
      maybeAutoplay(m);
    } else if (audio.status === "pending") {
      const spinner = document.createElement("span");
      spinner.className = "spinner";
      button.append(spinner, document.createTextNode(t.i18nPending));
      button.disabled = true;
    } else if (audio.status === "failed") {
      button.textContent = t.i18nFailed;
      button.disabled = true;
      button.title = m.audio_error || audio.error || "";
    }
  }

  function probeDuration(id, url) {
    // Event payloads may lack duration_ms: read it from the file's header, not by playing it.
    const probe = new Audio();
    probe.preload = "metadata";
    probe.addEventListener("loadedmetadata", function () {
      const m = store.get(id);
      if (!m || !isFinite(probe.duration) || m.audio.url !== url) return;
      m.audio.duration_ms = Math.round(probe.duration * 1000);
      const row = rowOf(id);
      if (row) renderAudio(row, m);
    }, { once: true });
    probe.src = url;
  }

  function renderTranscript(row, m) {
    if (!m.transcript) return;
    let line = row.querySelector(".transcript");
    if (!line) {
      line = document.createElement("div");
      line.className = "transcript";
      row.querySelector(".col").appendChild(line);
    }
    const status = m.transcript.status;
    line.dataset.state = status;
    const empty = status === "ready" && !m.transcript.text;
    line.toggleAttribute("data-empty", empty || status === "failed");
    if (status === "pending") line.textContent = t.i18nTranscribing;
    else if (status === "failed") line.textContent = t.i18nTranscriptFailed;
    else line.textContent = empty ? t.i18nNoSpeech : m.transcript.text;
  }

  function rowOf(id) {
    return box.querySelector('.row[data-message-id="' + id + '"]');
  }

  function buildRow(m) {
    const row = document.createElement("div");
    row.className = "row msg from-" + m.sender_kind;
    row.dataset.messageId = m.id;
    row.dataset.sender = m.sender_kind;
    row.dataset.ts = String(new Date(m.created_at).getTime());
    const avatar = document.createElement("div");
    avatar.className = "avatar";
    avatar.textContent = avatarText(m);
    const col = document.createElement("div");
    col.className = "col";
    if (m.sender_kind !== "customer" && m.sender_kind !== "system") {
      const name = document.createElement("div");
      name.className = "name";
      col.appendChild(name);
    }
    if (m.kind !== "voice" || m.sender_kind !== "customer") {
      const bubble = document.createElement("div");
      bubble.className = "bubble";
      col.appendChild(bubble);
    }
    row.append(avatar, col);
    return row;
  }

  function place(row, id) {
    // Keep the list in id order: scroll-back pages go above, live messages below.
    const rows = box.querySelectorAll(".row[data-message-id]");
    for (let i = 0; i < rows.length; i++) {
      const other = Number(rows[i].dataset.messageId);
      if (other > id) {
        const sep = rows[i].previousElementSibling;
        (sep && sep.classList.contains("time-sep") ? sep : rows[i]).before(row);
        return;
      }
    }
    const pendingLocal = box.querySelector(".row[data-local]");
    if (pendingLocal) pendingLocal.before(row); else box.appendChild(row);
  }

  function upsert(incoming) {
    if (!incoming || !incoming.id) return;
    const previous = store.get(incoming.id);
    const m = merge(previous, incoming);
    store.set(m.id, m);
    let row = rowOf(m.id);
    const isNew = !row;
    if (isNew) {
      if (m.client_id) {
        const local = box.querySelector('.row[data-client-id="' + CSS.escape(m.client_id) + '"]');
        if (local) local.remove();
      }
      const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
      row = buildRow(m);
      place(row, m.id);
      if (booted) live.add(m.id);
      if (oldestId === null || m.id < oldestId) oldestId = m.id;
      relabelTimes();
      if (m.id > lastId && (nearBottom || !booted || m.sender_kind === "customer")) {
        requestAnimationFrame(function () { box.scrollTop = box.scrollHeight; });
      }
    }
    const bubble = row.querySelector(".bubble");
    if (bubble) bubble.textContent = (m.moderation && m.moderation.masked_text) || m.text;
    const name = row.querySelector(".name");
    if (name) name.textContent = senderName(m);
    if (m.sender_kind !== "customer" || m.kind === "voice") renderAudio(row, m);
    renderTranscript(row, m);
    lastId = Math.max(lastId, m.id);
    if (m.sender_kind !== "customer") hideTyping();
  }

  // --- playback: one clip at a time ---------------------------------------------------------
  const player = new Audio();
  player.preload = "auto";
  let playingId = null;
  let playCount = 0;

  function markPlaying(id, on) {
    const row = rowOf(id);
    const button = row && row.querySelector(".voice");
    if (button) button.classList.toggle("playing", on);
  }

  function stopPlayback() {
    if (playingId !== null) markPlaying(playingId, false);
    playingId = null;
    player.pause();
  }

  function togglePlay(id, auto) {
    const m = store.get(id);
    const url = m && (m.voice && m.voice.url ? m.voice.url : m.audio.url);
    if (!url) return;
    if (playingId === id && !auto) { stopPlayback(); return; }
    stopPlayback();  // a new clip stops the previous one
    playingId = id;
    markPlaying(id, true);
    player.src = url;
    playCount += 1;
    document.body.dataset.playCount = String(playCount);
    document.body.dataset.lastPlayed = String(id);
    // Browsers may refuse playback without a user gesture: the bubble stays tappable.
    const attempt = player.play();
    if (attempt && attempt.catch) attempt.catch(function () { if (playingId === id) stopPlayback(); });
  }

  player.addEventListener("ended", function () { if (playingId !== null) markPlaying(playingId, false); playingId = null; });

  function maybeAutoplay(m) {
    if (!live.has(m.id) || autoplayed.has(m.id) || m.sender_kind === "customer") return;
    autoplayed.add(m.id);
    // Several replies may become ready in one burst (a catch-up): play only the newest.
    for (const id of autoplayed) if (id > m.id && live.has(id)) return;
    clearTimeout(autoplayTimer);
    autoplayTimer = setTimeout(function () {
      let newest = 0;
      autoplayed.forEach(function (id) { if (live.has(id) && id > newest) newest = id; });
      if (newest && playingId !== newest) {
        const candidate = store.get(newest);
        if (candidate && candidate.audio.status === "ready") togglePlay(newest, true);
      }
    }, 50);
  }

  // --- conversation header ------------------------------------------------------------------
  function renderConversation(c) {
    if (!c) return;
    conversation = Object.assign(conversation || {}, c);
    document.body.dataset.conversationStatus = conversation.status;
    let text = "";
    let state = conversation.status;
    const agent = conversation.assigned_agent;
    if (conversation.status === "resolved") {
      text = t.i18nResolved;
    } else if (conversation.status === "waiting") {
      const position = conversation.queue_position;
      if (typeof position === "number") {
        text = position <= 1 ? t.i18nQueueFirst : fmt(t.i18nQueue, { n: position - 1 });
      } else {
        text = t.i18nWaiting;
      }
    } else if (agent && typeof agent === "object" && agent.display_name) {
      text = fmt(t.i18nServing, { name: agent.display_name });
      state = "agent";
    } else {
      text = t.i18nBotServing;
      state = "bot";
    }
    serving.textContent = text;
    serving.dataset.state = state;
    if (config.handoffUrl) {
      handoffButton.hidden = conversation.status === "resolved";
      handoffButton.disabled = conversation.status === "waiting" || state === "agent";
    }
    if (conversation.status === "resolved" && config.csatUrl && !conversation.csat && !csatDismissed) {
      csatForm.hidden = false;
    }
    if (conversation.status !== "resolved") csatForm.hidden = true;
  }

  // A read started before a pushed change can answer after it: its older state must not undo
  // the change (the header went back to "waiting" after an agent claimed the conversation).
  // Every pushed or posted state moves the epoch; a read that saw the epoch move is dropped.
  let conversationEpoch = 0;

  function applyConversation(c) {
    conversationEpoch += 1;
    renderConversation(c);
  }

  // While the customer waits for a person, re-read the conversation now and then: the header
  // ("客服小李 正在为您服务", the queue position) must become true even if an update was missed.
  setInterval(function () {
    if (conversation && conversation.status === "waiting" && socket && socket.readyState === WebSocket.OPEN) {
      refreshConversation().catch(function () {});
    }
  }, 5000);

  async function refreshConversation() {
    const epoch = conversationEpoch;
    const response = await api(conversationUrl());
    if (!response.ok) return;
    const body = await response.json();
    if (epoch === conversationEpoch) renderConversation(body);
  }

  handoffButton.addEventListener("click", async function () {
    handoffButton.disabled = true;
    sendError.textContent = "";
    const epoch = conversationEpoch;
    const response = await api(conversationUrl("handoff/"), { method: "POST" }).catch(function () { return null; });
    if (!response || !response.ok) {
      handoffButton.disabled = false;
      sendError.textContent = await errorText(response);
      return;
    }
    const data = await response.json();
    if (epoch === conversationEpoch) applyConversation(data.conversation || data);
    await fetchAfter(lastId);  // the acknowledgement
  });

  // --- typing -------------------------------------------------------------------------------
  function hideTyping() {
    typingLine.hidden = true;
    clearTimeout(typingTimer);
  }

  function showTyping(event) {
    if (event.sender_kind === "customer") return;
    typingLine.textContent = fmt(t.i18nTyping, { name: event.display_name || senders.agent });
    typingLine.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, 5000);
  }

  input.addEventListener("input", function () {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 112) + "px";
    const now = Date.now();
    if (socket && socket.readyState === WebSocket.OPEN && input.value && now - lastTypingSent > 3000) {
      lastTypingSent = now;
      socket.send(JSON.stringify({ type: "typing" }));
    }
  });

  // --- CSAT ---------------------------------------------------------------------------------
  let csatDismissed = false;
  let csatSending = false;
  csatForm.querySelectorAll("[data-rating]").forEach(function (star) {
    star.addEventListener("click", function () {
      csatRating = Number(star.dataset.rating);
      csatForm.querySelectorAll("[data-rating]").forEach(function (other) {
        const on = Number(other.dataset.rating) <= csatRating;
        other.classList.toggle("on", on);
        other.setAttribute("aria-checked", String(Number(other.dataset.rating) === csatRating));
      });
      document.getElementById("csat-submit").disabled = false;
    });
  });
  document.getElementById("csat-skip").addEventListener("click", function () {
    csatDismissed = true;
    csatForm.hidden = true;
  });
  csatForm.addEventListener("submit", async function (e) {
    e.preventDefault();
    const submit = document.getElementById("csat-submit");
    // One rating per conversation: a double tap must not send a second one (refused, and
    // thanked twice) while the first is on its way.
    if (!csatRating || csatSending) return;
    csatSending = true;
    submit.disabled = true;
    const response = await api(config.csatUrl.replace("{id}", conversation.id), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ rating: csatRating, comment: document.getElementById("csat-comment").value.trim() }),
    }).catch(function () { return null; });
    if (!response || (!response.ok && response.status !== 409)) {
      sendError.textContent = await errorText(response);
      csatSending = false;
      submit.disabled = false;
      return;
    }
    csatForm.hidden = true;
    conversation.csat = { rating: csatRating };
    document.body.dataset.csat = String(csatRating);
    systemNote(t.i18nCsatThanks);
  });

  function systemNote(text) {
    const row = document.createElement("div");
    row.className = "row from-system local-note";
    const col = document.createElement("div");
    col.className = "col";
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = text;
    col.appendChild(bubble);
    row.appendChild(col);
    box.appendChild(row);
    box.scrollTop = box.scrollHeight;
  }

  // --- live updates -----------------------------------------------------------------------
  function pollFrom() {
    // Re-read from the oldest reply still waiting for audio, so its URL arrives too.
    let from = lastId;
    store.forEach(function (m) {
      if (m.audio.status === "pending" && m.id - 1 < from) from = m.id - 1;
    });
    return from;
  }

  function startPolling() {
    if (!pollTimer) {
      pollTimer = setInterval(function () {
        fetchAfter(pollFrom()).catch(function () {});
        refreshConversation().catch(function () {});
      }, 3000);
    }
  }

  function handleEvent(data) {
    if (data.message && /^message\./.test(data.type)) upsert(data.message);
    else if (data.type === "conversation.updated" && data.conversation) {
      applyConversation(data.conversation);
      // Events from different processes can arrive out of order; a read made after this one
      // arrived is at least as new, and the epoch drops it if yet another event overtakes it.
      refreshConversation().catch(function () {});
    }
    else if (data.type === "typing") showTyping(data);
    else if (data.type === "csat.requested") { csatDismissed = false; applyConversation({ status: "resolved", csat: null }); }
  }

  function connect(attempt) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const path = config.wsPathTemplate.replace("{id}", conversation.id);
    setStatus("connecting", t.i18nConnecting);
    try {
      socket = new WebSocket(scheme + location.host + path + "?token=" + encodeURIComponent(access));
    } catch (e) {
      startPolling();
      return;
    }
    let pinger = null;
    socket.addEventListener("open", function () {
      attempt = 0;
      setStatus("live", t.i18nConnected);
      if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
      // Catch up on anything sent while we were away (a server restart, a network change).
      fetchAfter(pollFrom()).catch(function () {});
      refreshConversation().catch(function () {});
      pinger = setInterval(function () {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, 20000);
    });
    socket.addEventListener("message", function (event) {
      let data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      handleEvent(data);
    });
    socket.addEventListener("close", function (event) {
      clearInterval(pinger);
      setStatus(navigator.onLine === false ? "offline" : "polling", navigator.onLine === false ? t.i18nOffline : t.i18nPolling);
      startPolling();
      if (event.code === 4403 || event.code === 4404) return;  // refused for good
      // Backoff with jitter, so a restarted server is not hit by every client at once.
      const delay = Math.min(15000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
      setTimeout(async function () {
        if (event.code === 4401) await login().catch(function () {});
        connect(attempt + 1);
      }, delay);
    });
  }

  // --- sending ----------------------------------------------------------------------------
  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  async function errorText(response) {
    if (!response) return t.i18nSendFailed;
    const data = await response.json().catch(function () { return {}; });
    return (data.error && data.error.message) || t.i18nSendFailed;
  }

  function localRow(text, clientId) {
    const row = buildRow({ id: 0, sender_kind: "customer", created_at: new Date().toISOString() });
    delete row.dataset.messageId;
    row.dataset.local = "1";
    row.dataset.clientId = clientId;
    row.querySelector(".bubble").textContent = text;
    const wrap = document.createElement("div");
    wrap.className = "send-wrap";
    const state = document.createElement("button");
    state.type = "button";
    state.className = "send-state";
    state.dataset.state = "sending";
    state.setAttribute("aria-label", t.i18nRetry);
    const col = row.querySelector(".col");
    const bubble = row.querySelector(".bubble");
    wrap.append(bubble, state);
    col.appendChild(wrap);
    box.appendChild(row);
    relabelTimes();
    box.scrollTop = box.scrollHeight;
    return row;
  }

  async function post(body) {
    if (body.audio) {
      // A voice message: multipart, the recording as `audio` (its type names the format).
      const data = new FormData();
      data.append("audio", body.audio, body.filename);
      data.append("client_id", body.client_id);
      return api(conversationUrl("messages/"), { method: "POST", body: data });
    }
    return api(conversationUrl("messages/"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  async function deliver(row, body) {
    const state = row.querySelector(".send-state");
    state.dataset.state = "sending";
    state.textContent = "";
    state.disabled = true;
    let response = null;
    const epoch = conversationEpoch;
    try {
      response = await post(body);
    } catch (e) {
      response = null;  // a dropped connection
    }
    if (!response || !response.ok) {
      const message = await errorText(response);
      state.dataset.state = "failed";
      state.textContent = "!";
      state.title = message + " " + t.i18nRetry;
      state.disabled = false;
      sendError.textContent = message;
      if (response && response.status >= 400 && response.status < 500 && response.status !== 429) {
        state.dataset.permanent = "1";  // invalid text: resending the same would fail again
      }
      return false;
    }
    sendError.textContent = "";
    const data = await response.json();
    row.remove();
    upsert(Object.assign({}, data.message, { client_id: body.client_id }));
    if (data.bot_reply) upsert(data.bot_reply);
    if (data.conversation && epoch === conversationEpoch) applyConversation(data.conversation);
    return true;
  }

  function send(text) {
    // The same client_id on every retry: the server stores the message at most once.
    const body = { text: text, client_id: newClientId() };
    const row = localRow(text, body.client_id);
    row.querySelector(".send-state").addEventListener("click", function () {
      if (this.dataset.state === "failed") deliver(row, body);
    });
    return deliver(row, body);
  }

  function sendVoice(blob, durationMs) {
    // Shown at once as a voice bubble with a spinner; a failure gets the red ! like text, and
    // tapping it uploads the same recording with the same client_id.
    const type = (blob.type || "audio/webm").split(";")[0];
    const extension = { "audio/mp4": "m4a", "audio/mpeg": "mp3", "audio/x-wav": "wav", "audio/wav": "wav" }[type] ||
      type.split("/")[1] || "webm";
    const body = { audio: blob, filename: "voice." + extension, client_id: newClientId() };
    const row = localRow("", body.client_id);
    row.dataset.kind = "voice";
    const bubble = row.querySelector(".bubble");
    const voice = document.createElement("button");
    voice.type = "button";
    voice.className = "voice";
    voice.dataset.state = "sending";
    voice.disabled = true;
    const wave = document.createElement("span");
    wave.className = "wave";
    wave.append(document.createElement("i"), document.createElement("i"), document.createElement("i"));
    const duration = document.createElement("span");
    duration.className = "dur";
    duration.textContent = formatDuration(durationMs);
    voice.append(wave, duration);
    voice.style.width = Math.min(12, 4.5 + durationMs / 2000) + "rem";
    bubble.replaceWith(voice);
    row.querySelector(".send-state").addEventListener("click", function () {
      if (this.dataset.state === "failed") deliver(row, body);
    });
    return deliver(row, body);
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    input.style.height = "auto";
    send(text);
    input.focus();
  });

  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  // --- hold to talk (voice messages) ------------------------------------------------------------
  // WeChat's gesture: press 按住 说话 and speak, release to send; slide up (or leave the button)
  // and the overlay turns red (松开手指，取消发送): releasing there sends nothing. A press under
  // config.voiceMinMs is a tap (说话时间太短); near the server's limit a countdown shows, and at
  // the limit the recording stops and is sent. Any microphone problem says what happened in
  // Chinese and puts the keyboard back.
  const recBox = document.getElementById("rec");
  const recHint = document.getElementById("rec-hint");
  const recLeft = document.getElementById("rec-left");
  const MIN_MS = config.voiceMinMs || 1000;
  // A little under the server's limit: the recorder's container runs slightly longer than
  // the wall clock, and a recording refused with 413 would be lost.
  const MAX_MS = Math.max(MIN_MS + 1000, (config.voiceMaxSeconds || 60) * 1000 - 400);
  const COUNTDOWN_MS = 10000;
  const CANCEL_RISE_PX = 40;       // how far above the button a finger must slide to cancel
  const MIME_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg", "audio/mp4"];
  let take = null;                 // the press in progress: { pointerId, pressedAt, stream, recorder, ... }
  let shortTimer = null;
  let micChecked = false;

  function recorderMime() {
    if (!MediaRecorder.isTypeSupported) return "";
    for (let i = 0; i < MIME_TYPES.length; i++) if (MediaRecorder.isTypeSupported(MIME_TYPES[i])) return MIME_TYPES[i];
    return "";  // the browser's own default
  }

  function voiceUnsupported() {
    return !window.MediaRecorder || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia;
  }

  function micErrorText(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") return t.i18nMicDenied;
    if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") return t.i18nMicMissing;
    if (name === "NotReadableError" || name === "TrackStartError") return t.i18nMicBusy;
    return t.i18nMicUnavailable;
  }

  function micFailed(err) {
    sendError.textContent = micErrorText(err);
    document.body.dataset.micError = (err && err.name) || "unavailable";
    setMode(false);  // back to the keyboard: typing always works
  }

  function setMode(voice) {
    holdButton.hidden = !voice;
    input.hidden = voice;
    sendButton.hidden = voice;
    modeButton.dataset.mode = voice ? "voice" : "text";
    modeButton.setAttribute("aria-label", voice ? modeButton.dataset.labelKeyboard : modeButton.dataset.labelVoice);
    if (!voice) input.focus();
  }

  async function microphoneReady() {
    // Ask for the microphone when the customer switches to voice, not in the middle of the
    // first press (a permission prompt under a held finger would end the press).
    if (micChecked) return true;
    try {
      if (navigator.permissions && navigator.permissions.query) {
        const state = await navigator.permissions.query({ name: "microphone" }).catch(function () { return null; });
        if (state && state.state === "granted") { micChecked = true; return true; }
        if (state && state.state === "denied") { micFailed({ name: "NotAllowedError" }); return false; }
      }
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      stream.getTracks().forEach(function (track) { track.stop(); });
      micChecked = true;
      return true;
    } catch (err) {
      micFailed(err);
      return false;
    }
  }

  function showRec(state, hint) {
    clearTimeout(shortTimer);
    recBox.hidden = false;
    recBox.dataset.state = state;
    recHint.textContent = hint;
  }

  function hideRec() {
    recBox.hidden = true;
    recLeft.textContent = "";
  }

  function armCancel(on) {
    if (!take || take.cancel === on) return;
    take.cancel = on;
    holdButton.textContent = on ? t.i18nReleaseCancel : t.i18nRelease;
    showRec(on ? "cancel" : "recording", on ? t.i18nReleaseCancel : t.i18nSlideCancel);
  }

  function tick() {
    if (!take || !take.startedAt) return;
    const left = MAX_MS - (Date.now() - take.startedAt);
    if (left <= 0) { finish(true); return; }
    recLeft.textContent = left <= COUNTDOWN_MS ? fmt(t.i18nSecondsLeft, { n: Math.ceil(left / 1000) }) : "";
  }

  async function press(e) {
    if (take || (e.pointerType === "mouse" && e.button !== 0)) return;
    e.preventDefault();
    sendError.textContent = "";
    delete document.body.dataset.micError;
    const current = { pointerId: e.pointerId, pressedAt: Date.now(), cancel: false, done: false, chunks: [] };
    take = current;
    try { holdButton.setPointerCapture(e.pointerId); } catch (err) { /* a synthetic pointer */ }
    holdButton.classList.add("recording");
    holdButton.textContent = t.i18nRelease;
    showRec("recording", t.i18nSlideCancel);
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (err) {
      if (take === current) reset();
      micFailed(err);
      return;
    }
    if (current.done) {  // released before the microphone opened: a tap
      stream.getTracks().forEach(function (track) { track.stop(); });
      return;
    }
    const mime = recorderMime();
    let recorder;
    try {
      recorder = mime ? new MediaRecorder(stream, { mimeType: mime, audioBitsPerSecond: 32000 }) : new MediaRecorder(stream);
    } catch (err) {
      stream.getTracks().forEach(function (track) { track.stop(); });
      reset();
      sendError.textContent = t.i18nNoRecorder;
      setMode(false);
      return;
    }
    current.stream = stream;
    current.recorder = recorder;
    recorder.addEventListener("dataavailable", function (ev) { if (ev.data && ev.data.size) current.chunks.push(ev.data); });
    recorder.addEventListener("stop", function () { recorded(current); });
    recorder.start();
    current.startedAt = Date.now();
    current.timer = setInterval(tick, 200);
    document.body.dataset.recording = "1";
  }

  function reset() {
    if (take && take.timer) clearInterval(take.timer);
    take = null;
    holdButton.classList.remove("recording");
    holdButton.textContent = t.i18nHold;
    delete document.body.dataset.recording;
    hideRec();
  }

  function tooShort() {
    showRec("short", t.i18nTooShort);
    recLeft.textContent = "";
    document.body.dataset.voiceTooShort = String(Number(document.body.dataset.voiceTooShort || 0) + 1);
    shortTimer = setTimeout(hideRec, 1200);
  }

  function finish(keep) {
    const current = take;
    if (!current || current.done) return;
    current.done = true;
    const cancelled = !keep || current.cancel;
    const recordedMs = current.startedAt ? Date.now() - current.startedAt : 0;
    current.keep = !cancelled && recordedMs >= MIN_MS;
    current.durationMs = recordedMs;
    reset();
    if (!cancelled && !current.keep) tooShort();
    if (cancelled) document.body.dataset.voiceCancelled = String(Number(document.body.dataset.voiceCancelled || 0) + 1);
    if (current.recorder && current.recorder.state !== "inactive") current.recorder.stop();
  }

  function recorded(current) {
    current.stream.getTracks().forEach(function (track) { track.stop(); });
    if (!current.keep) return;
    const blob = new Blob(current.chunks, { type: current.recorder.mimeType || current.chunks[0] && current.chunks[0].type || "audio/webm" });
    if (!blob.size) { tooShort(); return; }
    sendVoice(blob, current.durationMs);
  }

  function move(e) {
    if (!take || e.pointerId !== take.pointerId) return;
    const r = holdButton.getBoundingClientRect();
    // Above the button by a finger's slide, or off its sides or bottom: releasing cancels.
    const outside = e.clientY < r.top - CANCEL_RISE_PX || e.clientX < r.left || e.clientX > r.right || e.clientY > r.bottom + CANCEL_RISE_PX;
    armCancel(e.pointerType === "mouse" ? outside || e.clientY < r.top : outside);
  }

  if (config.voiceInput) {
    modeButton.hidden = false;
    modeButton.addEventListener("click", async function () {
      if (!holdButton.hidden) { setMode(false); return; }
      sendError.textContent = "";
      if (voiceUnsupported()) {
        sendError.textContent = t.i18nNoRecorder;
        document.body.dataset.micError = "unsupported";
        return;
      }
      if (await microphoneReady()) setMode(true);
    });
    holdButton.addEventListener("pointerdown", press);
    holdButton.addEventListener("pointermove", move);
    holdButton.addEventListener("pointerup", function (e) { if (take && e.pointerId === take.pointerId) finish(true); });
    // The system took the touch (a call, a gesture): nothing is sent.
    holdButton.addEventListener("pointercancel", function (e) { if (take && e.pointerId === take.pointerId) finish(false); });
    holdButton.addEventListener("lostpointercapture", function (e) { if (take && e.pointerId === take.pointerId && !take.done) finish(!take.cancel); });
    holdButton.addEventListener("contextmenu", function (e) { e.preventDefault(); });
    document.addEventListener("visibilitychange", function () { if (document.hidden && take) finish(false); });
  }

  // --- start ------------------------------------------------------------------------------
  async function start() {
    await login();
    const response = await api(config.conversationsUrl, { method: "POST" });
    if (!response.ok) throw new Error(await errorText(response));
    conversation = await response.json();
    document.body.dataset.conversationId = conversation.id;
    document.getElementById("login-box").hidden = true;
    box.hidden = false;
    form.hidden = false;
    renderConversation(conversation);
    await fetchInitial();
    history.textContent = hasOlder ? "" : t.i18nNoEarlier;
    booted = true;
    box.scrollTop = box.scrollHeight;
    if (window.IntersectionObserver) {
      new IntersectionObserver(function (entries) {
        if (entries[0].isIntersecting) loadOlder().catch(function () {});
      }, { root: box }).observe(history);
    }
    connect(0);
    input.focus();
  }

  window.addEventListener("online", function () {
    if (socket && socket.readyState !== WebSocket.OPEN && conversation) fetchAfter(pollFrom()).catch(function () {});
  });

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
