// The conversation banner: bot, queue position, serving agent or resolved (#9 contract).
function conversationView(raw) {
  if (!raw || typeof raw !== "object") return null;
  const agent = raw.assigned_agent;
  // The contract says {id, display_name}; older servers send the display name as a string.
  const agentName = agent && typeof agent === "object" ? agent.display_name || "" : agent || "";
  const queuePosition = Number.isInteger(raw.queue_position) ? raw.queue_position : null;
  let statusText = "智能客服为您服务";
  if (raw.status === "waiting") {
    statusText = queuePosition
      ? "正在为您转接人工客服，您前面还有 " + Math.max(0, queuePosition - 1) + " 人"
      : "正在为您转接人工客服，请稍候";
  } else if (raw.status === "resolved") {
    statusText = "本次会话已结束";
  } else if (agentName) {
    statusText = "客服 " + agentName + " 正在为您服务";
  }
  // Business hours (#9): outside them a handoff waits until agents are back.
  let serviceText = "";
  if (raw.service && typeof raw.service === "object" && raw.service.open_now === false) {
    serviceText = "当前为非人工服务时间";
    const next = typeof raw.service.next_open_at === "string" ? raw.service.next_open_at : "";
    // The server sends local (Asia/Shanghai) ISO times: show its own date and clock as written.
    const match = next.match(/^\d{4}-(\d{2})-(\d{2})T(\d{2}):(\d{2})/);
    if (match) serviceText += "，人工客服将于 " + match[1] + "月" + match[2] + "日 " + match[3] + ":" + match[4] + " 上线";
  }
  return {
    id: raw.id,
    serviceText,
    status: raw.status || "open",
    agentName,
    queuePosition,
    statusText,
    csatGiven: !!raw.csat,
  };
}

module.exports = { conversationView };
