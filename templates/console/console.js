// Agent console: three panes (queue, conversation, customer) on paginated JSON APIs.
// Live: the console socket (/ws/console/: queue and assignment events; presence heartbeat) and
// the open conversation's chat socket (messages, audio, typing). Both reconnect with backoff and
// catch up by refetching (queue list, messages after the last id), so a server restart loses
// nothing. Plain JS, no build step, no inline handlers (CSP nonce on this script only).
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("console-config").textContent);
  const root = document.getElementById("console");
  const i18n = root.dataset;
  const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const $ = function (id) { return document.getElementById(id); };
  const queueList = $("queue-list");
  const box = $("messages");
  const history = $("history");
  const form = $("reply-form");
  const textarea = $("reply-text");
  const emotionSelect = $("emotion");
  const phrasePanel = $("phrase-panel");
  const phraseSearch = $("phrase-search");
  const phraseList = $("phrase-list");
  const phraseChip = $("phrase-chip");
  const senders = { customer: i18n.i18nCustomer, agent: i18n.i18nAgent, bot: i18n.i18nBot, system: i18n.i18nSystem };
  const RANK = { none: 0, pending: 1, ready: 2, failed: 2 };

  const state = {
    view: "mine",
    status: "",
    priority: "",
    next: null,
    conversations: new Map(),   // id -> conversation payload (+ local unread)
    known: new Set(),           // ids seen in the queue: a new waiting one rings
    mine: new Set(),            // ids known to be assigned to me: a newly handed one rings
    acting: new Set(),          // ids of my own claim/transfer/... in flight: no bell for those
    selected: null,
    messages: new Map(),
    lastId: 0,
    oldestId: null,
    hasOlder: false,
    suggestion: "",
    emotionTouched: false,
    phrase: null,
    phraseResults: [],
    activeIndex: 0,
  };

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key]; });
  }

  async function http(url, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    if (opts.method && opts.method !== "GET") {
      opts.headers = Object.assign({ "X-CSRFToken": csrfToken }, opts.headers);
      if (opts.json !== undefined) {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(opts.json);
        delete opts.json;
      }
    }
    const response = await fetch(url, opts);
    if (response.status === 401 || response.status === 403) {
      // The session ended (logout elsewhere): back to the login page rather than a dead screen.
      if (response.url.indexOf("/admin/login") !== -1 || response.status === 401) location.reload();
    }
    return response;
  }

  async function errorOf(response) {
    const data = response ? await response.json().catch(function () { return {}; }) : {};
    return (data.error && data.error.message) || i18n.i18nFailedAction;
  }

  function actionUrl(id, action) {
    return config.actionUrlTemplate.replace("{id}", id).replace("{action}", action);
  }

  function agentName(agent) {
    if (!agent) return "";
    return typeof agent === "object" ? agent.display_name : agent;
  }

  function agentId(agent) {
    return agent && typeof agent === "object" ? agent.id : null;
  }

  function customerName(c) {
    if (!c.customer) return "";
    return typeof c.customer === "object" ? c.customer.display_name : c.customer;
  }

  function isMine(c) {
    const id = agentId(c.assigned_agent);
    if (id !== null) return id === config.me.id;
    return agentName(c.assigned_agent) === config.me.display_name;
  }

  // --- queue ------------------------------------------------------------------------------
  function waitedText(since) {
    if (!since) return "";
    const minutes = Math.floor((Date.now() - new Date(since).getTime()) / 60000);
    if (minutes < 1) return i18n.i18nJustNow;
    if (minutes < 60) return fmt(i18n.i18nMinutes, { n: minutes });
    return fmt(i18n.i18nHours, { n: Math.floor(minutes / 60) });
  }

  function matchesFilters(c) {
    if (state.view === "mine" && !isMine(c)) return false;
    if (state.view === "unassigned" && c.assigned_agent) return false;
    if (state.status) {
      if (c.status !== state.status) return false;
    } else if (c.status === "resolved") {
      return false;
    }
    if (state.priority && String(c.priority) !== state.priority) return false;
    return true;
  }

  function queueItem(c) {
    let li = queueList.querySelector('li[data-conversation="' + c.id + '"]');
    if (!li) {
      li = document.createElement("li");
      li.className = "conv";
      li.dataset.conversation = c.id;
      li.tabIndex = 0;
      li.innerHTML = '<span class="avatar"></span><span class="who"></span><span class="when"></span>' +
        '<span class="preview"></span><span class="tags"></span>';
      li.addEventListener("click", function () { select(c.id); });
      li.addEventListener("keydown", function (e) { if (e.key === "Enter") select(c.id); });
    }
    const name = customerName(c) || ("#" + c.id);
    li.querySelector(".avatar").textContent = name.slice(0, 1);
    li.querySelector(".who").textContent = name;
    const since = c.status === "waiting" ? (c.waiting_since || c.last_message_at) : c.last_message_at;
    li.querySelector(".when").textContent = c.status === "waiting" ? fmt(i18n.i18nWaited, { t: waitedText(since) }) : waitedText(since);
    li.querySelector(".when").dataset.since = since || "";
    li.querySelector(".preview").textContent = c.last_message_text || (c.assigned_agent ? fmt(i18n.i18nServedBy, { name: agentName(c.assigned_agent) }) : i18n.i18nUnassigned);
    const tags = li.querySelector(".tags");
    tags.textContent = "";
    const status = document.createElement("span");
    status.className = "tag " + c.status;
    status.textContent = i18n["i18nStatus" + c.status.charAt(0).toUpperCase() + c.status.slice(1)] || c.status;
    tags.appendChild(status);
    if (c.priority >= 3) {
      const prio = document.createElement("span");
      prio.className = "tag prio-" + c.priority;
      prio.textContent = i18n["i18nPrio" + c.priority];
      tags.appendChild(prio);
    }
    if (c.sla && c.sla.overdue) {
      const sla = document.createElement("span");
      sla.className = "tag sla";
      sla.textContent = i18n.i18nOverdue;
      tags.appendChild(sla);
    }
    const unread = c.id === state.selected ? 0 : (c.unread_count || 0);
    if (unread) {
      const badge = document.createElement("span");
      badge.className = "badge unread";
      badge.textContent = unread > 99 ? "99+" : String(unread);
      tags.appendChild(badge);
    }
    li.setAttribute("aria-current", String(c.id === state.selected));
    li.dataset.status = c.status;
    return li;
  }

  function sortKey(c) {
    // Waiting first, then the highest priority, then the longest wait / latest activity.
    const waiting = c.status === "waiting" ? 0 : 1;
    const at = new Date(c.waiting_since || c.last_message_at || c.created_at || 0).getTime();
    return [waiting, -c.priority, waiting === 0 ? at : -at, -c.id];
  }

  function compare(a, b) {
    const ka = sortKey(a), kb = sortKey(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
    return 0;
  }

  function renderQueue() {
    const items = Array.from(state.conversations.values()).filter(matchesFilters).sort(compare);
    const keep = new Set(items.map(function (c) { return String(c.id); }));
    queueList.querySelectorAll("li[data-conversation]").forEach(function (li) {
      if (!keep.has(li.dataset.conversation)) li.remove();
    });
    const empty = queueList.querySelector(".empty");
    if (empty) empty.remove();
    items.forEach(function (c) { queueList.appendChild(queueItem(c)); });
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = i18n.i18nNoConversations;
      queueList.appendChild(li);
    }
    $("queue-more").hidden = !state.next;
  }

  function listUrl() {
    const params = new URLSearchParams();
    params.set("view", state.view);
    if (state.view === "mine") params.set("assigned", "me");
    if (state.view === "unassigned") params.set("assigned", "none");
    if (state.status) params.set("status", state.status);
    if (state.priority) params.set("priority", state.priority);
    return config.conversationsUrl + "?" + params.toString();
  }

  async function loadQueue(append, silent) {
    const url = append && state.next ? state.next : listUrl();
    const response = await http(url);
    if (!response.ok) return;
    const page = await response.json();
    if (!append) {
      // A refetch is the truth for this filter: forget rows it no longer lists.
      state.conversations.forEach(function (c, id) { if (matchesFilters(c) && id !== state.selected) state.conversations.delete(id); });
    }
    page.results.forEach(function (c) { noteConversation(c, silent || !booted); });
    state.next = page.next;
    renderQueue();
  }

  let booted = false;
  function noteConversation(c, silent, toMe) {
    const previous = state.conversations.get(c.id);
    const merged = Object.assign({}, previous || {}, c);
    if (previous && c.unread_count === undefined) merged.unread_count = previous.unread_count;
    state.conversations.set(c.id, merged);
    const isNewWaiting = c.status === "waiting" && (!previous || previous.status !== "waiting") && !state.known.has(c.id + ":w" + (c.waiting_since || ""));
    state.known.add(c.id + ":w" + (c.waiting_since || ""));
    // Auto-assignment or a colleague's transfer hands me a conversation: that deserves the same
    // bell as a waiting one. The queue broadcast of a conversation this console has never seen
    // may come before the `conversation.assigned` sent to me alone (`toMe`): that one decides,
    // so a transfer from another agent rings once too. My own conversations (the first page of
    // 我的 at start, up to an agent's capacity) are known, so their updates stay quiet.
    let newlyMine = false;
    if (c.assigned_agent !== undefined) {
      if (!isMine(merged)) {
        state.mine.delete(c.id);
      } else if (!state.mine.has(c.id) && (silent || previous || toMe)) {
        state.mine.add(c.id);
        newlyMine = true;
      }
    }
    if ((isNewWaiting || newlyMine) && !silent && !state.acting.has(c.id)) ring(merged);
    if (c.id === state.selected) renderHead();
  }

  // --- notifications: a sound and a browser notification for a new waiting customer -------
  let audioContext = null;
  function beep() {
    try {
      audioContext = audioContext || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audioContext.createOscillator();
      const gain = audioContext.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audioContext.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audioContext.currentTime + 0.4);
      osc.connect(gain).connect(audioContext.destination);
      osc.start();
      osc.stop(audioContext.currentTime + 0.4);
    } catch (e) { /* no audio device: the badge and the list still show it */ }
  }

  function ring(c) {
    document.body.dataset.rings = String(Number(document.body.dataset.rings || 0) + 1);
    beep();
    if (window.Notification && Notification.permission === "granted" && document.visibilityState !== "visible") {
      const note = new Notification(i18n.i18nNewWaiting, { body: customerName(c), tag: "conversation-" + c.id });
      note.addEventListener("click", function () { window.focus(); select(c.id); note.close(); });
    }
  }

  $("notify-toggle").addEventListener("click", function () {
    beep();  // also unlocks audio playback after this gesture
    if (window.Notification && Notification.permission === "default") Notification.requestPermission();
    $("notify-toggle").hidden = true;
  });
  if (window.Notification && Notification.permission !== "default") $("notify-toggle").hidden = true;

  document.querySelectorAll(".tabs [data-view]").forEach(function (tab) {
    tab.addEventListener("click", function () {
      state.view = tab.dataset.view;
      document.querySelectorAll(".tabs [data-view]").forEach(function (other) {
        other.setAttribute("aria-selected", String(other === tab));
      });
      state.next = null;
      renderQueue();
      loadQueue(false, true);
    });
  });
  $("filter-status").addEventListener("change", function (e) { state.status = e.target.value; renderQueue(); loadQueue(false, true); });
  $("filter-priority").addEventListener("change", function (e) { state.priority = e.target.value; renderQueue(); loadQueue(false, true); });
  $("queue-more").addEventListener("click", function () { loadQueue(true, true); });
  setInterval(function () {
    queueList.querySelectorAll(".when[data-since]").forEach(function (el) {
      const li = el.closest("li");
      const c = li && state.conversations.get(Number(li.dataset.conversation));
      if (c) queueItem(c);
    });
  }, 30000);

  // --- the open conversation ------------------------------------------------------------------
  function renderHead() {
    const c = state.conversations.get(state.selected);
    if (!c) return;
    $("chat-title").textContent = (customerName(c) || "") + " · #" + c.id;
    const status = $("chat-status");
    status.className = "tag " + c.status;
    status.textContent = i18n["i18nStatus" + c.status.charAt(0).toUpperCase() + c.status.slice(1)] || c.status;
    const prio = $("chat-priority");
    prio.className = "tag prio-" + c.priority;
    prio.textContent = i18n["i18nPrio" + c.priority] || "";
    $("chat-agent").textContent = c.assigned_agent ? fmt(i18n.i18nServedBy, { name: agentName(c.assigned_agent) }) : i18n.i18nUnassigned;
    const resolved = c.status === "resolved";
    $("claim").hidden = resolved || isMine(c);
    $("transfer").hidden = resolved || !config.transfer;
    $("resolve").hidden = resolved;
    $("reopen").hidden = !resolved || !config.reopen;
    document.body.dataset.conversationStatus = c.status;
  }

  function audioOf(m) {
    if (m.audio) return Object.assign({}, m.audio);
    return { status: m.audio_status || "none", url: m.audio_url || null, duration_ms: m.audio_duration_ms || null };
  }

  function merge(previous, incoming) {
    const next = Object.assign({}, previous || {}, incoming);
    const oldAudio = previous ? previous.audio : null;
    const newAudio = audioOf(incoming);
    if (oldAudio && (RANK[newAudio.status] || 0) < (RANK[oldAudio.status] || 0)) {
      next.audio = oldAudio;  // audio status only moves forward
    } else {
      if (oldAudio && !newAudio.duration_ms && oldAudio.url === newAudio.url) newAudio.duration_ms = oldAudio.duration_ms;
      next.audio = newAudio;
    }
    // A transcript only moves forward (pending -> ready | failed): a stale page never undoes it.
    if (previous && previous.transcript && incoming.transcript && previous.transcript.status !== "pending" &&
        incoming.transcript.status === "pending") {
      next.transcript = previous.transcript;
      next.text = previous.text;
    }
    return next;
  }

  function formatDuration(ms) {
    return Math.max(1, Math.round(ms / 1000)) + "″";
  }

  function probeDuration(id, url) {
    const probe = new Audio();
    probe.preload = "metadata";
    probe.addEventListener("loadedmetadata", function () {
      const m = state.messages.get(id);
      if (!m || !isFinite(probe.duration) || audioUrl(m) !== url) return;
      m.audio.duration_ms = Math.round(probe.duration * 1000);
      renderMessage(m);
    }, { once: true });
    probe.src = url;
  }

  function audioUrl(m) {
    return (m.voice && m.voice.url) || m.audio.url;
  }

  function renderVoice(wrapper, m) {
    const audio = m.audio;
    wrapper.dataset.audioStatus = audio.status;
    let button = wrapper.querySelector(".voice");
    if (audio.status === "none" && !m.voice) { if (button) button.remove(); return; }
    if (!button) {
      button = document.createElement("button");
      button.type = "button";
      button.className = "voice";
      button.addEventListener("click", function () { togglePlay(m.id); });
      wrapper.appendChild(button);
    }
    const status = m.voice ? "ready" : audio.status;
    button.dataset.state = status;
    button.textContent = "";
    button.title = "";
    if (status === "ready" && audioUrl(m)) {
      const wave = document.createElement("span");
      wave.className = "wave";
      wave.append(document.createElement("i"), document.createElement("i"), document.createElement("i"));
      const duration = document.createElement("span");
      duration.className = "dur";
      const ms = (m.voice && m.voice.duration_ms) || audio.duration_ms;
      if (ms) duration.textContent = formatDuration(ms); else probeDuration(m.id, audioUrl(m));
      button.append(wave, duration);
      button.disabled = false;
      button.setAttribute("aria-label", i18n.i18nPlay);
      button.classList.toggle("playing", playingId === m.id);
    } else if (status === "pending") {
      button.textContent = i18n.i18nPending;
      button.disabled = true;
    } else if (status === "failed") {
      button.textContent = i18n.i18nFailed;
      button.title = m.audio_error || audio.error || "";
      button.disabled = true;
    }
  }

  function renderMessage(m) {
    let wrapper = box.querySelector('.msg[data-message-id="' + m.id + '"]');
    const isNew = !wrapper;
    if (isNew) {
      wrapper = document.createElement("div");
      wrapper.className = "msg from-" + m.sender_kind;
      wrapper.dataset.messageId = m.id;
      const meta = document.createElement("div");
      meta.className = "meta";
      const bubble = document.createElement("div");
      bubble.className = "bubble";
      wrapper.append(meta, bubble);
      const rows = box.querySelectorAll(".msg[data-message-id]");
      let placed = false;
      for (let i = 0; i < rows.length; i++) {
        if (Number(rows[i].dataset.messageId) > m.id) { rows[i].before(wrapper); placed = true; break; }
      }
      if (!placed) box.appendChild(wrapper);
    }
    const parts = [senders[m.sender_kind] || m.sender_kind];
    if (m.author && m.sender_kind !== "bot") parts.push(m.author);
    const intent = m.intent_label || (m.intent && m.intent.label);
    if (intent) parts.push("#" + intent);
    const emotion = m.emotion_label || (m.audio.emotion && m.audio.emotion.label);
    if (emotion) parts.push("♪" + emotion);
    parts.push(new Date(m.created_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false }));
    wrapper.querySelector(".meta").textContent = parts.join(" · ");
    wrapper.querySelector(".bubble").textContent = m.text || "";
    // A voice message is its voice bubble with the transcript under it (not the text twice).
    wrapper.querySelector(".bubble").hidden = m.kind === "voice";
    wrapper.dataset.kind = m.kind || "text";
    renderVoice(wrapper, m);
    if (m.transcript) {
      let line = wrapper.querySelector(".transcript");
      if (!line) { line = document.createElement("div"); line.className = "transcript"; wrapper.appendChild(line); }
      const status = m.transcript.status;
      const empty = status === "ready" && !m.transcript.text;
      line.dataset.state = status;
      line.toggleAttribute("data-empty", empty || status === "failed");
      if (status === "pending") line.textContent = i18n.i18nTranscribing;
      else if (status === "failed") line.textContent = i18n.i18nTranscriptFailed;
      else line.textContent = empty ? i18n.i18nNoSpeech : m.transcript.text;
    }
    return isNew;
  }

  function upsert(incoming) {
    if (!incoming || !incoming.id) return;
    if (incoming.conversation_id && incoming.conversation_id !== state.selected) {
      bumpUnread(incoming);
      return;
    }
    const m = merge(state.messages.get(incoming.id), incoming);
    state.messages.set(m.id, m);
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 150;
    const isNew = renderMessage(m);
    if (state.oldestId === null || m.id < state.oldestId) state.oldestId = m.id;
    const wasNewest = m.id > state.lastId;
    state.lastId = Math.max(state.lastId, m.id);
    if (isNew && wasNewest && nearBottom) box.scrollTop = box.scrollHeight;
    if (isNew && m.sender_kind === "customer") { hideTyping(); scheduleRefresh(); }
    const c = state.conversations.get(state.selected);
    if (c && isNew && wasNewest) {
      c.last_message_text = m.text;
      c.last_message_at = m.created_at;
    }
  }

  function bumpUnread(m) {
    const c = state.conversations.get(m.conversation_id);
    if (!c) return;
    if (m.sender_kind === "customer") c.unread_count = (c.unread_count || 0) + 1;
    c.last_message_text = m.text;
    c.last_message_at = m.created_at;
    renderQueue();
  }

  // The console's own messages endpoint marks the conversation read and returns the policy's
  // emotion suggestion for the newest customer message.
  let refreshTimer = null;
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () { catchUp().catch(function () {}); }, 150);
  }

  function pendingFrom() {
    let from = state.lastId;
    state.messages.forEach(function (m) { if (m.audio.status === "pending" && m.id - 1 < from) from = m.id - 1; });
    return from;
  }

  async function fetchPage(id, query) {
    const response = await http(config.messagesUrlTemplate.replace("{id}", id) + query);
    if (!response.ok || id !== state.selected) return null;
    const data = await response.json();
    data.messages.forEach(upsert);
    return data;
  }

  async function loadNewest(id) {
    const data = await fetchPage(id, "");
    if (!data) return;
    state.hasOlder = data.has_more;
    history.textContent = state.hasOlder ? "" : i18n.i18nNoEarlier;
    applyState(id, data);
  }

  let loadingOlder = false;
  async function loadOlder() {
    const id = state.selected;
    if (!id || !state.hasOlder || loadingOlder || state.oldestId === null) return;
    loadingOlder = true;
    history.textContent = i18n.i18nEarlier;
    const keep = box.scrollHeight - box.scrollTop;
    try {
      const data = await fetchPage(id, "?before=" + state.oldestId);
      if (!data) return;
      state.hasOlder = data.has_more;
      box.scrollTop = box.scrollHeight - keep;  // what the agent was reading stays in place
    } finally {
      loadingOlder = false;
      history.textContent = state.hasOlder ? "" : i18n.i18nNoEarlier;
    }
  }

  if (window.IntersectionObserver) {
    new IntersectionObserver(function (entries) {
      if (entries[0].isIntersecting && booted) loadOlder().catch(function () {});
    }, { root: box }).observe(history);
  }

  async function catchUp() {
    const id = state.selected;
    if (!id) return;
    let data;
    do {
      data = await fetchPage(id, "?after=" + pendingFrom());
      if (!data) return;
    } while (data.has_more);
    applyState(id, data);
  }

  function applyState(id, data) {
    setSuggestion(data.suggestion);
    if (data.conversation) {
      const c = state.conversations.get(id) || {};
      const fresh = Object.assign({}, data.conversation);
      if (fresh.assigned_agent === undefined) delete fresh.assigned_agent;
      state.conversations.set(id, Object.assign(c, fresh, { unread_count: 0 }));
      renderHead();
      renderQueue();
    }
  }

  function setSuggestion(name) {
    state.suggestion = name || "";
    const option = Array.from(emotionSelect.options).find(function (o) { return o.value === name; });
    $("suggestion-label").textContent = option ? option.textContent : "—";
    if (!state.emotionTouched && option) emotionSelect.value = name;
    $("suggest").dataset.overridden = String(state.emotionTouched && emotionSelect.value !== state.suggestion);
  }

  async function select(id) {
    if (state.selected === id) return;
    stopPlayback();
    state.selected = id;
    state.messages = new Map();
    state.lastId = 0;
    state.oldestId = null;
    state.hasOlder = false;
    state.emotionTouched = false;
    box.querySelectorAll(".msg").forEach(function (el) { el.remove(); });
    history.textContent = "";
    $("placeholder").hidden = true;
    $("chat-head").hidden = false;
    box.hidden = false;
    form.hidden = false;
    $("action-error").textContent = "";
    $("reply-error").textContent = "";
    if (location.pathname !== "/console/c/" + id + "/") history_replace(id);
    if (!state.conversations.has(id)) state.conversations.set(id, { id: id, status: "open", priority: 2 });
    const c = state.conversations.get(id);
    c.unread_count = 0;
    renderHead();
    renderQueue();
    await loadNewest(id);
    box.scrollTop = box.scrollHeight;
    connectChat(id, 0);
    loadCustomer(id);
    textarea.focus();
  }

  function history_replace(id) {
    window.history.replaceState({}, "", "/console/c/" + id + "/");
  }

  // --- playback: one clip at a time -----------------------------------------------------------
  const player = new Audio();
  let playingId = null;
  function stopPlayback() {
    const previous = playingId;
    playingId = null;
    player.pause();
    if (previous !== null) {
      const el = box.querySelector('.msg[data-message-id="' + previous + '"] .voice');
      if (el) el.classList.remove("playing");
    }
    const preview = phraseList.querySelector(".preview.playing");
    if (preview) { preview.classList.remove("playing"); preview.textContent = i18n.i18nPreview; }
  }
  function togglePlay(id) {
    if (playingId === id) { stopPlayback(); return; }
    stopPlayback();
    const m = state.messages.get(id);
    if (!m || !audioUrl(m)) return;
    playingId = id;
    const el = box.querySelector('.msg[data-message-id="' + id + '"] .voice');
    if (el) el.classList.add("playing");
    player.src = audioUrl(m);
    player.play().catch(function () { stopPlayback(); });
  }
  player.addEventListener("ended", stopPlayback);

  // --- sockets --------------------------------------------------------------------------------
  function wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  function backoff(attempt) {
    return Math.min(15000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
  }

  let chatSocket = null;
  let lastTypingSent = 0;
  function connectChat(id, attempt) {
    if (chatSocket) { chatSocket.onclose = null; chatSocket.close(); chatSocket = null; }
    const socket = new WebSocket(wsUrl(config.chatWsTemplate.replace("{id}", id)));
    chatSocket = socket;
    let pinger = null;
    socket.onopen = function () {
      attempt = 0;
      document.body.dataset.chatLive = "websocket";
      catchUp().catch(function () {});
      pinger = setInterval(function () { if (socket.readyState === WebSocket.OPEN) socket.send('{"type":"ping"}'); }, 20000);
    };
    socket.onmessage = function (event) {
      let data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (data.message && /^message\./.test(data.type)) upsert(data.message);
      else if (data.type === "conversation.updated" && data.conversation) { noteConversation(data.conversation, false); renderQueue(); }
      else if (data.type === "typing" && data.sender_kind === "customer") showTyping(data);
    };
    socket.onclose = function (event) {
      clearInterval(pinger);
      if (chatSocket !== socket) return;
      document.body.dataset.chatLive = "reconnecting";
      if (event.code === 4403 || event.code === 4404) return;
      setTimeout(function () { if (state.selected === id && chatSocket === socket) connectChat(id, attempt + 1); }, backoff(attempt));
    };
  }

  let consoleSocket = null;
  let queuePoll = null;
  function setConn(stateName, text) {
    const el = $("conn");
    el.dataset.state = stateName;
    el.textContent = text;
    document.body.dataset.live = stateName === "live" ? "websocket" : stateName;
  }

  function startQueuePolling() {
    if (!queuePoll) queuePoll = setInterval(function () { loadQueue(false).catch(function () {}); }, 5000);
  }

  function connectConsole(attempt) {
    if (!config.consoleWs) {
      // Without the console socket the queue is polled; the open conversation is still live.
      setConn("live", i18n.i18nConnected);
      startQueuePolling();
      return;
    }
    setConn(attempt ? "polling" : "connecting", attempt ? i18n.i18nPolling : i18n.i18nConnecting);
    const socket = new WebSocket(wsUrl(config.consoleWs));
    consoleSocket = socket;
    let pinger = null;
    socket.onopen = function () {
      attempt = 0;
      setConn("live", i18n.i18nConnected);
      if (queuePoll) { clearInterval(queuePoll); queuePoll = null; }
      // Catch up: the queue by refetching, the open conversation by messages after the last id.
      loadQueue(false).catch(function () {});
      catchUp().catch(function () {});
      // The presence heartbeat: a closed tab goes offline on the server within a minute.
      pinger = setInterval(function () { if (socket.readyState === WebSocket.OPEN) socket.send('{"type":"ping"}'); }, 20000);
    };
    socket.onmessage = function (event) {
      let data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if ((data.type === "queue.updated" || data.type === "conversation.assigned" || data.type === "conversation.updated") && data.conversation) {
        noteConversation(data.conversation, false, data.type === "conversation.assigned");
        renderQueue();
      } else if (data.type === "queue.removed" && data.id) {
        const c = state.conversations.get(data.id);
        if (c && data.id !== state.selected && !isMine(c)) state.conversations.delete(data.id);
        renderQueue();
      } else if (data.type === "message.created" && data.message) {
        upsert(data.message);
      } else if (data.type === "presence" && data.status) {
        showPresence(data.status);
      }
    };
    socket.onclose = function (event) {
      clearInterval(pinger);
      setConn("polling", i18n.i18nPolling);
      startQueuePolling();
      if (event.code === 4401 || event.code === 4403) return;
      setTimeout(function () { connectConsole(attempt + 1); }, backoff(attempt));
    };
  }

  // --- typing -----------------------------------------------------------------------------------
  let typingTimer = null;
  function hideTyping() { $("typing").hidden = true; clearTimeout(typingTimer); }
  function showTyping(event) {
    $("typing").textContent = fmt(i18n.i18nTyping, { name: event.display_name || senders.customer });
    $("typing").hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, 5000);
  }

  // --- actions: claim / transfer / resolve / reopen -------------------------------------------
  async function act(action, body) {
    const id = state.selected;
    $("action-error").textContent = "";
    state.acting.add(id);  // the events of my own move may arrive first: no bell for them
    try {
      const response = await http(actionUrl(id, action), { method: "POST", json: body || {} });
      if (!response.ok) {
        $("action-error").textContent = await errorOf(response);
        return null;
      }
      const data = await response.json();
      const c = data.conversation || data;
      if (c && c.id) { noteConversation(c, true); renderHead(); renderQueue(); }
      catchUp().catch(function () {});
      return c;
    } finally {
      state.acting.delete(id);
    }
  }

  $("claim").addEventListener("click", function () { act(config.claim ? "claim" : "assign"); });
  $("resolve").addEventListener("click", function () { act("resolve"); });
  $("reopen").addEventListener("click", function () { act("reopen"); });
  $("transfer").addEventListener("click", async function () {
    const list = $("agent-list");
    list.textContent = "";
    const back = document.createElement("li");
    back.innerHTML = '<label><input type="radio" name="agent" value=""> <span></span></label>';
    back.querySelector("span").textContent = i18n.i18nBackToQueue;
    list.appendChild(back);
    if (config.agentsUrl) {
      const response = await http(config.agentsUrl);
      const data = response.ok ? await response.json() : { results: [] };
      (data.results || data.agents || data).forEach(function (agent) {
        if (agent.id === config.me.id) return;
        const li = document.createElement("li");
        li.innerHTML = '<label><input type="radio" name="agent"> <span class="presence-dot"></span><span class="n"></span><span class="tag"></span></label>';
        const radio = li.querySelector("input");
        radio.value = agent.id;
        const full = agent.capacity && agent.load >= agent.capacity;
        radio.disabled = Boolean(full);
        li.querySelector(".presence-dot").dataset.status = agent.presence || agent.status || "offline";
        li.querySelector(".n").textContent = agent.display_name;
        li.querySelector(".tag").textContent = fmt(i18n.i18nLoad, { load: agent.load || 0, capacity: agent.capacity || "–" });
        list.appendChild(li);
      });
    }
    list.querySelector("input:not([disabled])").checked = true;
    $("transfer-dialog").showModal();
  });
  $("transfer-cancel").addEventListener("click", function () { $("transfer-dialog").close(); });
  $("transfer-form").addEventListener("submit", function (e) {
    e.preventDefault();
    const chosen = $("agent-list").querySelector("input:checked");
    $("transfer-dialog").close();
    act("transfer", { agent_id: chosen && chosen.value ? Number(chosen.value) : null });
  });

  // --- customer panel ---------------------------------------------------------------------------
  async function loadCustomer(id) {
    $("customer-info").hidden = true;
    $("customer-empty").hidden = false;
    if (!config.customerPanel) return;
    const response = await http(actionUrl(id, "customer"));
    if (!response.ok || state.selected !== id) return;
    const data = await response.json();
    const profile = $("customer-profile");
    profile.textContent = "";
    Object.entries(data.profile || {}).forEach(function (pair) {
      if (pair[1] === null || pair[1] === "" || typeof pair[1] === "object") return;
      const dt = document.createElement("dt");
      const key = "i18nField" + pair[0].split("_").map(function (w) { return w.charAt(0).toUpperCase() + w.slice(1); }).join("");
      dt.textContent = (data.labels && data.labels[pair[0]]) || i18n[key] || pair[0];
      const dd = document.createElement("dd");
      dd.textContent = /_(since|at)$/.test(pair[0]) ? new Date(pair[1]).toLocaleDateString() : String(pair[1]);
      profile.append(dt, dd);
    });
    fillList($("customer-intents"), data.intents_seen || [], function (item) {
      return (item.label || item.name || item) + (item.count ? " × " + item.count : "");
    });
    fillList($("customer-csat"), data.csat_given || [], function (item) {
      return "★★★★★".slice(0, item.rating) + "☆☆☆☆☆".slice(0, 5 - item.rating) + (item.comment ? " " + item.comment : "");
    });
    fillList($("customer-history"), data.earlier_conversations || [], function (item) {
      return "#" + item.id + " · " + (i18n["i18nStatus" + String(item.status).charAt(0).toUpperCase() + String(item.status).slice(1)] || item.status) +
        (item.created_at ? " · " + new Date(item.created_at).toLocaleDateString() : "");
    }, function (item) { return item.id; });
    $("customer-info").hidden = false;
    $("customer-empty").hidden = true;
  }

  function fillList(list, items, text, link) {
    list.textContent = "";
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = i18n.i18nNone;
      list.appendChild(li);
      return;
    }
    items.forEach(function (item) {
      const li = document.createElement("li");
      if (link) {
        const a = document.createElement("a");
        a.href = "/console/c/" + link(item) + "/";
        a.textContent = text(item);
        a.addEventListener("click", function (e) { e.preventDefault(); select(link(item)); });
        li.appendChild(a);
      } else {
        li.textContent = text(item);
      }
      list.appendChild(li);
    });
  }

  // --- presence ---------------------------------------------------------------------------------
  function showPresence(status) {
    $("presence").value = status;
    $("presence-dot").dataset.status = status;
  }
  if (config.presenceUrl) {
    $("presence-box").hidden = false;
    $("presence").addEventListener("change", async function (e) {
      const response = await http(config.presenceUrl, { method: "POST", json: { status: e.target.value } });
      if (response.ok) showPresence(e.target.value);
    });
  }

  // --- canned phrases: `/` opens the picker, ▶ previews the audio -------------------------------
  let searchSeq = 0;
  async function searchPhrases(query) {
    const seq = ++searchSeq;
    const response = await http(config.phrasesUrl + "?q=" + encodeURIComponent(query));
    if (!response.ok || seq !== searchSeq) return;
    const data = await response.json();
    showPhrases(data.phrases || data.results || []);
  }

  function showPhrases(items) {
    state.phraseResults = items;
    state.activeIndex = 0;
    phraseList.textContent = "";
    items.forEach(function (p, index) {
      const li = document.createElement("li");
      li.dataset.shortCode = p.short_code;
      li.setAttribute("role", "option");
      const code = document.createElement("span");
      code.className = "code";
      code.textContent = "/" + p.short_code;
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = (p.title ? p.title + " — " : "") + p.text;
      text.title = p.text;
      const preview = document.createElement("button");
      preview.type = "button";
      preview.className = "preview";
      preview.textContent = i18n.i18nPreview;
      preview.addEventListener("mousedown", function (e) { e.preventDefault(); e.stopPropagation(); previewPhrase(p, preview); });
      li.append(code, text, preview);
      if (index === 0) li.className = "active";
      li.addEventListener("mousedown", function (e) { e.preventDefault(); pickPhrase(p); });
      phraseList.appendChild(li);
    });
    phrasePanel.hidden = false;
  }

  function hidePhrases() {
    searchSeq += 1;  // a search still on its way must not open the picker again
    phrasePanel.hidden = true;
    state.phraseResults = [];
  }

  function pickPhrase(p) {
    state.phrase = p;
    textarea.value = p.text;
    phraseChip.textContent = "/" + p.short_code;
    phraseChip.hidden = false;
    hidePhrases();
    textarea.focus();
  }

  async function previewPhrase(p, button) {
    if (button.classList.contains("playing")) { stopPlayback(); return; }
    stopPlayback();
    let url = null;
    if (p.preview_url) {
      // Spoken as the customer will hear it: the emotion currently chosen in the composer.
      url = p.preview_url + (emotionSelect.value ? "?emotion=" + encodeURIComponent(emotionSelect.value) : "");
    } else {
      const response = await http(config.ttsUrl, {
        method: "POST",
        // Placeholders (customer.nickname, agent.name) are filled in per customer when sent; the
        // preview leaves them out rather than reading the braces aloud.
        json: { text: p.text.replace(/\{\{[^}]*\}\}/g, ""), emotion: emotionSelect.value || undefined, format: "mp3" },
      });
      if (!response.ok) { $("reply-error").textContent = await errorOf(response); return; }
      url = URL.createObjectURL(await response.blob());
    }
    button.classList.add("playing");
    button.textContent = i18n.i18nStop;
    player.src = url;
    player.play().catch(function () { stopPlayback(); });
  }

  $("phrases-open").addEventListener("click", function () {
    phraseSearch.value = "";
    searchPhrases("");
    phraseSearch.focus();
  });
  phraseSearch.addEventListener("input", function () { searchPhrases(phraseSearch.value); });
  phraseSearch.addEventListener("keydown", function (e) { phraseKeys(e); if (e.key === "Escape") textarea.focus(); });
  document.addEventListener("mousedown", function (e) {
    if (!phrasePanel.hidden && !phrasePanel.contains(e.target) && e.target !== textarea && e.target !== $("phrases-open")) hidePhrases();
  });

  function phraseKeys(e) {
    if (phrasePanel.hidden || !state.phraseResults.length) return false;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const n = state.phraseResults.length;
      state.activeIndex = (state.activeIndex + (e.key === "ArrowDown" ? 1 : -1) + n) % n;
      Array.from(phraseList.children).forEach(function (li, i) { li.classList.toggle("active", i === state.activeIndex); });
      phraseList.children[state.activeIndex].scrollIntoView({ block: "nearest" });
      return true;
    }
    if (e.key === "Enter" || e.key === "Tab") {
      e.preventDefault();
      pickPhrase(state.phraseResults[state.activeIndex]);
      return true;
    }
    if (e.key === "Escape") { hidePhrases(); return true; }
    return false;
  }

  textarea.addEventListener("input", function () {
    if (state.phrase && textarea.value !== state.phrase.text) {  // edited: send as free text
      state.phrase = null;
      phraseChip.hidden = true;
    }
    const match = /^\/(\S*)$/.exec(textarea.value);
    if (match) searchPhrases(match[1]); else if (document.activeElement === textarea) hidePhrases();
    const now = Date.now();
    if (chatSocket && chatSocket.readyState === WebSocket.OPEN && textarea.value && !match && now - lastTypingSent > 3000) {
      lastTypingSent = now;
      chatSocket.send('{"type":"typing"}');
    }
  });

  textarea.addEventListener("keydown", function (e) {
    if (phraseKeys(e)) return;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  emotionSelect.addEventListener("change", function () {
    state.emotionTouched = emotionSelect.value !== state.suggestion;
    $("suggest").dataset.overridden = String(state.emotionTouched);
  });

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    const text = textarea.value.trim();
    if (!text && !state.phrase) return;
    $("reply-error").textContent = "";
    const body = state.phrase && textarea.value === state.phrase.text ? { short_code: state.phrase.short_code } : { text: text };
    // Only an explicit choice is an override; otherwise the server applies the policy.
    if (state.emotionTouched) body.emotion = emotionSelect.value;
    $("send").disabled = true;
    try {
      const response = await http(actionUrl(state.selected, "reply"), { method: "POST", json: body });
      if (!response.ok) { $("reply-error").textContent = await errorOf(response); return; }
      const data = await response.json();
      upsert(data.message || data);
      textarea.value = "";
      state.phrase = null;
      phraseChip.hidden = true;
      state.emotionTouched = false;
      setSuggestion(state.suggestion);
      box.scrollTop = box.scrollHeight;
    } finally {
      $("send").disabled = false;
    }
  });

  // --- start --------------------------------------------------------------------------------------
  window.addEventListener("keydown", function (e) {
    if (e.key === "/" && document.activeElement === document.body && !form.hidden) {
      e.preventDefault();
      textarea.focus();
      textarea.value = "/";
      searchPhrases("");
    }
  });

  (async function start() {
    await loadQueue(false).catch(function () {});
    booted = true;
    state.conversations.forEach(function (c) { state.known.add(c.id + ":w" + (c.waiting_since || "")); });
    if (config.initialConversation) select(config.initialConversation);
    connectConsole(0);
  })();
})();
