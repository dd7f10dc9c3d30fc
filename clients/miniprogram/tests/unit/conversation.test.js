const { conversationView } = require("../../utils/conversation");

test("bot, queue position, serving agent (object or legacy string), resolved", () => {
  expect(conversationView({ id: 1, status: "open", assigned_agent: null }).statusText).toBe("智能客服为您服务");
  expect(conversationView({ id: 1, status: "waiting", queue_position: 1 }).statusText).toBe("正在为您转接人工客服，您前面还有 0 人");
  expect(conversationView({ id: 1, status: "waiting", queue_position: null }).statusText).toBe("正在为您转接人工客服，请稍候");
  expect(conversationView({ id: 1, status: "open", assigned_agent: { id: 3, display_name: "小李" } })).toMatchObject({ agentName: "小李", statusText: "客服 小李 正在为您服务" });
  expect(conversationView({ id: 1, status: "pending", assigned_agent: "小王" }).statusText).toBe("客服 小王 正在为您服务");
  expect(conversationView({ id: 1, status: "resolved", csat: { rating: 5 } })).toMatchObject({ statusText: "本次会话已结束", csatGiven: true });
  for (const bad of [null, 3, "x"]) expect(conversationView(bad)).toBeNull();
});

test("outside business hours: when agents are back, in the server's local time", () => {
  const view = conversationView({ id: 1, status: "waiting", service: { open_now: false, next_open_at: "2026-12-04T09:00:00+08:00" } });
  expect(view.serviceText).toBe("当前为非人工服务时间，人工客服将于 12月04日 09:00 上线");
  expect(conversationView({ id: 1, status: "open", service: { open_now: false, next_open_at: null } }).serviceText).toBe("当前为非人工服务时间");
  expect(conversationView({ id: 1, status: "open", service: { open_now: true } }).serviceText).toBe("");
});
