// Discord's page module (see widgets.js for the contract): the developer-portal steps, the token, the invite link,
// the Message Content intent, the pairing code, and on the channels page the paired chats, turning it off and
// forgetting the bot. Its view's details: {bot: {id, username, name, app_id, content_intent} | null,
// invite_url, portal_url, permissions}; status.extra.problem is "token", "intent" or "other" when it failed.
import {
  act, busy, chatList, el, fieldError, follow, offPanel, pairingBox, setError, show, statusHead, texts,
} from "./widgets.js";

const t = texts("discord");
const tc = texts("channels");
const TITLE = "Discord";
const PORTAL = "https://discord.com/developers/applications";

// The Channels page offers Discord; the wizard does not (in_wizard is false), but the contract asks for this.
export function stepDone(view) {
  return Boolean(view.set_up && view.running && view.status.state === "connected");
}

function link(href, label) {
  return el("a", { href, target: "_blank", rel: "noopener noreferrer" }, label);
}

export function mount(root, options = {}) {
  const manage = Boolean(options.manage);
  let view = null;
  let changing = false;
  const head = statusHead(TITLE, options.title !== false);

  // the token
  const tokenInput = el("input", { type: "password", name: "token", id: "dc-token", autocomplete: "off",
    spellcheck: "false", placeholder: "MTE…", "aria-describedby": "dc-token-hint" });
  const check = el("button", { type: "submit", class: "primary ch-dc-check" }, t("check"));
  const keep = el("button", { type: "button", class: "ch-dc-keep", hidden: true }, t("cancel_token"));
  const tokenError = fieldError();
  const tokenForm = el("form", { class: "ch-token stack", novalidate: true },
    el("div", { class: "field" }, el("label", { for: "dc-token" }, t("token_label")),
      el("div", { class: "row" }, tokenInput, check, keep),
      el("span", { class: "hint", id: "dc-token-hint" }, t("token_hint")), tokenError));
  const steps = el("div", { class: "ch-steps-box" },
    el("p", { class: "muted" }, t("lead")),
    el("h3", {}, t("steps_title")),
    el("ol", { class: "ch-steps" },
      el("li", {}, t("step_1"), " ", link(PORTAL, t("portal_link"))),
      el("li", {}, t("step_2")),
      el("li", {}, t("step_3"))));
  const failed = el("div", { class: "notice bad", role: "alert", hidden: true }, el("p", {}, t("failed")));
  const setup = el("div", { class: "ch-panel ch-dc-setup" }, failed, steps, tokenForm);

  // the Message Content intent (refused by Discord, or off according to the portal) and trying again
  const intentPortal = link(PORTAL, t("intent_portal"));
  const retry = el("button", { type: "button", class: "primary ch-dc-retry" }, t("retry"));
  const intentText = el("p", {}, t("intent_text"));
  const intent = el("div", { class: "notice warn ch-dc-intent", role: "status", hidden: true },
    el("h3", {}, t("intent_title")), intentText, el("p", {}, intentPortal));
  const retryRow = el("div", { class: "row ch-dc-retry-row", hidden: true }, retry);
  const retryError = fieldError();

  // the bot, its invite link, pairing
  const botLine = el("p", { class: "ch-linked" });
  const invite = link(PORTAL, "");
  invite.classList.add("ch-dc-invite");
  const inviteBox = el("div", { class: "ch-dc-invite-box" },
    el("h3", {}, t("invite_title")), el("p", { class: "muted" }, t("invite_lead")), el("p", {}, invite));
  const changeToken = el("button", { type: "button", class: "link ch-dc-change" }, t("change_token"));
  let botName = "";
  const pairBox = pairingBox("discord", {
    buttonLabel: t("pair_get"),
    instructions: (code, to) => {
      const bot = to || botName;
      return [t("send_code", { code, bot }), t("send_code_server", { bot, code })];
    },
  });
  const bot = el("div", { class: "ch-panel ch-dc-bot" }, botLine,
    el("h3", {}, t("pair_title")), el("p", { class: "muted" }, t("pair_lead")), pairBox.node, inviteBox,
    el("p", {}, changeToken));
  const reconnecting = el("div", { class: "ch-panel notice warn" }, el("p", {}, tc("reconnecting_text")));
  const { node: off, turnOn } = offPanel(TITLE);

  const chats = chatList();
  const turnOff = el("button", { type: "button", class: "danger ch-turn-off" }, tc("turn_off"));
  const forget = el("button", { type: "button", class: "link ch-dc-forget" }, t("forget"));
  const actionError = fieldError();
  const actions = el("div", { class: "ch-actions row" }, turnOff, forget);
  const manageBox = el("div", { class: "ch-manage", hidden: !manage }, chats.node, actions);

  root.classList.add("ch-widget", "ch-discord");
  root.append(head.node, setup, intent, retryRow, retryError, bot, reconnecting, off, actionError, manageBox);

  function render() {
    head.render(view);
    const state = view.status.state;
    const problem = (view.status.extra || {}).problem || "";
    const details = view.details;
    const known = Boolean(view.set_up && details.bot);
    const tokenProblem = state === "failed" && problem === "token";
    const isOff = known && !view.running && state !== "failed";
    show(setup, !known || changing || tokenProblem);
    show(failed, tokenProblem && !view.status.detail);
    show(keep, known && changing);
    show(intent, known && !changing && (problem === "intent" || (details.bot && !details.bot.content_intent
      && state !== "connected")));
    show(intentText, problem !== "intent");  // when Discord refused, the status above already says what to do
    show(retryRow, known && !changing && state === "failed" && !tokenProblem);
    show(bot, known && !changing && !isOff && state !== "failed");
    show(reconnecting, state === "reconnecting");
    show(off, isOff && !changing);
    if (details.bot) {
      botName = details.bot.username;
      botLine.textContent = `✓ ${t("bot", { name: details.bot.username })}`;
      invite.textContent = t("invite_link", { name: details.bot.username });
      if (details.invite_url) invite.href = details.invite_url;
      intentPortal.href = details.portal_url || PORTAL;
    }
    show(inviteBox, Boolean(details.invite_url));
    pairBox.set(view.pairing_code, details.bot ? details.bot.username : null, view.enabled);
    chats.render(view);
    show(turnOff, view.running || view.enabled);
    show(forget, known);
    show(actions, !turnOff.hidden || !forget.hidden);
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
      const result = await busy(check, () => NC.api("POST", "/api/channels/discord/token",
        { token: tokenInput.value }, { quiet: true }));
      tokenInput.value = "";
      changing = false;
      update(result.channel);
      NC.toast(t("saved", { name: result.bot.username }), "good");
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
  retry.addEventListener("click", async () => {
    const fresh = await act(retry, () => NC.api("POST", "/api/channels/discord/retry", {}, { quiet: true }),
      { errorBox: retryError });
    if (fresh) update(fresh);
  });
  turnOff.addEventListener("click", async () => {
    const fresh = await act(turnOff, () => NC.api("POST", "/api/channels/discord/off", {}, { quiet: true }),
      { errorBox: actionError, confirmText: tc("confirm_off", { title: TITLE }) });
    if (fresh) update(fresh);
  });
  forget.addEventListener("click", async () => {
    const fresh = await act(forget,
      () => NC.api("POST", "/api/channels/discord/off", { forget: true }, { quiet: true }),
      { errorBox: actionError, confirmText: t("confirm_forget") });
    if (fresh) update(fresh);
  });
  turnOn.addEventListener("click", async () => {
    const fresh = await act(turnOn, () => NC.api("POST", "/api/channels/discord/on", undefined, { quiet: true }),
      { errorBox: actionError });
    if (fresh) update(fresh);
  });
  NC.on("channel.paired", (data) => {
    if (data.channel_type !== "discord") return;
    NC.toast(tc("paired_toast", { title: TITLE, chat: data.chat_name }), "good");
  });
  const refresh = follow("discord", () => view, update);

  return { update, refresh, get view() { return view; } };
}
