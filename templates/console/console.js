// Agent console: live conversation (WebSocket, polling fallback), /shortcode phrase search,
// replies over fetch with CSRF. Plain JS, no build step.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("console-config").textContent);
  const box = document.getElementById("messages");
  const form = document.getElementById("reply-form");
  const textarea = document.getElementById("reply-text");
  const emotionSelect = document.getElementById("emotion");
  const suggestionLabel = document.getElementById("suggestion-label");
  const phraseList = document.getElementById("phrase-list");
  const phraseChip = document.getElementById("phrase-chip");
  const errorBox = document.getElementById("reply-error");
  const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const i18n = box.dataset;
  const senders = { customer: i18n.i18nCustomer, agent: i18n.i18nAgent, bot: i18n.i18nBot, system: i18n.i18nSystem };

  let lastId = 0;
  let suggestion = config.suggestion;
  let emotionTouched = false;   // the agent chose a tone by hand: keep it
  let phrase = null;            // {short_code, text} picked from the list
  let phraseResults = [];
  let activeIndex = 0;
  let pollTimer = null;
  let booted = false;           // initial render: no refresh per message

  // --- messages -------------------------------------------------------------------------
  function renderAudio(wrapper, m) {
    let slot = wrapper.querySelector(".audio");
    if (!slot) {
      slot = document.createElement("div");
      slot.className = "audio";
      wrapper.appendChild(slot);
    }
    const audio = m.audio;
    if (audio.status === "ready" && audio.url) {
      if (!slot.querySelector("audio")) {
        slot.textContent = "";
        const player = document.createElement("audio");
        player.controls = true;
        player.preload = "none";
        player.src = audio.url;
        slot.appendChild(player);
      }
    } else if (audio.status === "pending") {
      slot.innerHTML = "";
      slot.className = "audio muted";
      slot.textContent = i18n.i18nPending;
    } else if (audio.status === "failed") {
      slot.className = "audio muted";
      slot.textContent = i18n.i18nFailed;
      slot.title = audio.error || "";
    } else {
      slot.textContent = "";
    }
  }

  function upsert(m) {
    let wrapper = box.querySelector('[data-message-id="' + m.id + '"]');
    const isNew = !wrapper;
    if (isNew) {
      wrapper = document.createElement("div");
      wrapper.className = "msg from-" + m.sender_kind;
      wrapper.dataset.messageId = m.id;
      const meta = document.createElement("div");
      meta.className = "muted meta";
      wrapper.appendChild(meta);
      const bubble = document.createElement("div");
      bubble.className = "bubble";
      bubble.textContent = m.text;
      wrapper.appendChild(bubble);
      box.appendChild(wrapper);
    }
    const parts = [senders[m.sender_kind] || m.sender_kind];
    if (m.author) parts.push(m.author);
    if (m.intent) parts.push("#" + m.intent.label);
    if (m.audio.emotion) parts.push("♪" + m.audio.emotion.label);
    parts.push(new Date(m.created_at).toLocaleTimeString());
    wrapper.querySelector(".meta").textContent = parts.join(" · ");
    wrapper.dataset.audioStatus = m.audio.status;
    renderAudio(wrapper, m);
    lastId = Math.max(lastId, m.id);
    if (isNew) box.scrollTop = box.scrollHeight;
    if (booted && isNew && m.sender_kind === "customer") refresh();  // the policy may suggest a new tone
  }

  function setSuggestion(name) {
    suggestion = name;
    const option = Array.from(emotionSelect.options).find((o) => o.value === name);
    suggestionLabel.textContent = option ? option.textContent : "—";
    if (!emotionTouched && option) emotionSelect.value = name;
  }

  async function refresh() {
    // All messages, not only new ones: audio of earlier replies may have become ready.
    const response = await fetch(config.messagesUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    data.messages.forEach(upsert);
    setSuggestion(data.suggestion);
  }

  // --- live updates -----------------------------------------------------------------------
  function startPolling() {
    if (!pollTimer) pollTimer = setInterval(refresh, 3000);
  }

  function connect(attempt) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let socket;
    try {
      socket = new WebSocket(scheme + location.host + config.wsPath);
    } catch (e) {
      startPolling();
      return;
    }
    socket.onopen = function () {
      document.body.dataset.live = "websocket";
      if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
      refresh();  // catch up on anything sent while we were connecting
    };
    socket.onmessage = function (event) {
      const data = JSON.parse(event.data);
      if (data.message) upsert(data.message);
    };
    socket.onclose = function (event) {
      document.body.dataset.live = "polling";
      startPolling();
      if (event.code === 4401 || event.code === 4403) return;  // refused: polling only
      setTimeout(function () { connect(attempt + 1); }, Math.min(30000, 1000 * 2 ** attempt));
    };
  }

  // --- phrase search ----------------------------------------------------------------------
  function hidePhrases() {
    phraseList.hidden = true;
    phraseResults = [];
  }

  function showPhrases(items) {
    phraseResults = items;
    activeIndex = 0;
    phraseList.innerHTML = "";
    items.forEach(function (p, index) {
      const li = document.createElement("li");
      li.dataset.shortCode = p.short_code;
      li.textContent = "/" + p.short_code + "  " + p.title + " — " + p.text;
      if (index === 0) li.className = "active";
      li.addEventListener("mousedown", function (e) { e.preventDefault(); pickPhrase(p); });
      phraseList.appendChild(li);
    });
    phraseList.hidden = items.length === 0;
  }

  function pickPhrase(p) {
    phrase = p;
    textarea.value = p.text;
    phraseChip.textContent = "/" + p.short_code;
    hidePhrases();
    textarea.focus();
  }

  let searchSeq = 0;
  textarea.addEventListener("input", async function () {
    if (phrase && textarea.value !== phrase.text) {  // edited: send as free text
      phrase = null;
      phraseChip.textContent = "";
    }
    const match = /^\/(\S*)$/.exec(textarea.value);
    if (!match) { hidePhrases(); return; }
    const seq = ++searchSeq;
    const response = await fetch(config.phrasesUrl + "?q=" + encodeURIComponent(match[1]), { credentials: "same-origin" });
    if (!response.ok || seq !== searchSeq) return;
    showPhrases((await response.json()).phrases);
  });

  textarea.addEventListener("keydown", function (e) {
    if (!phraseList.hidden && phraseResults.length) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        activeIndex = (activeIndex + (e.key === "ArrowDown" ? 1 : -1) + phraseResults.length) % phraseResults.length;
        Array.from(phraseList.children).forEach((li, i) => li.classList.toggle("active", i === activeIndex));
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        pickPhrase(phraseResults[activeIndex]);
        return;
      }
      if (e.key === "Escape") { hidePhrases(); return; }
    }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });

  emotionSelect.addEventListener("change", function () { emotionTouched = emotionSelect.value !== suggestion; });

  // --- sending ----------------------------------------------------------------------------
  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    errorBox.textContent = "";
    const body = phrase ? { short_code: phrase.short_code } : { text: textarea.value };
    // Only an explicit choice is an override; otherwise the server applies the policy.
    if (emotionTouched) body.emotion = emotionSelect.value;
    const response = await fetch(config.replyUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      errorBox.textContent = (data.error && data.error.message) || response.statusText;
      return;
    }
    upsert(data.message);
    textarea.value = "";
    phrase = null;
    phraseChip.textContent = "";
    emotionTouched = false;
    setSuggestion(suggestion);
  });

  JSON.parse(document.getElementById("initial-messages").textContent).forEach(upsert);
  booted = true;
  connect(0);
})();
