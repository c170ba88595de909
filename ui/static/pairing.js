// The phone-channel widgets shared by the channels page and the setup wizard: WhatsApp (which number, the live QR
// code, the phone-number code, the link's health) and Telegram (BotFather steps, token, privacy note, pairing code).
// Each widget is built once and then only shown, hidden and re-labelled, so typed input survives live updates.
// Text comes from the channels.* strings; data is inserted as text; the QR SVG only ever goes into an <img> data: URL.
"use strict";
(() => {
  const own = document.getElementById("nc-channel-strings");
  const extra = own ? JSON.parse(own.textContent) : {};
  const el = (...args) => NC.el(...args);

  function t(key, values) {
    const full = `channels.${key}`;
    if (!(full in extra)) return NC.t(full, values);
    let text = extra[full];
    for (const [name, value] of Object.entries(values || {})) text = text.split(`{${name}}`).join(String(value));
    return text;
  }

  const TONES = {
    connected: "good", pairing: "warn", connecting: "warn", reconnecting: "warn",
    logged_out: "bad", banned: "bad", replaced: "bad", failed: "bad",
  };
  const TROUBLE = ["logged_out", "banned", "replaced", "failed"];

  function clock(iso) {
    const moment = iso ? new Date(iso) : null;
    if (!moment || Number.isNaN(moment.getTime())) return "";
    return moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  // The adapter's SVG is made for inline HTML: no XML namespace (an <img> needs it) and a size but no viewBox (so it
  // would not scale). Add both and let CSS size the picture.
  function qrDataUrl(svg) {
    const source = svg.replace(/<svg\b(?![^>]*\sxmlns=)/, '<svg xmlns="http://www.w3.org/2000/svg"');
    const doc = new DOMParser().parseFromString(source, "image/svg+xml");
    const root = doc.documentElement;
    if (!root || root.nodeName.toLowerCase() !== "svg" || doc.getElementsByTagName("parsererror").length) return null;
    const width = parseFloat(root.getAttribute("width"));
    const height = parseFloat(root.getAttribute("height"));
    if (!root.getAttribute("viewBox") && width && height) root.setAttribute("viewBox", `0 0 ${width} ${height}`);
    root.removeAttribute("width");
    root.removeAttribute("height");
    root.setAttribute("shape-rendering", "crispEdges");
    const bytes = new TextEncoder().encode(new XMLSerializer().serializeToString(root));
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return `data:image/svg+xml;base64,${btoa(binary)}`;
  }

  async function busy(button, work) {
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

  function show(node, visible) { node.hidden = !visible; }

  // WhatsApp's servers could not be reached at all (offline, DNS, a proxy): the adapter says so in status.extra.
  function unreachable(status) { return Boolean(status && status.extra && status.extra.problem === "unreachable"); }

  function fieldError() { return el("p", { class: "field-error", role: "alert", hidden: true }); }

  function setError(box, message) {
    box.textContent = message || "";
    box.hidden = !message;
  }

  // ------------------------------------------------------------------------------------------ shared parts

  // Title, state badge, the adapter's own words, retry time and sends waiting: the top of every channel widget.
  function statusHead(title, withTitle) {
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
      // Connected, pairing and an unreachable WhatsApp have their own panels saying the same in more words.
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
  function pairingBox(channel, { buttonLabel, instructions }) {
    const get = el("button", { type: "button", class: "primary ch-get-code" }, buttonLabel);
    const code = el("output", { class: "ch-bigcode", "aria-live": "polite" });
    const lines = el("div", { class: "ch-send" });
    const wait = el("p", { class: "ch-wait muted" }, t("tg_waiting_code"));
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

  function chatList() {
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

  // Live updates for one channel: events patch the view, then a short-delayed refetch fills in the rest.
  function follow(name, getView, apply) {
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

  // ------------------------------------------------------------------------------------------ WhatsApp

  function whatsapp(root, options = {}) {
    const manage = Boolean(options.manage);
    let view = null;
    const head = statusHead("WhatsApp", options.title !== false);

    // choose the number, then start
    const modes = ["dedicated", "self"].map((mode) => el("label", { class: "choice" },
      el("input", { type: "radio", name: "wa-mode", value: mode }),
      el("span", {}, el("strong", {}, t(`wa_mode_${mode}`)), el("br"),
        el("span", { class: "hint" }, t(`wa_mode_${mode}_hint`)))));
    const start = el("button", { type: "button", class: "primary ch-wa-start" }, t("wa_start"));
    const startError = fieldError();
    const setup = el("div", { class: "ch-panel ch-wa-setup" },
      el("p", { class: "muted" }, t("wa_lead")),
      el("fieldset", { class: "ch-modes" }, el("legend", {}, t("wa_mode_legend")), ...modes),
      el("div", { class: "notice warn" }, el("h3", {}, t("wa_ban_title")), el("p", {}, t("wa_ban_text"))),
      el("div", { class: "row" }, start), startError);

    // the QR code, with the phone-number code as the fallback
    const img = el("img", { class: "ch-qr", alt: t("wa_qr_alt"), hidden: true });
    const qrWait = el("p", { class: "ch-wait muted" }, t("wa_qr_waiting"));
    const qrTime = el("p", { class: "hint ch-qr-time" });
    const whichPhone = el("p", { class: "hint" });
    // How to scan is shown only once there is a code to scan.
    const scanHelp = [el("h3", {}, t("wa_scan_title")), el("p", {}, t("wa_scan_steps")), whichPhone];
    const qrRefresh = el("p", { class: "hint" }, t("wa_qr_refresh"));
    const qrCol = el("div", { class: "ch-qr-col" },
      ...scanHelp, el("div", { class: "ch-qr-frame" }, img, qrWait), qrRefresh, qrTime);
    const phoneToggle = el("button", { type: "button", class: "link ch-phone-toggle", "aria-expanded": "false" },
      t("wa_phone_toggle"));
    const phoneInput = el("input", { type: "tel", name: "phone", id: "wa-phone", autocomplete: "tel", inputmode: "tel",
      placeholder: "+49 170 1234567", "aria-describedby": "wa-phone-hint" });
    const phoneGet = el("button", { type: "submit", class: "primary" }, t("wa_phone_get"));
    const phoneError = fieldError();
    const phoneCode = el("output", { class: "ch-bigcode ch-phone-code" });
    const phoneFor = el("p", { class: "hint" });
    const phoneShown = el("div", { class: "ch-code-shown", hidden: true },
      el("h3", {}, t("wa_phone_code_title")), phoneCode, phoneFor, el("p", {}, t("wa_phone_code_steps")));
    const phoneForm = el("form", { class: "ch-phone stack", hidden: true, novalidate: true },
      el("div", { class: "field" }, el("label", { for: "wa-phone" }, t("wa_phone_label")),
        el("div", { class: "row" }, phoneInput, phoneGet),
        el("span", { class: "hint", id: "wa-phone-hint" }, t("wa_phone_hint")), phoneError),
      phoneShown);
    const phoneToggleLine = el("p", {}, phoneToggle);
    const pair = el("div", { class: "ch-panel ch-wa-pair" }, qrCol, phoneForm, phoneToggleLine);

    // WhatsApp cannot be reached: why in words, when the next try is, a try at once; neonize's text tucked away
    const offlineWhy = el("p", { class: "ch-unreachable-why" });
    const offlineWhen = el("p", { class: "hint ch-unreachable-when" });
    const tryNow = el("button", { type: "button", class: "primary ch-wa-try" }, t("wa_try_now"));
    const technical = el("code", {});
    const technicalBox = el("details", { class: "ch-advanced ch-technical" },
      el("summary", {}, t("technical_details")), el("p", {}, technical));
    const offline = el("div", { class: "ch-panel notice bad ch-unreachable", role: "alert" },
      el("h3", {}, t("wa_unreachable_title")), offlineWhy, el("p", {}, t("wa_unreachable_help")), offlineWhen,
      el("div", { class: "row" }, tryNow), technicalBox);

    // linked
    const linkedTitle = el("p", { class: "ch-linked" });
    const modeNow = el("p", { class: "muted" });
    const linkedText = el("p", {});
    const ownerBox = pairingBox("whatsapp", {
      buttonLabel: t("wa_owner_code"),
      instructions: (code, to) => [to ? t("wa_send_code", { code, to }) : t("wa_send_code_unknown", { code })],
    });
    const linked = el("div", { class: "ch-panel ch-wa-linked" }, linkedTitle, modeNow, linkedText, ownerBox.node);

    // in between, and when something is wrong
    const connecting = el("p", { class: "ch-panel ch-wait muted" }, t("wa_connecting"));
    const reconnecting = el("div", { class: "ch-panel notice warn" }, el("p", {}, t("reconnecting_text")));
    const troubleText = el("p", {});
    const reconnect = el("button", { type: "button", class: "primary ch-wa-reconnect" }, t("wa_reconnect"));
    const repair = el("button", { type: "button", class: "ch-wa-repair" }, t("wa_repair"));
    const trouble = el("div", { class: "ch-panel notice bad ch-trouble", role: "alert" },
      el("p", {}, el("strong", {}, t("wa_what_now"))), troubleText, el("div", { class: "row" }, reconnect, repair));
    const turnOn = el("button", { type: "button", class: "primary ch-turn-on" }, t("turn_on"));
    const off = el("div", { class: "ch-panel ch-off" }, el("p", {}, t("off_text", { title: "WhatsApp" })),
      el("div", { class: "row" }, turnOn));

    // managing (the channels page only)
    const chats = chatList();
    const logout = el("button", { type: "button", class: "ch-logout" }, t("wa_logout"));
    const turnOff = el("button", { type: "button", class: "danger ch-turn-off" }, t("turn_off"));
    const actionError = fieldError();
    const actions = el("div", { class: "ch-actions row" }, logout, turnOff);
    const manageBox = el("div", { class: "ch-manage", hidden: !manage }, chats.node, actions);

    const panels = { setup, pair, offline, linked, connecting, reconnecting, trouble, off };
    root.classList.add("ch-widget", "ch-whatsapp");
    root.append(head.node, ...Object.values(panels), actionError, manageBox);

    function choosePanel() {
      const state = view.status.state;
      if (!view.running) {
        if (state === "failed") return "trouble";
        return view.set_up || view.enabled ? "off" : "setup";
      }
      if (state === "connected") return "linked";
      if (view.qr && view.qr.svg) return "pair";
      if (unreachable(view.status)) return "offline";
      if (state === "pairing" || state === "not_paired") return "pair";
      if (state === "connecting") return "connecting";
      if (state === "reconnecting") return "reconnecting";
      if (TROUBLE.includes(state)) return "trouble";
      return view.set_up ? "off" : "setup";
    }

    function renderQr() {
      const svg = view && view.qr && view.qr.svg;
      const url = svg ? qrDataUrl(svg) : null;
      if (url) {
        if (img.getAttribute("src") !== url) {
          img.src = url;
          const frame = img.parentElement;
          frame.classList.remove("fresh");
          void frame.offsetWidth;  // restart the short ring that shows a new code arrived
          frame.classList.add("fresh");
        }
        img.dataset.issuedAt = view.qr.issued_at || "";
        qrTime.textContent = t("wa_qr_updated", { time: clock(view.qr.issued_at) || clock(new Date().toISOString()) });
      } else {
        img.removeAttribute("src");
        qrTime.textContent = "";
      }
      show(img, Boolean(url));
      show(qrWait, !url);
      for (const node of [...scanHelp, qrRefresh, qrTime]) show(node, Boolean(url));
      show(phoneToggleLine, Boolean(url) || !phoneForm.hidden);
    }

    function renderOffline() {
      const extra = (view.status && view.status.extra) || {};
      offlineWhy.textContent = extra.reason || "";
      const when = clock(view.status.retry_at);
      offlineWhen.textContent = when ? t("wa_unreachable_retry", { time: when }) : "";
      show(offlineWhen, Boolean(when));
      technical.textContent = extra.technical || "";
      show(technicalBox, Boolean(extra.technical));
    }

    function showPhoneForm(open) {
      show(phoneForm, open);
      show(qrCol, !open);
      phoneToggle.textContent = t(open ? "wa_phone_hide" : "wa_phone_toggle");
      phoneToggle.setAttribute("aria-expanded", String(open));
    }

    function render() {
      head.render(view);
      const panel = choosePanel();
      for (const [name, node] of Object.entries(panels)) show(node, name === panel);
      if (panel !== "pair" && !phoneForm.hidden) {  // a code typed for the last pairing is of no use for the next
        showPhoneForm(false);
        show(phoneShown, false);
      }
      const mode = view.mode || "dedicated";
      for (const radio of root.querySelectorAll('input[name="wa-mode"]')) {
        if (!root.dataset.modeTouched) radio.checked = radio.value === mode;
      }
      whichPhone.textContent = t(`wa_scan_phone_${mode}`);
      renderQr();
      renderOffline();
      linkedTitle.textContent = `✓ ${t("connected_as", { account: view.status.account || "WhatsApp" })}`;
      modeNow.textContent = t(`wa_mode_now_${mode}`);
      linkedText.textContent = t(mode === "self" ? "wa_linked_self" : "wa_linked_dedicated");
      show(ownerBox.node, mode === "dedicated");
      ownerBox.set(view.pairing_code, view.status.account, view.enabled);
      const state = view.status.state;
      troubleText.textContent = TROUBLE.includes(state) ? t(`wa_${state}`) : t("wa_failed");
      show(reconnect, view.running && ["replaced", "failed"].includes(state));
      show(repair, state !== "banned");
      repair.classList.toggle("primary", reconnect.hidden);
      chats.render(view);
      show(logout, view.running && view.status.state === "connected");
      show(turnOff, view.running || view.enabled);
      show(actions, !logout.hidden || !turnOff.hidden);
      show(manageBox, manage && (!actions.hidden || view.chats.length > 0));
    }

    function update(fresh, before) {
      const previous = before || (view ? view.status.state : null);
      view = fresh;
      render();
      if (previous !== null && previous !== "connected" && view.status.state === "connected" && options.onConnected) {
        options.onConnected(view);
      }
      if (options.onChange) options.onChange(view);
    }

    async function act(button, method, url, body, confirmText) {
      if (confirmText && !window.confirm(confirmText)) return;
      const errorBox = button === start ? startError : actionError;
      setError(actionError, "");
      setError(startError, "");
      try {
        const fresh = await busy(button, () => NC.api(method, url, body, { quiet: true }));
        update(fresh);
      } catch (err) { setError(errorBox, err.message); }
    }

    for (const radio of root.querySelectorAll('input[name="wa-mode"]')) {
      radio.addEventListener("change", () => { root.dataset.modeTouched = "1"; });
    }
    start.addEventListener("click", () => {
      const chosen = root.querySelector('input[name="wa-mode"]:checked');
      act(start, "POST", "/api/channels/whatsapp/enable", { mode: chosen ? chosen.value : "dedicated" });
    });
    phoneToggle.addEventListener("click", () => {
      const open = phoneForm.hidden;
      showPhoneForm(open);
      if (open) phoneInput.focus();
    });
    phoneForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      setError(phoneError, "");
      phoneInput.removeAttribute("aria-invalid");
      try {
        const result = await busy(phoneGet, () => NC.api("POST", "/api/channels/whatsapp/phone-code",
          { phone: phoneInput.value }, { quiet: true }));
        phoneCode.textContent = result.code;
        phoneFor.textContent = t("wa_phone_code_for", { phone: result.phone });
        show(phoneShown, true);
      } catch (err) {
        setError(phoneError, err.message);
        phoneInput.setAttribute("aria-invalid", "true");
        phoneInput.focus();
      }
    });
    phoneInput.addEventListener("input", () => {
      setError(phoneError, "");
      phoneInput.removeAttribute("aria-invalid");
    });
    repair.addEventListener("click", () => act(repair, "POST", "/api/channels/whatsapp/repair", undefined,
      t("wa_confirm_repair")));
    reconnect.addEventListener("click", () => act(reconnect, "POST", "/api/channels/whatsapp/reconnect"));
    tryNow.addEventListener("click", () => act(tryNow, "POST", "/api/channels/whatsapp/reconnect"));
    logout.addEventListener("click", () => act(logout, "POST", "/api/channels/whatsapp/logout", undefined,
      t("wa_confirm_logout")));
    turnOff.addEventListener("click", () => act(turnOff, "POST", "/api/channels/whatsapp/off", {},
      t("confirm_off", { title: "WhatsApp" })));
    turnOn.addEventListener("click", () => act(turnOn, "POST", "/api/channels/whatsapp/on"));

    NC.on("channel.qr", (data) => {
      if (data.channel_type !== "whatsapp" || !view) return;
      view.qr = data.svg ? { svg: data.svg, issued_at: data.issued_at || null } : null;
      if (data.svg) view.running = true;
      render();
    });
    const refresh = follow("whatsapp", () => view, update);

    return { update, refresh, get view() { return view; } };
  }

  // ------------------------------------------------------------------------------------------ Telegram

  function telegram(root, options = {}) {
    const manage = Boolean(options.manage);
    let view = null;
    let changing = false;
    const head = statusHead("Telegram", options.title !== false);

    // the token
    const tokenInput = el("input", { type: "password", name: "token", id: "tg-token", autocomplete: "off",
      spellcheck: "false", placeholder: "123456789:AAE…", "aria-describedby": "tg-token-hint" });
    const check = el("button", { type: "submit", class: "primary ch-tg-check" }, t("tg_check"));
    const keep = el("button", { type: "button", class: "ch-tg-keep", hidden: true }, t("tg_cancel_token"));
    const tokenError = fieldError();
    const tokenForm = el("form", { class: "ch-token stack", novalidate: true },
      el("div", { class: "field" }, el("label", { for: "tg-token" }, t("tg_token_label")),
        el("div", { class: "row" }, tokenInput, check, keep),
        el("span", { class: "hint", id: "tg-token-hint" }, t("tg_token_hint")), tokenError));
    const steps = el("div", { class: "ch-steps-box" },
      el("p", { class: "muted" }, t("tg_lead")),
      el("h3", {}, t("tg_steps_title")),
      el("ol", { class: "ch-steps" },
        el("li", {}, t("tg_step_1"), " ",
          el("a", { href: "https://t.me/BotFather", target: "_blank", rel: "noopener noreferrer" },
            t("tg_botfather_link"))),
        el("li", {}, t("tg_step_2")),
        el("li", {}, t("tg_step_3"))));
    const failed = el("div", { class: "notice bad", role: "alert", hidden: true }, el("p", {}, t("tg_failed")));
    const setup = el("div", { class: "ch-panel ch-tg-setup" }, failed, steps, tokenForm);

    // the bot, its privacy mode, pairing
    const botLine = el("p", { class: "ch-linked" });
    const botLink = el("a", { target: "_blank", rel: "noopener noreferrer" });
    const privacy = el("div", { class: "notice warn ch-privacy", hidden: true },
      el("h3", {}, t("tg_privacy_title")), el("p", {}));
    const changeToken = el("button", { type: "button", class: "link ch-tg-change" }, t("tg_change_token"));
    let botName = "";
    const pairBox = pairingBox("telegram", {
      buttonLabel: t("tg_pair_get"),
      instructions: (code, to) => {
        const bot = to || botName;
        return [t("tg_send_code", { code, bot }), t("tg_send_code_group", { mention: bot, code })];
      },
    });
    const bot = el("div", { class: "ch-panel ch-tg-bot" }, botLine, el("p", {}, botLink), privacy,
      el("h3", {}, t("tg_pair_title")), el("p", { class: "muted" }, t("tg_pair_lead")), pairBox.node,
      el("p", {}, changeToken));
    const reconnecting = el("div", { class: "ch-panel notice warn" }, el("p", {}, t("reconnecting_text")));
    const turnOn = el("button", { type: "button", class: "primary ch-turn-on" }, t("turn_on"));
    const off = el("div", { class: "ch-panel ch-off" }, el("p", {}, t("off_text", { title: "Telegram" })),
      el("div", { class: "row" }, turnOn));

    // the Bot API server
    const apiInput = el("input", { type: "url", name: "api_base_url", id: "tg-api", autocomplete: "off",
      spellcheck: "false", placeholder: "https://api.telegram.org", "aria-describedby": "tg-api-hint" });
    const apiSave = el("button", { type: "submit" }, t("tg_api_save"));
    const apiError = fieldError();
    const apiForm = el("form", { class: "stack", novalidate: true },
      el("div", { class: "field" }, el("label", { for: "tg-api" }, t("tg_api_label")),
        el("div", { class: "row" }, apiInput, apiSave),
        el("span", { class: "hint", id: "tg-api-hint" }, t("tg_api_hint")), apiError));
    const advanced = el("details", { class: "ch-advanced" }, el("summary", {}, t("tg_advanced")), apiForm);

    const chats = chatList();
    const turnOff = el("button", { type: "button", class: "danger ch-turn-off" }, t("turn_off"));
    const actionError = fieldError();
    const actions = el("div", { class: "ch-actions row" }, turnOff);
    const manageBox = el("div", { class: "ch-manage", hidden: !manage }, chats.node, actions);

    root.classList.add("ch-widget", "ch-telegram");
    root.append(head.node, setup, bot, reconnecting, off, actionError, advanced, manageBox);

    function render() {
      head.render(view);
      const state = view.status.state;
      const known = Boolean(view.set_up && view.bot);
      const isOff = known && !view.running && state !== "failed";
      show(setup, !known || changing || state === "failed");
      show(failed, state === "failed" && !view.status.detail);
      show(keep, known && changing);
      show(bot, known && !changing && !isOff && state !== "failed");
      show(reconnecting, state === "reconnecting");
      show(off, isOff && !changing);
      if (view.bot) {
        const handle = `@${view.bot.username}`;
        botName = handle;
        botLine.textContent = `✓ ${t("tg_bot", { username: handle })} ${t("tg_bot_name", { name: view.bot.name })}`;
        botLink.textContent = t("tg_open_bot", { bot: handle });
        botLink.href = `https://t.me/${encodeURIComponent(view.bot.username)}`;
        privacy.lastChild.textContent = t("tg_privacy_text", { username: handle });
        show(privacy, !view.bot.can_read_all_group_messages);
      }
      pairBox.set(view.pairing_code, view.bot ? `@${view.bot.username}` : null, view.enabled);
      const custom = view.api_base_url && view.api_base_url !== "https://api.telegram.org" ? view.api_base_url : "";
      if (document.activeElement !== apiInput && !apiForm.dataset.touched) apiInput.value = custom;
      if (custom) advanced.open = true;
      chats.render(view);
      show(turnOff, view.running || view.enabled);
      show(actions, !turnOff.hidden);
      show(manageBox, manage && (!actions.hidden || view.chats.length > 0));
    }

    function update(fresh) {
      view = fresh;
      render();
      if (options.onChange) options.onChange(view);
    }

    tokenForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      setError(tokenError, "");
      tokenInput.removeAttribute("aria-invalid");
      try {
        const result = await busy(check, () => NC.api("POST", "/api/channels/telegram/token",
          { token: tokenInput.value }, { quiet: true }));
        tokenInput.value = "";
        changing = false;
        update(result.channel);
        NC.toast(t("tg_saved", { username: `@${result.bot.username}` }), "good");
        if (options.onTokenSaved) options.onTokenSaved(result);
      } catch (err) {
        setError(tokenError, err.message);
        tokenInput.setAttribute("aria-invalid", "true");
        tokenInput.focus();
      }
    });
    tokenInput.addEventListener("input", () => {
      setError(tokenError, "");
      tokenInput.removeAttribute("aria-invalid");
    });
    changeToken.addEventListener("click", () => { changing = true; render(); tokenInput.focus(); });
    keep.addEventListener("click", () => { changing = false; tokenInput.value = ""; render(); changeToken.focus(); });
    apiInput.addEventListener("input", () => { apiForm.dataset.touched = "1"; setError(apiError, ""); });
    apiForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      setError(apiError, "");
      try {
        const fresh = await busy(apiSave, () => NC.api("PUT", "/api/channels/telegram/api-server",
          { url: apiInput.value }, { quiet: true }));
        delete apiForm.dataset.touched;
        update(fresh);
        NC.toast(t("tg_api_saved", { url: fresh.api_base_url }), "good");
      } catch (err) { setError(apiError, err.message); }
    });
    turnOff.addEventListener("click", async () => {
      if (!window.confirm(t("confirm_off", { title: "Telegram" }))) return;
      setError(actionError, "");
      try { update(await busy(turnOff, () => NC.api("POST", "/api/channels/telegram/off", {}, { quiet: true }))); }
      catch (err) { setError(actionError, err.message); }
    });
    turnOn.addEventListener("click", async () => {
      setError(actionError, "");
      try { update(await busy(turnOn, () => NC.api("POST", "/api/channels/telegram/on", undefined, { quiet: true }))); }
      catch (err) { setError(actionError, err.message); }
    });
    NC.on("channel.paired", (data) => {
      if (data.channel_type !== "telegram") return;
      NC.toast(t("paired_toast", { title: "Telegram", chat: data.chat_name }), "good");
    });
    const refresh = follow("telegram", () => view, update);

    return { update, refresh, get view() { return view; } };
  }

  window.NCPairing = { whatsapp, telegram, t };
})();
