// Telegram's page module (see widgets.js for the contract): BotFather steps, the token, the privacy note, the
// pairing code, the Bot API server, and on the channels page the paired chats and turning it off. Its view's details:
// {bot: {id, username, name, can_join_groups, can_read_all_group_messages} | null, privacy_note, api_base_url}.
import {
  act, busy, chatList, el, fieldError, follow, offPanel, pairingBox, setError, show, statusHead, texts,
} from "./widgets.js";

const t = texts("telegram");
const tc = texts("channels");
const TITLE = "Telegram";
const OFFICIAL_API = "https://api.telegram.org";

// The wizard's step is done once the token is saved and the bot runs.
export function stepDone(view) {
  return Boolean(view.set_up && view.running);
}

export function mount(root, options = {}) {
  const manage = Boolean(options.manage);
  let view = null;
  let changing = false;
  const head = statusHead(TITLE, options.title !== false);

  // the token
  const tokenInput = el("input", { type: "password", name: "token", id: "tg-token", autocomplete: "off",
    spellcheck: "false", placeholder: "123456789:AAE…", "aria-describedby": "tg-token-hint" });
  const check = el("button", { type: "submit", class: "primary ch-tg-check" }, t("check"));
  const keep = el("button", { type: "button", class: "ch-tg-keep", hidden: true }, t("cancel_token"));
  const tokenError = fieldError();
  const tokenForm = el("form", { class: "ch-token stack", novalidate: true },
    el("div", { class: "field" }, el("label", { for: "tg-token" }, t("token_label")),
      el("div", { class: "row" }, tokenInput, check, keep),
      el("span", { class: "hint", id: "tg-token-hint" }, t("token_hint")), tokenError));
  const steps = el("div", { class: "ch-steps-box" },
    el("p", { class: "muted" }, t("lead")),
    el("h3", {}, t("steps_title")),
    el("ol", { class: "ch-steps" },
      el("li", {}, t("step_1"), " ",
        el("a", { href: "https://t.me/BotFather", target: "_blank", rel: "noopener noreferrer" },
          t("botfather_link"))),
      el("li", {}, t("step_2")),
      el("li", {}, t("step_3"))));
  const failed = el("div", { class: "notice bad", role: "alert", hidden: true }, el("p", {}, t("failed")));
  const setup = el("div", { class: "ch-panel ch-tg-setup" }, failed, steps, tokenForm);

  // the bot, its privacy mode, pairing
  const botLine = el("p", { class: "ch-linked" });
  const botLink = el("a", { target: "_blank", rel: "noopener noreferrer" });
  const privacy = el("div", { class: "notice warn ch-privacy", hidden: true },
    el("h3", {}, t("privacy_title")), el("p", {}));
  const changeToken = el("button", { type: "button", class: "link ch-tg-change" }, t("change_token"));
  let botName = "";
  const pairBox = pairingBox("telegram", {
    buttonLabel: t("pair_get"),
    instructions: (code, to) => {
      const bot = to || botName;
      return [t("send_code", { code, bot }), t("send_code_group", { mention: bot, code })];
    },
  });
  const bot = el("div", { class: "ch-panel ch-tg-bot" }, botLine, el("p", {}, botLink), privacy,
    el("h3", {}, t("pair_title")), el("p", { class: "muted" }, t("pair_lead")), pairBox.node,
    el("p", {}, changeToken));
  const reconnecting = el("div", { class: "ch-panel notice warn" }, el("p", {}, tc("reconnecting_text")));
  const { node: off, turnOn } = offPanel(TITLE);

  // the Bot API server
  const apiInput = el("input", { type: "url", name: "api_base_url", id: "tg-api", autocomplete: "off",
    spellcheck: "false", placeholder: OFFICIAL_API, "aria-describedby": "tg-api-hint" });
  const apiSave = el("button", { type: "submit" }, t("api_save"));
  const apiError = fieldError();
  const apiForm = el("form", { class: "stack", novalidate: true },
    el("div", { class: "field" }, el("label", { for: "tg-api" }, t("api_label")),
      el("div", { class: "row" }, apiInput, apiSave),
      el("span", { class: "hint", id: "tg-api-hint" }, t("api_hint")), apiError));
  const advanced = el("details", { class: "ch-advanced" }, el("summary", {}, t("advanced")), apiForm);

  const chats = chatList();
  const turnOff = el("button", { type: "button", class: "danger ch-turn-off" }, tc("turn_off"));
  const actionError = fieldError();
  const actions = el("div", { class: "ch-actions row" }, turnOff);
  const manageBox = el("div", { class: "ch-manage", hidden: !manage }, chats.node, actions);

  root.classList.add("ch-widget", "ch-telegram");
  root.append(head.node, setup, bot, reconnecting, off, actionError, advanced, manageBox);

  function render() {
    head.render(view);
    const state = view.status.state;
    const details = view.details;
    const known = Boolean(view.set_up && details.bot);
    const isOff = known && !view.running && state !== "failed";
    show(setup, !known || changing || state === "failed");
    show(failed, state === "failed" && !view.status.detail);
    show(keep, known && changing);
    show(bot, known && !changing && !isOff && state !== "failed");
    show(reconnecting, state === "reconnecting");
    show(off, isOff && !changing);
    if (details.bot) {
      const handle = `@${details.bot.username}`;
      botName = handle;
      botLine.textContent = `✓ ${t("bot", { username: handle })} ${t("bot_name", { name: details.bot.name })}`;
      botLink.textContent = t("open_bot", { bot: handle });
      botLink.href = `https://t.me/${encodeURIComponent(details.bot.username)}`;
      privacy.lastChild.textContent = t("privacy_text", { username: handle });
      show(privacy, !details.bot.can_read_all_group_messages);
    }
    pairBox.set(view.pairing_code, details.bot ? `@${details.bot.username}` : null, view.enabled);
    const address = details.api_base_url;
    const custom = address && address !== OFFICIAL_API ? address : "";
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
      NC.toast(t("saved", { username: `@${result.bot.username}` }), "good");
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
      NC.toast(t("api_saved", { url: fresh.details.api_base_url }), "good");
    } catch (err) { setError(apiError, err.message); }
  });
  turnOff.addEventListener("click", async () => {
    const fresh = await act(turnOff, () => NC.api("POST", "/api/channels/telegram/off", {}, { quiet: true }),
      { errorBox: actionError, confirmText: tc("confirm_off", { title: TITLE }) });
    if (fresh) update(fresh);
  });
  turnOn.addEventListener("click", async () => {
    const fresh = await act(turnOn, () => NC.api("POST", "/api/channels/telegram/on", undefined, { quiet: true }),
      { errorBox: actionError });
    if (fresh) update(fresh);
  });
  NC.on("channel.paired", (data) => {
    if (data.channel_type !== "telegram") return;
    NC.toast(tc("paired_toast", { title: TITLE, chat: data.chat_name }), "good");
  });
  const refresh = follow("telegram", () => view, update);

  return { update, refresh, get view() { return view; } };
}

