// The activity page: tabs (deliveries, dropped messages, container logs, usage, internet), each loaded when opened and
// refreshed by the live events that concern it. The open tab is kept in the URL (#usage) so it can be linked.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { t, api, el, on } = NC;
  const $ = (id) => document.getElementById(id);
  const TABS = ["deliveries", "dropped", "containers", "usage", "internet"];
  const STATE_BADGE = { delivered: "good", failed: "bad", retry: "warn", sending: "" };
  let current = null;

  // ---------------------------------------------------------------------------------------------- formatting
  const num = (n) => Number(n || 0).toLocaleString("en");
  function money(v) {
    const n = Number(v || 0);
    return n > 0 && n < 0.01 ? `$${n.toFixed(4)}` : `$${n.toFixed(2)}`;
  }
  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }
  function reasonText(code) {
    const key = `activity.reason_${code}`;
    const text = t(key);
    return text === key ? code : text;
  }
  // Columns named in NUMERIC are right-aligned, header and cells alike.
  const NUMERIC = new Set(["col_attempts", "col_count", "col_calls", "col_input", "col_output", "col_cache_read",
    "col_cache_write", "col_cost"]);
  const table = (cls, columns, rows, foot) => el("div", { class: "table-wrap" }, el("table", { class: cls },
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", class: NUMERIC.has(c) ? "num" : null }, t(`activity.${c}`))))),
    el("tbody", {}, rows), foot || null));

  // ---------------------------------------------------------------------------------------------- deliveries
  async function loadDeliveries() {
    const data = await api("GET", "/api/activity/deliveries");
    $("delivery-counts").replaceChildren(...Object.entries(data.counts).filter(([, n]) => n > 0).map(([state, n]) =>
      el("span", { class: `badge ${STATE_BADGE[state] || ""}` }, t("activity.count_state", { state: t(`activity.state_${state}`), count: n }))));
    if (!data.deliveries.length) {
      $("delivery-list").replaceChildren(el("p", { class: "empty" }, t("activity.deliveries_empty")));
      return;
    }
    const rows = data.deliveries.map((d) => el("tr", { dataset: { state: d.state, messageId: d.message_out_id } },
      el("td", { class: "nowrap" }, d.updated_at || t("activity.unknown")),
      el("td", {}, d.agent_name || d.session_id),
      el("td", {}, d.destination || t("activity.unknown")),
      el("td", { class: "wrap" }, d.preview === null ? el("span", { class: "muted" }, t("activity.no_preview")) : d.preview),
      el("td", {}, el("span", { class: `badge ${STATE_BADGE[d.state] || ""}` }, t(`activity.state_${d.state}`))),
      el("td", { class: "num" }, num(d.attempts)),
      el("td", { class: "wrap" }, d.last_error ? el("div", { class: "error" }, d.last_error) : null,
        d.state === "retry" && d.next_attempt_at ? el("div", { class: "hint" }, t("activity.next_try", { when: d.next_attempt_at })) : null)));
    $("delivery-list").replaceChildren(table("deliveries",
      ["col_when", "col_agent", "col_to", "col_message", "col_state", "col_attempts", "col_error"], rows));
  }

  // ---------------------------------------------------------------------------------------------- dropped
  async function loadDropped() {
    const data = await api("GET", "/api/activity/dropped");
    $("dropped-summary").replaceChildren(
      el("p", {}, el("strong", {}, data.total_messages === 1 ? t("activity.dropped_total_one") : t("activity.dropped_total", { count: num(data.total_messages) }))),
      el("ul", { class: "reasons" }, data.reasons.map((r) =>
        el("li", {}, t("activity.dropped_reason_count", { count: num(r.messages), reason: reasonText(r.reason) })))));
    if (!data.dropped.length) {
      $("dropped-summary").replaceChildren();
      $("dropped-list").replaceChildren(el("p", { class: "empty" }, t("activity.dropped_empty")));
      return;
    }
    const rows = data.dropped.map((d) => el("tr", { dataset: { reason: d.reason } },
      el("td", { class: "nowrap" }, d.last_seen || t("activity.unknown")),
      el("td", {}, d.chat || `${d.channel_type} ${d.platform_id}`),
      el("td", {}, d.sender || t("activity.unknown")),
      el("td", {}, d.agent_name || t("activity.unknown")),
      el("td", { class: "wrap" }, el("div", {}, reasonText(d.reason)),
        d.detail ? el("div", { class: "hint" }, d.detail) : null, el("code", { class: "muted" }, d.reason)),
      el("td", { class: "num" }, num(d.count)),
      el("td", { class: "wrap muted" }, d.last_text || "")));
    $("dropped-list").replaceChildren(table("dropped",
      ["col_last_seen", "col_chat", "col_sender", "col_agent", "col_reason", "col_count", "col_text"], rows));
  }

  // ---------------------------------------------------------------------------------------------- what the agent did
  // A timeline in words from the session's records (services/activity/timeline.py); the raw container log is
  // behind a toggle below it, for a closer look.
  const picker = $("log-session");
  const quote = (text) => (text ? t("activity.quoted", { text }) : "");
  function timelineText(entry) {
    const values = { text: entry.text, who: entry.who, quote: quote(entry.text) };
    if (entry.kind === "received" && entry.who) return t("activity.tl_received_from", values);
    if (entry.kind === "model_called") return t("activity.tl_model_called", { model: entry.who, tokens: entry.text });
    const key = `activity.tl_${entry.kind}`;
    const text = t(key, values);
    return text === key ? entry.kind : text;
  }
  function renderTimeline(entries) {
    const list = $("timeline");
    if (!entries.length) {
      list.hidden = true;
      $("timeline-meta").textContent = t("activity.timeline_empty");
      return;
    }
    let day = null;
    const items = [];
    for (const entry of entries) {
      const [date, clock] = entry.at.split(" ");
      if (date !== day) { items.push(el("li", { class: "tl-day" }, date)); day = date; }
      items.push(el("li", { class: `tl tl-${entry.kind}`, dataset: { kind: entry.kind } },
        el("time", {}, clock), el("span", { class: "tl-dot", "aria-hidden": "true" }), el("span", {}, timelineText(entry))));
    }
    list.hidden = false;
    list.replaceChildren(...items);
    $("timeline-meta").textContent = t("activity.timeline_meta", { count: entries.length });
  }

  async function loadSessions() {
    const sessions = await api("GET", "/api/activity/sessions");
    const chosen = picker.value;
    picker.replaceChildren(...sessions.map((s) => el("option", { value: s.session_id }, t("activity.session_option", {
      agent: s.agent_name, chat: s.chat || t("activity.all_chats"), status: t(`activity.container_${s.container_status}`),
    }))));
    picker.disabled = !sessions.length;
    if (!sessions.length) {
      $("timeline-meta").textContent = t("activity.pick_none");
      $("timeline").hidden = true;
      $("raw-log").hidden = true;
      return;
    }
    $("raw-log").hidden = false;
    if (sessions.some((s) => s.session_id === chosen)) picker.value = chosen;
    await loadLog();
  }
  async function loadLog() {
    if (!picker.value) return;
    const tail = await api("GET", `/api/activity/logs/${encodeURIComponent(picker.value)}`);
    renderTimeline(tail.timeline || []);
    const box = $("log-text");
    box.hidden = false;
    box.textContent = tail.text || t("activity.log_empty");
    const meta = [tail.size_bytes
      ? t("activity.log_meta", { shown: size(tail.shown_bytes), size: size(tail.size_bytes), modified: tail.modified || t("activity.unknown") })
      : t("activity.log_meta_empty")];
    if (tail.truncated) meta.push(" ", t("activity.log_truncated", { path: t("activity.log_path") }));
    $("log-meta").replaceChildren(...meta);
    box.scrollTop = box.scrollHeight;
  }
  picker.addEventListener("change", loadLog);
  $("raw-log").addEventListener("toggle", (event) => {
    if (event.target.open) $("log-text").scrollTop = $("log-text").scrollHeight;  // the newest lines first in view
  });

  // ---------------------------------------------------------------------------------------------- usage
  async function loadUsage() {
    const data = await api("GET", "/api/activity/usage");
    renderToday(data.today);
    renderChart(data);
    const agentIndex = new Map(data.agents.map((a, i) => [a.agent_group_id, i]));
    if (!data.rows.length) {
      $("usage-agents").replaceChildren();
      $("usage-table").replaceChildren(el("p", { class: "empty" }, t("activity.usage_empty", { days: data.days })));
      return;
    }
    const cells = (r) => [r.calls, r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens]
      .map((n) => el("td", { class: "num" }, num(n))).concat(el("td", { class: "num" }, money(r.cost_usd)));
    const tokenCols = ["col_calls", "col_input", "col_output", "col_cache_read", "col_cache_write", "col_cost"];
    const swatch = (id) => el("span", { class: `swatch seg-${agentIndex.get(id) % 6}`, "aria-hidden": "true" });
    $("usage-agents").replaceChildren(el("h2", {}, t("activity.per_agent", { days: data.days })), table("usage-agents",
      ["col_agent", ...tokenCols],
      data.agents.map((a) => el("tr", {}, el("td", {}, swatch(a.agent_group_id), a.agent_name), cells(a))),
      el("tfoot", {}, el("tr", {}, el("th", { scope: "row" }, t("activity.total")), cells(data.total)))));
    $("usage-table").replaceChildren(el("h2", {}, t("activity.per_day")), table("usage-days", ["col_day", "col_agent", ...tokenCols],
      data.rows.map((r) => el("tr", { dataset: { day: r.day } }, el("td", { class: "nowrap" }, r.day),
        el("td", {}, swatch(r.agent_group_id), r.agent_name), cells(r)))));
  }

  function renderToday(today) {
    const box = $("usage-today");
    const spent = money(today.spent_usd);
    const parts = [el("h2", {}, t("activity.today"))];
    if (today.cap_on) {
      parts.push(el("p", {}, t("activity.today_cap", { spent, cap: money(today.cap_usd), percent: today.used_percent })),
        el("progress", { max: "100", value: String(Math.min(100, today.used_percent)), class: today.reached ? "reached" : "" }));
      if (today.reached) parts.push(el("p", { class: "error" }, t("activity.today_reached", { resets: today.resets_at })));
    } else {
      parts.push(el("p", {}, t("activity.today_no_cap", { spent })));
    }
    box.replaceChildren(...parts);
  }

  function renderChart(data) {
    $("usage-chart-title").textContent = t("activity.chart_title", { days: data.days });
    const agentIndex = new Map(data.agents.map((a, i) => [a.agent_group_id, i]));
    const max = Math.max(...data.daily.map((d) => d.cost_usd), 0);
    const bars = data.daily.map((d) => {
      const label = t("activity.chart_bar", { day: d.day, cost: money(d.cost_usd), calls: num(d.calls) });
      const segments = d.agents.filter((a) => a.cost_usd > 0).map((a) => el("div", {
        class: `seg seg-${agentIndex.get(a.agent_group_id) % 6}`,
        style: `height: ${max ? (100 * a.cost_usd / max).toFixed(2) : 0}%`,
        title: `${a.agent_name}: ${money(a.cost_usd)}`,
      }));
      return el("div", { class: "bar-col", title: label, dataset: { day: d.day } },
        el("div", { class: "bar" }, segments), el("div", { class: "bar-label" }, d.day.slice(8)));
    });
    const legend = el("div", { class: "legend row" }, data.agents.map((a, i) =>
      el("span", {}, el("span", { class: `swatch seg-${i % 6}`, "aria-hidden": "true" }), a.agent_name)));
    $("usage-chart").replaceChildren(
      el("div", { class: "chart-max hint" }, t("activity.chart_max", { cost: money(max) })),
      el("div", { class: "chart", role: "img", "aria-label": t("activity.chart_title", { days: data.days }) }, bars),
      legend);
  }

  // ---------------------------------------------------------------------------------------------- internet
  // What the agents' containers did on the internet (services/activity/egress.py), each line in words. Hosts and
  // paths come from the container and go in as text only.
  const netAgent = $("net-agent");
  const netKind = $("net-kind");
  let netOlder = null;
  function netWords(e) {
    const target = e.target;
    if (e.kind === "connect") {
      if (e.decision === "allowed" || e.decision === "approved") return t("activity.net_connected", { target });
      return e.reason ? t("activity.net_connect_refused", { target, reason: e.reason })
        : t("activity.net_connect_refused_plain", { target });
    }
    const parts = [t("activity.net_request", { credential: e.credential_name || t("activity.net_no_credential"),
      method: e.method, target })];
    if (e.decision === "approved") parts.push(t("activity.net_approved", { who: e.approved_by || t("activity.unknown") }));
    if (e.decision === "denied") parts.push(e.approved_by ? t("activity.net_denied", { who: e.approved_by }) : t("activity.net_denied_plain"));
    if (e.decision === "expired") parts.push(t("activity.net_expired"));
    if (e.decision === "refused") parts.push(e.reason ? t("activity.net_refused", { reason: e.reason }) : t("activity.net_refused_plain"));
    if (e.status_code !== null && e.status_code !== undefined) parts.push(String(e.status_code));
    return parts.join(" · ");
  }
  const netWhen = (at) => (at ? at.split(" ").flatMap((part, i) => [i ? " " : null, el("span", {}, part)]) : t("activity.unknown"));
  const netRow = (e) => el("tr", { dataset: { kind: e.kind, decision: e.decision } },
    el("td", { class: "nowrap net-when" }, netWhen(e.at)),
    el("td", {}, e.agent_name || t("activity.unknown")),
    el("td", { class: `wrap net-what ${["allowed", "approved"].includes(e.decision) ? "" : "net-refused"}` }, netWords(e)));
  async function loadInternet(before) {
    const query = new URLSearchParams();
    if (netAgent.value) query.set("agent", netAgent.value);
    if (netKind.value) query.set("kind", netKind.value);
    if (before) query.set("before", before);
    const data = await api("GET", `/api/activity/internet?${query}`);
    const chosen = netAgent.value;
    netAgent.replaceChildren(el("option", { value: "" }, t("activity.net_all_agents")),
      ...data.agents.map((a) => el("option", { value: a.id }, a.name)));
    netAgent.value = data.agents.some((a) => a.id === chosen) ? chosen : "";
    netOlder = data.older;
    $("net-older").hidden = netOlder === null;
    const body = $("net-list").querySelector("tbody");
    if (before && body) { body.append(...data.events.map(netRow)); return; }
    if (!data.events.length) {
      const filtered = Boolean(netAgent.value || netKind.value);
      $("net-list").replaceChildren(el("p", { class: "empty" }, filtered ? t("activity.net_empty_filtered") : t("activity.net_empty")),
        filtered ? el("button", { type: "button", id: "net-show-all", onclick: () => {
          netAgent.value = ""; netKind.value = ""; loadInternet().catch(() => {});
        } }, t("activity.net_show_all")) : null);
      return;
    }
    $("net-list").replaceChildren(table("internet", ["col_when", "col_agent", "col_what"], data.events.map(netRow)));
  }
  for (const box of [netAgent, netKind]) box.addEventListener("change", () => loadInternet().catch(() => {}));
  $("net-older").addEventListener("click", () => loadInternet(netOlder).catch(() => {}));

  // ---------------------------------------------------------------------------------------------- tabs
  const loaders = { deliveries: loadDeliveries, dropped: loadDropped, containers: loadSessions, usage: loadUsage,
    internet: () => loadInternet() };
  function select(name) {
    current = TABS.includes(name) ? name : "deliveries";
    for (const tab of TABS) {
      $(`tab-${tab}`).setAttribute("aria-selected", String(tab === current));
      $(`panel-${tab}`).hidden = tab !== current;
    }
    history.replaceState(null, "", `#${current}`);
    return loaders[current]().catch(() => {});  // the API helper already showed the error
  }
  for (const tab of TABS) $(`tab-${tab}`).addEventListener("click", () => select(tab));
  $("activity-refresh").addEventListener("click", () => select(current));

  const when = (tab, fn) => () => { if (current === tab) fn().catch(() => {}); };
  for (const kind of ["delivery.sent", "delivery.retry", "delivery.failed"]) on(kind, when("deliveries", loadDeliveries));
  on("message.dropped", when("dropped", loadDropped));
  on("usage.recorded", when("usage", loadUsage));
  on("egress.recorded", when("internet", () => loadInternet()));
  for (const kind of ["container.started", "container.exited", "container.killed", "container.start_failed"]) {
    on(kind, (data) => { if (current === "containers" && data.session_id === picker.value) loadSessions().catch(() => {}); });
  }
  select(location.hash.slice(1));
});
