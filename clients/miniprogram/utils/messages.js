// Messages as the chat page shows them: one normalised shape whatever the server sent (REST page,
// POST answer or WebSocket event), kept sorted by id, deduplicated by id and by client_id, and
// with an audio status that only moves forward (a late `pending` never hides a ready clip).
const { absoluteUrl } = require("./api");

// none < pending < failed < ready: failed may still become ready (the recovery sweep re-voices),
// but nothing ever goes back to pending once the clip is ready or has failed.
const AUDIO_RANK = { none: 0, pending: 1, failed: 2, ready: 3 };
const SENDER_LABEL = { customer: "我", agent: "客服", bot: "智能客服", system: "系统" };

function asText(value) {
  return typeof value === "string" ? value : "";
}

function mediaUrl(url) {
  if (!url || typeof url !== "string") return "";
  return url.charAt(0) === "/" ? absoluteUrl(url) : url;
}

function durationLabel(ms) {
  if (!ms || ms <= 0) return "";
  return Math.max(1, Math.round(ms / 1000)) + '"';
}

// Accepts today's payload (`audio` object plus flat `audio_status`/`audio_url`) and the voice
// message contract (#10: `kind`, `voice`, `transcript`, `moderation`). Returns null for
// anything that is not a message, so a malformed event can never reach the page.
function normalizeMessage(raw) {
  if (!raw || typeof raw !== "object") return null;
  const id = Number(raw.id);
  if (!Number.isInteger(id) || id <= 0) return null;
  const audioRaw = raw.audio && typeof raw.audio === "object" ? raw.audio : {};
  let audioStatus = audioRaw.status || raw.audio_status || "none";
  if (!(audioStatus in AUDIO_RANK)) audioStatus = "none";
  const audioUrl = mediaUrl(audioRaw.url || raw.audio_url);
  const voiceRaw = raw.voice && typeof raw.voice === "object" ? raw.voice : null;
  const transcriptRaw = raw.transcript && typeof raw.transcript === "object" ? raw.transcript : null;
  const moderation = raw.moderation && typeof raw.moderation === "object" ? raw.moderation : null;
  const sender = asText(raw.sender_kind) || "system";
  let text = asText(raw.text);
  if (moderation && moderation.flagged && typeof moderation.masked_text === "string") {
    text = moderation.masked_text;
  }
  const kind = raw.kind === "voice" || voiceRaw ? "voice" : "text";
  const audioMs = audioRaw.duration_ms || 0;
  const voiceMs = (voiceRaw && voiceRaw.duration_ms) || 0;
  return {
    id,
    clientId: asText(raw.client_id),
    sender,
    senderLabel: SENDER_LABEL[sender] || "",
    author: asText(raw.author),
    mine: sender === "customer",
    kind,
    text,
    createdAt: asText(raw.created_at),
    audio: {
      status: audioStatus,
      url: audioStatus === "ready" ? audioUrl : "",
      durationMs: audioMs,
      durationLabel: durationLabel(audioMs),
    },
    voice: voiceRaw
      ? { url: mediaUrl(voiceRaw.url), durationMs: voiceMs, durationLabel: durationLabel(voiceMs) }
      : null,
    transcript: transcriptRaw
      ? {
          status: asText(transcriptRaw.status) || "pending",
          text: asText(transcriptRaw.text),
          empty: !!transcriptRaw.empty,
        }
      : null,
    sendState: "sent",
  };
}

// Merge an update into what we already show. Audio never moves back; text and transcript take
// the newer value (an agent edit, a finished transcript).
function mergeMessage(current, incoming) {
  const merged = Object.assign({}, current, incoming);
  const oldRank = AUDIO_RANK[current.audio.status] || 0;
  const newRank = AUDIO_RANK[incoming.audio.status] || 0;
  if (newRank < oldRank) {
    merged.audio = current.audio;
  } else if (newRank === oldRank && !incoming.audio.url && current.audio.url) {
    merged.audio = current.audio;
  }
  if (!incoming.voice && current.voice) merged.voice = current.voice;
  if (current.transcript && incoming.transcript) {
    if (current.transcript.status !== "pending" && incoming.transcript.status === "pending") {
      merged.transcript = current.transcript;
    }
  } else if (!incoming.transcript && current.transcript) {
    merged.transcript = current.transcript;
  }
  return merged;
}

class MessageStore {
  constructor() {
    this.items = [];
    this.localSeq = 0;
  }

  get lastId() {
    // Only server ids count: local (unsent) bubbles have negative ids.
    let last = 0;
    for (const item of this.items) if (item.id > last) last = item.id;
    return last;
  }

  find(id) {
    return this.items.find(function (item) {
      return item.id === id;
    });
  }

  // Returns "added", "updated" or "ignored" (a duplicate or not a message at all).
  upsert(raw) {
    const incoming = raw && raw.audio && raw.sendState ? raw : normalizeMessage(raw);
    if (!incoming) return "ignored";
    let index = this.items.findIndex(function (item) {
      return item.id === incoming.id;
    });
    if (index < 0 && incoming.clientId) {
      // Our own optimistic bubble, now confirmed by the server (POST answer or socket event).
      index = this.items.findIndex(function (item) {
        return item.id < 0 && item.clientId === incoming.clientId;
      });
      if (index >= 0) {
        this.items[index] = Object.assign({}, incoming, { sendState: "sent" });
        this.sort();
        return "updated";
      }
    }
    if (index < 0) {
      this.items.push(incoming);
      this.sort();
      return "added";
    }
    const merged = mergeMessage(this.items[index], incoming);
    if (JSON.stringify(merged) === JSON.stringify(this.items[index])) return "ignored";
    this.items[index] = merged;
    return "updated";
  }

  // A bubble shown before the server answered; it keeps the client_id the server will echo.
  addLocal({ clientId, text, kind, voice }) {
    this.localSeq += 1;
    const localId = -this.localSeq;
    const local = {
      id: localId,
      clientId,
      sender: "customer",
      senderLabel: SENDER_LABEL.customer,
      author: "",
      mine: true,
      kind: kind || "text",
      text: text || "",
      createdAt: new Date().toISOString(),
      audio: { status: "none", url: "", durationMs: 0, durationLabel: "" },
      voice: voice || null,
      transcript: null,
      sendState: "sending",
    };
    this.items.push(local);
    return local;
  }

  setSendState(clientId, sendState) {
    const item = this.items.find(function (m) {
      return m.id < 0 && m.clientId === clientId;
    });
    if (item) item.sendState = sendState;
    return item;
  }

  sort() {
    // Server messages by id; local ones stay at the end in the order they were written.
    this.items.sort(function (a, b) {
      if (a.id > 0 && b.id > 0) return a.id - b.id;
      if (a.id > 0) return -1;
      if (b.id > 0) return 1;
      return b.id - a.id;
    });
  }
}

module.exports = { AUDIO_RANK, MessageStore, durationLabel, mergeMessage, normalizeMessage };
