// The chats page: one card per chat with its unknown-sender policy and a small form per wired agent.
// Every change goes to /api/chats and the card is redrawn from the answer; other tabs follow via "chats.changed".
"use strict";
(() => {
  const { t, api, el, on, toast } = window.NC;
  const root = document.getElementById("chats");
  const lists = {
    policies: JSON.parse(root.dataset.policies),
    engage: JSON.parse(root.dataset.engageModes),
    scopes: JSON.parse(root.dataset.senderScopes),
    ignored: JSON.parse(root.dataset.ignoredPolicies),
    sessions: JSON.parse(root.dataset.sessionModes),
  };
  let agents = [];
  let dirty = false;   // a form has unsaved edits: live reloads wait so they do not wipe them
  let stale = false;

  // Event handlers: the API helper already showed its error as a toast; anything else is a bug worth logging.
  const guarded = (fn) => (...args) => fn(...args).catch((err) => { if (!(err instanceof NC.ApiError)) console.error(err); });

  function select(id, name, values, current, prefix) {
    return el("select", { id, name },
      values.map((v) => el("option", { value: v, selected: v === current }, t(`chats.${prefix}${v}`))));
  }

  function field(label, control, hint) {
    return el("div", { class: "field" }, el("label", { for: control.id }, label), control,
      hint ? el("span", { class: "hint" }, hint) : null);
  }

  // "Answers every message" is pattern mode with the pattern "."; the page offers it as a choice of its own, so the
  // regular expression only shows for someone who picks a pattern on purpose.
  const EVERY = "all";
  const engageChoice = (w) => (w.engage_mode === "pattern" && w.engage_pattern === "." ? EVERY : w.engage_mode);
  const channelName = (type) => word("chats.channel_", type, type);
  function word(prefix, key, fallback) {
    const text = t(`${prefix}${key}`);
    return text === `${prefix}${key}` ? fallback : text;
  }

  function summary(w) {
    const when = engageChoice(w) === EVERY ? t("chats.summary_every")
      : w.engage_mode === "pattern" ? t("chats.summary_pattern") : t(`chats.summary_${w.engage_mode}`);
    return t(w.sender_scope === "known" ? "chats.summary_known" : "chats.summary_all", { agent: w.agent_name, when });
  }

  function wiringForm(chat, w, replace) {
    const id = (name) => `${w.id}-${name}`;
    const engage = select(id("engage"), "engage_mode", [EVERY, ...lists.engage], engageChoice(w), "engage_");
    const pattern = el("input", { id: id("pattern"), name: "engage_pattern", type: "text", value: w.engage_pattern || "",
      autocomplete: "off", spellcheck: "false" });
    const patternField = field(t("chats.pattern"), pattern, t("chats.pattern_hint"));
    patternField.hidden = engage.value !== "pattern";
    engage.addEventListener("change", () => {
      patternField.hidden = engage.value !== "pattern";
      if (engage.value === "pattern" && (!pattern.value || pattern.value === ".")) pattern.value = "";
    });
    const scope = select(id("scope"), "sender_scope", lists.scopes, w.sender_scope, "senders_");
    const ignored = select(id("ignored"), "ignored_message_policy", lists.ignored, w.ignored_message_policy, "ignored_");
    const session = select(id("session"), "session_mode", lists.sessions, w.session_mode, "session_");
    const priority = el("input", { id: id("priority"), name: "priority", type: "number", step: "1", min: "-1000",
      max: "1000", value: String(w.priority) });
    const error = el("p", { class: "field-error", role: "alert", hidden: true });
    const save = el("button", { type: "submit", class: "primary small" }, t("chats.save"));
    const unwire = el("button", { type: "button", class: "danger small" }, t("chats.unwire"));
    const names = { agent: w.agent_name, chat: chat.title };

    const form = el("form", { class: "wiring", dataset: { wiring: w.id }, "aria-label": w.agent_name },
      el("h3", {}, w.agent_name),
      el("p", { class: "wiring-summary" }, summary(w)),
      el("div", { class: "wiring-grid" },
        field(t("chats.engage"), engage, chat.is_group ? null : t("chats.engage_hint")), patternField,
        field(t("chats.senders"), scope), field(t("chats.session"), session)),
      el("details", { class: "advanced" }, el("summary", {}, t("chats.advanced")),
        el("div", { class: "wiring-grid" },
          field(t("chats.ignored"), ignored), field(t("chats.priority"), priority, t("chats.priority_hint")))),
      error,
      el("div", { class: "row" }, save, unwire));
    form.addEventListener("input", () => { dirty = true; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      if (engage.value === "pattern" && !pattern.value.trim()) {
        error.textContent = t("chats.pattern_missing");
        error.hidden = false;
        pattern.focus();
        return;
      }
      save.disabled = true;
      try {
        const updated = await api("PATCH", `/api/chats/${encodeURIComponent(chat.id)}/wirings/${encodeURIComponent(w.id)}`, {
          engage_mode: engage.value === EVERY ? "pattern" : engage.value,
          engage_pattern: engage.value === EVERY ? "." : engage.value === "pattern" ? pattern.value : null,
          sender_scope: scope.value,
          ignored_message_policy: ignored.value,
          session_mode: session.value,
          priority: Number.parseInt(priority.value || "0", 10),
        }, { quiet: true });
        dirty = false;
        toast(t("chats.wiring_saved", names), "good");
        replace(updated);
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        save.disabled = false;
      }
    });
    unwire.addEventListener("click", guarded(async () => {
      if (!window.confirm(t("chats.unwire_confirm", names))) return;
      const updated = await api("DELETE", `/api/chats/${encodeURIComponent(chat.id)}/wirings/${encodeURIComponent(w.id)}`);
      toast(t("chats.unwired", names), "good");
      replace(updated);
    }));
    return form;
  }

  function wireForm(chat, replace) {
    if (!agents.length) return el("p", { class: "hint" }, t("chats.no_agents"));
    const wired = new Set(chat.wirings.map((w) => w.agent_group_id));
    const free = agents.filter((a) => !wired.has(a.id));
    if (!free.length) return el("p", { class: "hint" }, t("chats.all_wired"));
    const choice = el("select", { id: `${chat.id}-wire`, name: "agent_group_id" },
      free.map((a) => el("option", { value: a.id }, a.name)));
    const form = el("form", { class: "wire-form" },
      el("label", { for: choice.id }, t("chats.wire")),
      el("div", { class: "row" }, choice, el("button", { type: "submit" }, t("chats.wire_button"))));
    form.addEventListener("input", () => { dirty = true; });
    form.addEventListener("submit", guarded(async (event) => {
      event.preventDefault();
      const agent = free.find((a) => a.id === choice.value);
      const updated = await api("POST", `/api/chats/${encodeURIComponent(chat.id)}/wirings`, { agent_group_id: choice.value });
      dirty = false;
      toast(t("chats.wired", { agent: agent ? agent.name : choice.value, chat: chat.title }), "good");
      replace(updated);
    }));
    return form;
  }

  function chatCard(chat) {
    const card = el("section", { class: "card chat", dataset: { chat: chat.id }, "aria-label": chat.title });
    const replace = (updated) => card.replaceWith(chatCard(updated));
    const policy = select(`${chat.id}-policy`, "unknown_sender_policy", lists.policies, chat.unknown_sender_policy,
      "policy_");
    policy.addEventListener("change", async () => {
      try {
        const updated = await api("PATCH", `/api/chats/${encodeURIComponent(chat.id)}`, { unknown_sender_policy: policy.value });
        toast(t("chats.policy_saved", { chat: chat.title }), "good");
        replace(updated);
      } catch (_) {
        policy.value = chat.unknown_sender_policy;
      }
    });
    card.append(...[
      el("div", { class: "chat-head" },
        el("h2", {}, chat.title),
        el("span", { class: "badge" }, channelName(chat.channel_type)),
        el("span", { class: "badge" }, chat.is_group ? t("chats.group") : t("chats.direct")),
        chat.denied_at ? el("span", { class: "badge bad" }, t("chats.rejected")) : null,
        chat.pending_registration ? el("a", { class: "badge warn", href: "/approvals" }, t("chats.waiting")) : null),
      chat.denied_at ? el("p", { class: "hint" }, t("chats.rejected_hint")) : null,
      el("div", { class: "field policy" }, el("label", { for: policy.id }, t("chats.policy")), policy),
      el("h3", {}, t("chats.agents")),
      chat.wirings.length
        ? el("div", { class: "stack" }, chat.wirings.map((w) => wiringForm(chat, w, replace)))
        : el("p", { class: "muted" }, t("chats.no_wirings")),
      wireForm(chat, replace),
      el("details", { class: "advanced chat-advanced" }, el("summary", {}, t("chats.advanced_chat")),
        el("p", { class: "hint" }, t("chats.chat_id", { id: `${chat.channel_type}:${chat.platform_id}` })))].filter(Boolean));
    return card;
  }

  async function load({ force = false } = {}) {
    const data = await api("GET", "/api/chats");
    // Someone started editing while the list was on its way (a live reload after a save): keep their edit.
    if (dirty && !force) { stale = true; return; }
    agents = data.agents;
    dirty = false;
    stale = false;
    root.replaceChildren(...(data.chats.length
      ? data.chats.map(chatCard)
      : [el("p", { class: "empty" }, t("chats.empty"))]));
  }

  function refresh() {
    if (dirty) { stale = true; return; }
    load().catch(() => {});
  }
  root.addEventListener("focusout", () => { if (stale && !dirty) refresh(); });
  for (const kind of ["chats.changed", "chat.created", "channel.connected", "channel.rejected", "agent.created",
                      "agent.deleted"]) {
    on(kind, refresh);
  }
  load({ force: true }).catch(() => {});
})();
