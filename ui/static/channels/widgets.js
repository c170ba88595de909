// The parts every channel's page module shares (status head, pairing code box, paired chats, live updates), so a
// channel's module holds only what is its own. A page module (/static/channels/<name>.js, named by the channel's
// view as page_module) exports:
//   mount(root, options) → { update(view), refresh(), view }   builds the widget once into root; options.manage
//       shows the managing parts (channels page), options.title === false drops the heading (the wizard has its
//       own), options.onChange(view) follows every update, options.advance(message?) asks the wizard to move on
//       (given only by the wizard);
//   stepDone(view) → bool   whether the wizard's step for this channel is done (the channel works).
// Widgets are built once and then only shown, hidden and re-labelled, so typed input survives live updates. Text
// comes from the strings (channels.* and <name>.*, embedded in the page); data is always inserted as text.

export const el = (...args) => NC.el(...args);

// A t() for one string area: texts("telegram")("lead") is telegram.lead.
export const texts = (area) => (key, values) => NC.t(`${area}.${key}`, values);

const t = texts("channels");

const TONES = {
  connected: "good", pairing: "warn", connecting: "warn", reconnecting: "warn",
  logged_out: "bad", banned: "bad", replaced: "bad", failed: "bad",
};

export function clock(iso) {
  const moment = iso ? new Date(iso) : null;
  if (!moment || Number.isNaN(moment.getTime())) return "";
  return moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export async function busy(button, work) {
  const label = button.textContent;
  button.disabled = true;
  button.classList.add("busy");
  button.setAttribute("aria-busy", "true");
  try { return await work(); } finally {
    button.disabled = false;
    button.textContent = label;
    button.classList.remove("busy");
    button.removeAttribute("aria-busy");
  }
}

export function show(node, visible) { node.hidden = !visible; }

// The channel's service could not be reached at all (offline, DNS, a proxy): the adapter says so in status.extra.
export function unreachable(status) {
  return Boolean(status && status.extra && status.extra.problem === "unreachable");
}

export function fieldError() { return el("p", { class: "field-error", role: "alert", hidden: true }); }

export function setError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

// One button's request: asked first when confirmText is given, the button busy meanwhile, the boxes in clear
// emptied, a refusal shown in errorBox. The answer, or undefined when refused (or not confirmed).
export async function act(button, request, { errorBox, clear = [errorBox], confirmText } = {}) {
  if (confirmText && !window.confirm(confirmText)) return undefined;
  for (const box of clear) setError(box, "");
  try {
    return await busy(button, request);
  } catch (err) {
    setError(errorBox, err.message);
    return undefined;
  }
}

// Title, state badge, the adapter's own words, retry time and sends waiting: the top of every channel widget.
export function statusHead(title, withTitle) {
  const badge = el("span", { class: "badge ch-badge" });
  const heading = withTitle ? el("h2", { class: "ch-title" }, title, " ", badge)
    : el("p", { class: "ch-title" }, badge);
  const detail = el("p", { class: "ch-detail" });
  const waiting = el("p", { class: "ch-waiting" });
  const node = el("div", { class: "ch-head" }, heading, detail, waiting);
  function render(view) {
    const status = view.status;
    const offline = unreachable(status);
    badge.textContent = t(offline ? "state_unreachable" : `state_${status.state}`);
    badge.className = `badge ch-badge ${offline ? "bad" : TONES[status.state] || ""}`;
    badge.dataset.state = status.state;
    const parts = [];
    // Connected, pairing and an unreachable service have their own panels saying the same in more words.
    const ownPanel = ["connected", "pairing"].includes(status.state) || offline;
    if (status.detail && !ownPanel) parts.push(status.detail);
    if (status.state === "reconnecting" && status.retry_at) {
      parts.push(t("retry_at", { time: clock(status.retry_at) }));
    }
    detail.textContent = parts.join(" ");
    show(detail, parts.length > 0);
    waiting.textContent = view.waiting === 1 ? t("waiting_one") : t("waiting_many", { count: view.waiting });
    show(waiting, view.waiting > 0);
  }
  return { node, render };
}

// A pairing code to send from a phone chat, following channel.paired / pairing.invalidated for that channel.
export function pairingBox(channel, { buttonLabel, instructions }) {
  const get = el("button", { type: "button", class: "primary ch-get-code" }, buttonLabel);
  const code = el("output", { class: "ch-bigcode", "aria-live": "polite" });
  const lines = el("div", { class: "ch-send" });
  const wait = el("p", { class: "ch-wait muted" }, t("waiting_code"));
  const shown = el("div", { class: "ch-code-shown", hidden: true }, code, lines, wait);
  const done = el("p", { class: "notice good ch-paired", role: "status", hidden: true });
  const again = el("button", { type: "button", class: "ch-new-code" }, t("new_code"));
  const wrong = el("div", { class: "notice bad ch-invalidated", role: "alert", hidden: true },
    el("p", {}, t("invalidated")), again);
  const error = fieldError();
  const node = el("div", { class: "ch-code-box" }, done, wrong, shown, el("div", { class: "row" }, get), error);
  let current = null;
  let sendTo = null;

  function render() {
    show(shown, Boolean(current));
    show(get, !current && wrong.hidden);
    get.classList.toggle("primary", done.hidden);
    if (!current) return;
    code.textContent = current.code;
    lines.replaceChildren(...instructions(current.code, current.send_to || sendTo).map((line) => el("p", {}, line)));
  }

  async function fetchCode(button) {
    setError(error, "");
    try {
      current = await busy(button,
        () => NC.api("POST", `/api/channels/${channel}/pairing-code`, {}, { quiet: true }));
      wrong.hidden = true;
      done.hidden = true;
      render();
      code.focus();
    } catch (err) { setError(error, err.message); }
  }
  get.addEventListener("click", () => fetchCode(get));
  again.addEventListener("click", () => fetchCode(again));

  NC.on("channel.paired", (data) => {
    if (data.channel_type !== channel) return;
    current = null;
    wrong.hidden = true;
    done.textContent = `✓ ${t("paired", { chat: data.chat_name || data.platform_id })}`;
    done.hidden = false;
    render();
  });
  NC.on("pairing.invalidated", (data) => {
    if (data.channel_type !== channel || !current) return;
    current = null;
    done.hidden = true;
    wrong.hidden = false;
    render();
    again.focus();
  });

  return {
    node,
    // Whom to send the code to, and the code still pending on the server (shown again after a reload). A code
    // this page asked for stays until it is used or refused (events), since a view may predate it.
    set(pending, to, enabled) {
      sendTo = to;
      if (!enabled) current = null;
      else if (pending && !current) current = pending;
      render();
    },
  };
}

export function chatList() {
  const list = el("ul", { class: "ch-chats" });
  const node = el("div", { class: "ch-chats-box", hidden: true }, el("h3", {}, t("chats_title")), list);
  function render(view) {
    list.replaceChildren(...view.chats.map((chat) => el("li", {},
      el("strong", {}, chat.title), chat.is_group ? el("span", { class: "badge" }, t("chat_group")) : null, " ",
      el("span", { class: "muted" },
        chat.agents.length ? t("chat_answers", { agents: chat.agents.join(", ") }) : t("chat_no_agent")))));
    show(node, view.chats.length > 0);
  }
  return { node, render };
}

// The "turned off" panel with its Turn on button, the same for every channel.
export function offPanel(title) {
  const turnOn = el("button", { type: "button", class: "primary ch-turn-on" }, t("turn_on"));
  const node = el("div", { class: "ch-panel ch-off" }, el("p", {}, t("off_text", { title })),
    el("div", { class: "row" }, turnOn));
  return { node, turnOn };
}

// Live updates for one channel: events patch the view, then a short-delayed refetch fills in the rest.
export function follow(name, getView, apply) {
  let timer = null;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      NC.api("GET", `/api/channels/${name}`, undefined, { quiet: true }).then(apply).catch(() => {});
    }, 250);
  };
  NC.on("channel.status", (data) => {
    if (data.channel_type !== name || !getView()) return;
    const view = getView();
    const before = view.status.state;
    view.status = { state: data.state, detail: data.detail || "", account: data.account || null,
      retry_at: data.retry_at || null, extra: data.extra || {} };
    view.running = data.state !== "stopped";
    apply(view, before);
    refresh();
  });
  for (const kind of ["channels.changed", "channel.paired", "open"]) {
    NC.on(kind, (data) => { if (kind === "open" || data.channel_type === name) refresh(); });
  }
  return refresh;
}
