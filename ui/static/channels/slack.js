// Slack's page module (see widgets.js for the contract): the steps to create the Slack app from a manifest (shown
// here with a copy button), the two tokens, the workspace and bot, the pairing code, and on the channels page the
// paired chats, turning it off and forgetting it. Its view's details:
// {workspace: {team, team_id, url, bot_user_id, bot_name} | null, app_manifest: "<JSON text>"}.
import {
  act, busy, chatList, el, fieldError, follow, offPanel, pairingBox, setError, show, statusHead, texts,
} from "./widgets.js";

const t = texts("slack");
const tc = texts("channels");
const TITLE = "Slack";
const APPS_URL = "https://api.slack.com/apps?new_app=1";

// The channels page offers Slack (it is not a wizard step); done once the tokens are saved and the app runs.
export function stepDone(view) {
  return Boolean(view.set_up && view.running);
}

function tokenField(id, name, label, placeholder) {
  const input = el("input", { type: "password", name, id, autocomplete: "off", spellcheck: "false", placeholder,
    "aria-describedby": "sl-token-hint" });
  return { input, node: el("div", { class: "field" }, el("label", { for: id }, label), input) };
}

export function mount(root, options = {}) {
  const manage = Boolean(options.manage);
  let view = null;
  let changing = false;
  const head = statusHead(TITLE, options.title !== false);

  // creating the app: the manifest with a copy button
  const manifestBox = el("textarea", { id: "sl-manifest", class: "ch-sl-manifest", readonly: true, rows: "12", wrap: "off",
    spellcheck: "false", "aria-label": t("manifest_label") });
  const copy = el("button", { type: "button", class: "ch-sl-copy" }, t("copy"));
  const copyNote = el("p", { class: "hint ch-sl-copied", role: "status", hidden: true });
  const steps = el("div", { class: "ch-steps-box" },
    el("p", { class: "muted" }, t("lead")),
    el("h3", {}, t("steps_title")),
    el("ol", { class: "ch-steps" },
      el("li", {}, t("step_1"), " ",
        el("a", { href: APPS_URL, target: "_blank", rel: "noopener noreferrer" }, t("apps_link"))),
      el("li", {}, t("step_2"),
        el("div", { class: "field" }, el("label", { for: "sl-manifest" }, t("manifest_label")), manifestBox),
        el("div", { class: "row" }, copy), copyNote),
      el("li", {}, t("step_3")),
      el("li", {}, t("step_4"))));

  // the tokens
  const bot = tokenField("sl-bot-token", "bot_token", t("bot_token_label"), "xoxb-…");
  const app = tokenField("sl-app-token", "app_token", t("app_token_label"), "xapp-…");
  const check = el("button", { type: "submit", class: "primary ch-sl-check" }, t("check"));
  const keep = el("button", { type: "button", class: "ch-sl-keep", hidden: true }, t("cancel_tokens"));
  const tokenError = fieldError();
  const tokenForm = el("form", { class: "ch-token stack", novalidate: true }, bot.node, app.node,
    el("span", { class: "hint", id: "sl-token-hint" }, t("token_hint")), tokenError,
    el("div", { class: "row" }, check, keep));
  const failed = el("div", { class: "notice bad", role: "alert", hidden: true }, el("p", {}, t("failed")));
  const setup = el("div", { class: "ch-panel ch-sl-setup" }, failed, steps, tokenForm);

  // the workspace, pairing
  const workspaceLine = el("p", { class: "ch-linked" });
  const slackLink = el("a", { target: "_blank", rel: "noopener noreferrer" });
  const channelsNote = el("p", { class: "muted" });
  const changeTokens = el("button", { type: "button", class: "link ch-sl-change" }, t("change_tokens"));
  let botHandle = "";
  const pairBox = pairingBox("slack", {
    buttonLabel: t("pair_get"),
    instructions: (code, to) => {
      const handle = to || botHandle;
      return [t("send_code", { code, bot: handle }), t("send_code_channel", { bot: handle, code })];
    },
  });
  const linked = el("div", { class: "ch-panel ch-sl-bot" }, workspaceLine, el("p", {}, slackLink),
    el("h3", {}, t("pair_title")), el("p", { class: "muted" }, t("pair_lead")), pairBox.node, channelsNote,
    el("p", {}, changeTokens));
  const reconnecting = el("div", { class: "ch-panel notice warn" }, el("p", {}, tc("reconnecting_text")));
  const { node: off, turnOn } = offPanel(TITLE);

  const chats = chatList();
  const turnOff = el("button", { type: "button", class: "danger ch-turn-off" }, tc("turn_off"));
  const forget = el("button", { type: "button", class: "link ch-sl-forget" }, t("forget"));
  const actionError = fieldError();
  const actions = el("div", { class: "ch-actions row" }, turnOff, forget);
  const manageBox = el("div", { class: "ch-manage", hidden: !manage }, chats.node, actions);

  root.classList.add("ch-widget", "ch-slack");
  root.append(head.node, setup, linked, reconnecting, off, actionError, manageBox);

  function render() {
    head.render(view);
    const state = view.status.state;
    const details = view.details || {};
    const workspace = details.workspace;
    const known = Boolean(view.set_up && workspace);
    const isOff = known && !view.running && state !== "failed";
    if (manifestBox.value !== (details.app_manifest || "")) manifestBox.value = details.app_manifest || "";
    show(setup, !known || changing || state === "failed");
    show(failed, state === "failed" && !view.status.detail);
    show(keep, known && changing);
    show(linked, known && !changing && !isOff && state !== "failed");
    show(reconnecting, state === "reconnecting");
    show(off, isOff && !changing);
    if (workspace) {
      botHandle = `@${workspace.bot_name}`;
      workspaceLine.textContent = `✓ ${t("workspace", { bot: workspace.bot_name, team: workspace.team })}`;
      slackLink.textContent = t("open_slack", { team: workspace.team });
      const url = String(workspace.url || "");
      if (url.startsWith("https://")) slackLink.href = url; else slackLink.removeAttribute("href");
      show(slackLink, url.startsWith("https://"));
      channelsNote.textContent = t("channels_note", { bot: botHandle });
    }
    pairBox.set(view.pairing_code, workspace ? `@${workspace.bot_name}` : null, view.enabled);
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

  copy.addEventListener("click", async () => {
    let done = false;
    try {
      await navigator.clipboard.writeText(manifestBox.value);
      done = true;
    } catch (err) {
      manifestBox.focus();
      manifestBox.select();
      try { done = document.execCommand("copy"); } catch (ignored) { done = false; }
    }
    copyNote.textContent = done ? t("copied") : t("copy_failed");
    copyNote.hidden = false;
  });
  tokenForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    setError(tokenError, "");
    for (const field of [bot.input, app.input]) field.removeAttribute("aria-invalid");
    try {
      const result = await busy(check, () => NC.api("POST", "/api/channels/slack/tokens",
        { bot_token: bot.input.value, app_token: app.input.value }, { quiet: true }));
      bot.input.value = "";
      app.input.value = "";
      changing = false;
      update(result.channel);
      NC.toast(t("saved", { bot: result.workspace.bot_name, team: result.workspace.team }), "good");
    } catch (err) {
      setError(tokenError, err.message);
      const blamed = /app-level/i.test(err.message) ? app.input : bot.input;
      blamed.setAttribute("aria-invalid", "true");
      blamed.focus();
    }
  });
  for (const field of [bot.input, app.input]) {
    field.addEventListener("input", () => { setError(tokenError, ""); field.removeAttribute("aria-invalid"); });
  }
  changeTokens.addEventListener("click", () => { changing = true; render(); bot.input.focus(); });
  keep.addEventListener("click", () => {
    changing = false;
    bot.input.value = "";
    app.input.value = "";
    render();
    changeTokens.focus();
  });
  turnOff.addEventListener("click", async () => {
    const fresh = await act(turnOff, () => NC.api("POST", "/api/channels/slack/off", {}, { quiet: true }),
      { errorBox: actionError, confirmText: tc("confirm_off", { title: TITLE }) });
    if (fresh) update(fresh);
  });
  forget.addEventListener("click", async () => {
    const fresh = await act(forget,
      () => NC.api("POST", "/api/channels/slack/off", { forget: true }, { quiet: true }),
      { errorBox: actionError, confirmText: t("confirm_forget") });
    if (fresh) update(fresh);
  });
  turnOn.addEventListener("click", async () => {
    const fresh = await act(turnOn, () => NC.api("POST", "/api/channels/slack/on", undefined, { quiet: true }),
      { errorBox: actionError });
    if (fresh) update(fresh);
  });
  NC.on("channel.paired", (data) => {
    if (data.channel_type !== "slack") return;
    NC.toast(tc("paired_toast", { title: TITLE, chat: data.chat_name }), "good");
  });
  const refresh = follow("slack", () => view, update);

  return { update, refresh, get view() { return view; } };
}
