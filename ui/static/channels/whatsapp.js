// WhatsApp's page module (see widgets.js for the contract): which number, the live QR code, the phone-number code,
// the link's health, and on the channels page the paired chats, logout and turning it off. The QR SVG only ever goes
// into an <img> data: URL. Its view's details: {mode, qr: {svg, issued_at} | null}.
import {
  act, busy, chatList, clock, el, fieldError, follow, offPanel, pairingBox, setError, show, statusHead, texts,
  unreachable,
} from "./widgets.js";

const t = texts("whatsapp");
const tc = texts("channels");
const TITLE = "WhatsApp";
const TROUBLE = ["logged_out", "banned", "replaced", "failed"];

// The wizard's step is done once a phone is linked (pairing the owner's chat can wait).
export function stepDone(view) {
  return view.status.state === "connected";
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

export function mount(root, options = {}) {
  const manage = Boolean(options.manage);
  let view = null;
  const head = statusHead(TITLE, options.title !== false);

  // choose the number, then start
  const modes = ["dedicated", "self"].map((mode) => el("label", { class: "choice" },
    el("input", { type: "radio", name: "wa-mode", value: mode }),
    el("span", {}, el("strong", {}, t(`mode_${mode}`)), el("br"),
      el("span", { class: "hint" }, t(`mode_${mode}_hint`)))));
  const start = el("button", { type: "button", class: "primary ch-wa-start" }, t("start"));
  const startError = fieldError();
  const setup = el("div", { class: "ch-panel ch-wa-setup" },
    el("p", { class: "muted" }, t("lead")),
    el("fieldset", { class: "ch-modes" }, el("legend", {}, t("mode_legend")), ...modes),
    el("div", { class: "notice warn" }, el("h3", {}, t("ban_title")), el("p", {}, t("ban_text"))),
    el("div", { class: "row" }, start), startError);

  // the QR code, with the phone-number code as the fallback
  const img = el("img", { class: "ch-qr", alt: t("qr_alt"), hidden: true });
  const qrWait = el("p", { class: "ch-wait muted" }, t("qr_waiting"));
  const qrTime = el("p", { class: "hint ch-qr-time" });
  const whichPhone = el("p", { class: "hint" });
  // How to scan is shown only once there is a code to scan.
  const scanHelp = [el("h3", {}, t("scan_title")), el("p", {}, t("scan_steps")), whichPhone];
  const qrRefresh = el("p", { class: "hint" }, t("qr_refresh"));
  const qrCol = el("div", { class: "ch-qr-col" },
    ...scanHelp, el("div", { class: "ch-qr-frame" }, img, qrWait), qrRefresh, qrTime);
  const phoneToggle = el("button", { type: "button", class: "link ch-phone-toggle", "aria-expanded": "false" },
    t("phone_toggle"));
  const phoneInput = el("input", { type: "tel", name: "phone", id: "wa-phone", autocomplete: "tel", inputmode: "tel",
    placeholder: "+49 170 1234567", "aria-describedby": "wa-phone-hint" });
  const phoneGet = el("button", { type: "submit", class: "primary" }, t("phone_get"));
  const phoneError = fieldError();
  const phoneCode = el("output", { class: "ch-bigcode ch-phone-code" });
  const phoneFor = el("p", { class: "hint" });
  const phoneShown = el("div", { class: "ch-code-shown", hidden: true },
    el("h3", {}, t("phone_code_title")), phoneCode, phoneFor, el("p", {}, t("phone_code_steps")));
  const phoneForm = el("form", { class: "ch-phone stack", hidden: true, novalidate: true },
    el("div", { class: "field" }, el("label", { for: "wa-phone" }, t("phone_label")),
      el("div", { class: "row" }, phoneInput, phoneGet),
      el("span", { class: "hint", id: "wa-phone-hint" }, t("phone_hint")), phoneError),
    phoneShown);
  const phoneToggleLine = el("p", {}, phoneToggle);
  const pair = el("div", { class: "ch-panel ch-wa-pair" }, qrCol, phoneForm, phoneToggleLine);

  // WhatsApp cannot be reached: why in words, when the next try is, a try at once; neonize's text tucked away
  const offlineWhy = el("p", { class: "ch-unreachable-why" });
  const offlineWhen = el("p", { class: "hint ch-unreachable-when" });
  const tryNow = el("button", { type: "button", class: "primary ch-wa-try" }, t("try_now"));
  const technical = el("code", {});
  const technicalBox = el("details", { class: "ch-advanced ch-technical" },
    el("summary", {}, tc("technical_details")), el("p", {}, technical));
  const offline = el("div", { class: "ch-panel notice bad ch-unreachable", role: "alert" },
    el("h3", {}, t("unreachable_title")), offlineWhy, el("p", {}, t("unreachable_help")), offlineWhen,
    el("div", { class: "row" }, tryNow), technicalBox);

  // linked
  const linkedTitle = el("p", { class: "ch-linked" });
  const modeNow = el("p", { class: "muted" });
  const linkedText = el("p", {});
  const ownerBox = pairingBox("whatsapp", {
    buttonLabel: t("owner_code"),
    instructions: (code, to) => [to ? t("send_code", { code, to }) : t("send_code_unknown", { code })],
  });
  const linked = el("div", { class: "ch-panel ch-wa-linked" }, linkedTitle, modeNow, linkedText, ownerBox.node);

  // in between, and when something is wrong
  const connecting = el("p", { class: "ch-panel ch-wait muted" }, t("connecting"));
  const reconnecting = el("div", { class: "ch-panel notice warn" }, el("p", {}, tc("reconnecting_text")));
  const troubleText = el("p", {});
  const reconnect = el("button", { type: "button", class: "primary ch-wa-reconnect" }, t("reconnect"));
  const repair = el("button", { type: "button", class: "ch-wa-repair" }, t("repair"));
  const trouble = el("div", { class: "ch-panel notice bad ch-trouble", role: "alert" },
    el("p", {}, el("strong", {}, t("what_now"))), troubleText, el("div", { class: "row" }, reconnect, repair));
  const { node: off, turnOn } = offPanel(TITLE);

  // managing (the channels page only)
  const chats = chatList();
  const logout = el("button", { type: "button", class: "ch-logout" }, t("logout"));
  const turnOff = el("button", { type: "button", class: "danger ch-turn-off" }, tc("turn_off"));
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
    if (view.details.qr && view.details.qr.svg) return "pair";
    if (unreachable(view.status)) return "offline";
    if (state === "pairing" || state === "not_paired") return "pair";
    if (state === "connecting") return "connecting";
    if (state === "reconnecting") return "reconnecting";
    if (TROUBLE.includes(state)) return "trouble";
    return view.set_up ? "off" : "setup";
  }

  function renderQr() {
    const qr = view && view.details.qr;
    const svg = qr && qr.svg;
    const url = svg ? qrDataUrl(svg) : null;
    if (url) {
      if (img.getAttribute("src") !== url) {
        img.src = url;
        const frame = img.parentElement;
        frame.classList.remove("fresh");
        void frame.offsetWidth;  // restart the short ring that shows a new code arrived
        frame.classList.add("fresh");
      }
      img.dataset.issuedAt = qr.issued_at || "";
      qrTime.textContent = t("qr_updated", { time: clock(qr.issued_at) || clock(new Date().toISOString()) });
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
    offlineWhen.textContent = when ? t("unreachable_retry", { time: when }) : "";
    show(offlineWhen, Boolean(when));
    technical.textContent = extra.technical || "";
    show(technicalBox, Boolean(extra.technical));
  }

  function showPhoneForm(open) {
    show(phoneForm, open);
    show(qrCol, !open);
    phoneToggle.textContent = t(open ? "phone_hide" : "phone_toggle");
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
    const mode = view.details.mode || "dedicated";
    for (const radio of root.querySelectorAll('input[name="wa-mode"]')) {
      if (!root.dataset.modeTouched) radio.checked = radio.value === mode;
    }
    whichPhone.textContent = t(`scan_phone_${mode}`);
    renderQr();
    renderOffline();
    linkedTitle.textContent = `✓ ${tc("connected_as", { account: view.status.account || TITLE })}`;
    modeNow.textContent = t(`mode_now_${mode}`);
    linkedText.textContent = t(mode === "self" ? "linked_self" : "linked_dedicated");
    show(ownerBox.node, mode === "dedicated");
    ownerBox.set(view.pairing_code, view.status.account, view.enabled);
    const state = view.status.state;
    troubleText.textContent = TROUBLE.includes(state) ? t(`trouble_${state}`) : t("trouble_failed");
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
    // Linked while the wizard shows this step: with the person's own number that is all, so it moves on; a
    // separate number still needs the owner's phone paired (the code above), and that moves it on too.
    const linkedNow = previous !== null && previous !== "connected" && view.status.state === "connected";
    if (linkedNow && options.advance && view.details.mode === "self") options.advance(t("wizard_linked"));
    if (options.onChange) options.onChange(view);
  }

  async function call(button, method, url, body, confirmText) {
    const fresh = await act(button, () => NC.api(method, url, body, { quiet: true }), {
      errorBox: button === start ? startError : actionError, clear: [actionError, startError], confirmText });
    if (fresh) update(fresh);
  }

  for (const radio of root.querySelectorAll('input[name="wa-mode"]')) {
    radio.addEventListener("change", () => { root.dataset.modeTouched = "1"; });
  }
  start.addEventListener("click", () => {
    const chosen = root.querySelector('input[name="wa-mode"]:checked');
    call(start, "POST", "/api/channels/whatsapp/enable", { mode: chosen ? chosen.value : "dedicated" });
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
      phoneFor.textContent = t("phone_code_for", { phone: result.phone });
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
  repair.addEventListener("click", () => call(repair, "POST", "/api/channels/whatsapp/repair", undefined,
    t("confirm_repair")));
  reconnect.addEventListener("click", () => call(reconnect, "POST", "/api/channels/whatsapp/reconnect"));
  tryNow.addEventListener("click", () => call(tryNow, "POST", "/api/channels/whatsapp/reconnect"));
  logout.addEventListener("click", () => call(logout, "POST", "/api/channels/whatsapp/logout", undefined,
    t("confirm_logout")));
  turnOff.addEventListener("click", () => call(turnOff, "POST", "/api/channels/whatsapp/off", {},
    tc("confirm_off", { title: TITLE })));
  turnOn.addEventListener("click", () => call(turnOn, "POST", "/api/channels/whatsapp/on"));

  if (options.advance) {
    NC.on("channel.paired", (data) => { if (data.channel_type === "whatsapp") options.advance(); });
  }
  NC.on("channel.qr", (data) => {
    if (data.channel_type !== "whatsapp" || !view) return;
    view.details.qr = data.svg ? { svg: data.svg, issued_at: data.issued_at || null } : null;
    if (data.svg) view.running = true;
    render();
  });
  const refresh = follow("whatsapp", () => view, update);

  return { update, refresh, get view() { return view; } };
}

