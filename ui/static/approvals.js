// The approvals page: every waiting request as a card with its buttons. A decision is the same as a click on the
// card in a chat (the server acts as the owner). Any approval event reloads the list and the menu badge.
"use strict";
(() => {
  const { t, api, el, on, toast } = window.NC;
  const root = document.getElementById("approvals");
  const kinds = JSON.parse(root.dataset.events);
  const guarded = (fn) => (...args) => fn(...args).catch((err) => { if (!(err instanceof NC.ApiError)) console.error(err); });
  let seen = null;  // ids shown so far: a new one gets a toast
  const chosen = new Map();  // agent picked per new-chat request, kept across live redraws

  function when(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  function setBadge(count) {
    const badge = document.querySelector("[data-badge=approvals]");
    if (!badge) return;
    badge.textContent = String(count);
    badge.hidden = count === 0;
  }

  function what(item) {
    const names = { agent: item.agent_name, who: item.who, chat: item.chat_name,
      action: item.details ? `${item.action} (${item.details})` : item.action };
    return t(`approvals.${item.kind}_what`, names);
  }

  function actions(item, agents) {
    const box = el("div", { class: "row actions" });
    const decide = guarded(async (approve, body) => {
      for (const b of box.querySelectorAll("button, select")) b.disabled = true;
      try {
        const decision = await api("POST", `/api/approvals/${encodeURIComponent(item.id)}/${approve ? "approve" : "reject"}`, body);
        const agent = body && body.agent_group_id ? agents.find((a) => a.id === body.agent_group_id) : null;
        toast(t(`approvals.outcome_${decision.outcome}`, { title: item.title, who: item.who, chat: item.chat_name,
          agent: agent ? agent.name : item.agent_name }), "good");
        await load();
      } finally {
        for (const b of box.querySelectorAll("button, select")) b.disabled = false;
      }
    });
    const button = (label, cls, fn) => el("button", { type: "button", class: cls, onclick: fn }, label);
    if (item.kind === "agent") {
      box.append(button(t("approvals.approve"), "primary", () => decide(true, {})),
        button(t("approvals.reject"), "danger", () => decide(false)));
    } else if (item.kind === "sender") {
      box.append(button(t("approvals.allow"), "primary", () => decide(true, {})),
        button(t("approvals.deny"), "danger", () => decide(false)));
    } else {
      if (agents.length) {
        const picked = chosen.get(item.id) || item.agent_group_id;
        const choice = el("select", { id: `agent-${item.id}`, "aria-label": t("approvals.connect_to"),
          onchange: () => chosen.set(item.id, choice.value) },
          agents.map((a) => el("option", { value: a.id, selected: a.id === picked }, a.name)));
        box.append(el("label", { for: choice.id }, t("approvals.connect_to")), choice,
          button(t("approvals.connect"), "primary", () => decide(true, { agent_group_id: choice.value })));
      } else {
        box.append(el("span", { class: "hint" }, t("approvals.no_agents")));
      }
      box.append(button(t("approvals.reject"), "danger", () => decide(false)));
    }
    return box;
  }

  function card(item, agents) {
    const meta = [t("approvals.asked", { when: when(item.created_at) }), t("approvals.expires", { when: when(item.expires_at) }),
      item.card_sent ? t("approvals.card_to", { approver: item.approver || "" }) : t("approvals.card_not_sent")];
    return el("section", { class: "card approval", dataset: { approval: item.id, kind: item.kind }, "aria-label": item.title },
      el("div", { class: "approval-head" },
        el("h2", {}, item.title),
        el("span", { class: `badge ${item.kind === "agent" ? "warn" : ""}` }, t(`approvals.kind_${item.kind}`)),
        item.channel_type ? el("span", { class: "badge" }, item.channel_type) : null),
      el("p", { class: "what" }, what(item)),
      item.message ? el("blockquote", {}, t("approvals.said", { text: item.message })) : null,
      el("p", { class: "meta" }, meta.join(" · ")),
      actions(item, agents));
  }

  async function load() {
    const queue = await api("GET", "/api/approvals");
    setBadge(queue.count);
    if (seen !== null) {
      for (const item of queue.items) if (!seen.has(item.id)) toast(t("approvals.new_request", { title: item.title }));
    }
    seen = new Set(queue.items.map((i) => i.id));
    root.replaceChildren(...(queue.items.length
      ? queue.items.map((item) => card(item, queue.agents))
      : [el("p", { class: "empty" }, t("approvals.empty"))]));
  }

  let pending = null;
  function refresh() {
    // Several events arrive for one decision (decided, allowed, changed): reload once for the burst.
    if (pending) return;
    pending = setTimeout(() => { pending = null; load().catch(() => {}); }, 150);
  }
  for (const kind of kinds) on(kind, refresh);
  let connected = false;
  on("hello", () => {  // every (re)connection starts with hello: after a lost stream, catch up on what happened
    if (connected) refresh();
    connected = true;
  });
  load().catch(() => {});
})();
