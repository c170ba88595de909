// The owner's chat: history, live messages (chat.message / chat.update), typing and activity, files both ways,
// question and approval cards as buttons. Everything is built with NC.el: message text is never parsed as HTML.
"use strict";
(() => {
  const { t, api, el, on } = NC;
  const PLATFORM = "owner";
  const TYPING_TIMEOUT_MS = 120000;
  const NEAR_BOTTOM_PX = 120;

  const state = {
    agentName: t("chat.default_agent"),
    wired: false,
    oldest: null,
    pending: [],          // File objects waiting in the composer
    typingTimer: null,
    loaded: false,
    lost: false,
    questions: new Map(),  // the agent's open question cards (id → message): it is blocked until one is answered
  };
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------------------------------ text

  // Fenced ``` blocks, `inline code`, **bold** and http(s) links, as DOM nodes (no HTML parsing).
  function richText(text) {
    const frag = document.createDocumentFragment();
    const parts = String(text || "").split(/```(?:[\w+-]*\n)?/);
    parts.forEach((part, i) => {
      if (i % 2 === 1) { frag.append(el("pre", { class: "code" }, el("code", {}, part.replace(/\n$/, "")))); return; }
      inline(part, frag);
    });
    return frag;
  }

  function inline(text, into) {
    const pattern = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(https?:\/\/[^\s<>"')\]]+)/g;
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      if (match.index > last) into.append(text.slice(last, match.index));
      const [token] = match;
      if (match[1]) into.append(el("code", {}, token.slice(1, -1)));
      else if (match[2]) into.append(el("strong", {}, token.slice(2, -2)));
      else into.append(el("a", { href: token, target: "_blank", rel: "noopener noreferrer" }, token));
      last = match.index + token.length;
    }
    if (last < text.length) into.append(text.slice(last));
  }

  function when(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function size(n) {
    if (n < 1024) return t("chat.file_size_b", { n });
    if (n < 1024 * 1024) return t("chat.file_size_kb", { n: Math.round(n / 1024) });
    return t("chat.file_size_mb", { n: (n / 1024 / 1024).toFixed(1) });
  }

  const INLINE = new Set(["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"]);

  // ------------------------------------------------------------------------------------------ bubbles

  function fileList(files) {
    if (!files || !files.length) return null;
    return el("div", { class: "msg-files" }, files.map((f) => withTranscript(f, INLINE.has(f.mime_type)
      ? el("a", { class: "msg-image", href: f.url, target: "_blank", rel: "noopener", title: t("chat.open_image", { name: f.name }) },
        el("img", { src: f.url, alt: f.name, loading: "lazy" }))
      : el("a", { class: "file-chip", href: f.url, download: f.name, title: t("chat.download", { name: f.name }) },
        el("span", { class: "file-icon", "aria-hidden": "true" }, "⬇"),
        el("span", { class: "file-name" }, f.name),
        el("span", { class: "file-size" }, size(f.size))))));
  }

  // A recording shows what the agent was told it says (its words, or why there are none) right under it.
  function withTranscript(file, view) {
    if (!file.transcript) return view;
    return el("div", { class: "file-with-transcript" }, view,
      el("p", { class: "file-transcript", title: t("chat.transcript_title") }, file.transcript));
  }

  function cardView(msg) {
    const card = msg.card;
    const box = el("div", { class: "msg-card" });
    if (card.title) box.append(el("div", { class: "card-title" }, card.title));
    if (msg.text) box.append(el("div", { class: "msg-text" }, richText(msg.text)));
    if (card.options && card.options.length) {
      const row = el("div", { class: "card-options", role: "group", "aria-label": card.title || msg.text });
      for (const option of card.options) {
        const chosen = card.answer === option.value;
        const button = el("button", {
          type: "button", class: `card-option${chosen ? " chosen" : ""}`, disabled: card.closed,
          "aria-pressed": chosen ? "true" : "false", dataset: { value: option.value },
        }, chosen ? `✓ ${option.label}` : option.label);
        button.addEventListener("click", () => answer(msg, option.value, row));
        row.append(button);
      }
      box.append(row);
    }
    if (card.links && card.links.length) {
      box.append(el("div", { class: "card-links" }, card.links
        .filter((link) => /^https?:\/\//i.test(link.url))
        .map((link) => el("a", { class: "button small", href: link.url, target: "_blank", rel: "noopener noreferrer" }, link.label))));
    }
    if (card.outcome && !repeatsChoice(card)) box.append(el("div", { class: "card-outcome" }, card.outcome));
    return box;
  }

  // "✅ Soup" after choosing Soup here says nothing new; "✅ Approved by Ann" or a decision made elsewhere does.
  function repeatsChoice(card) {
    const chosen = (card.options || []).find((o) => o.value === card.answer);
    if (!chosen) return false;
    const bare = (text) => String(text || "").replace(/^[^\p{L}\p{N}]+/u, "").trim();
    return [chosen.label, chosen.selected_label].some((label) => label && bare(label) === bare(card.outcome));
  }

  function bubble(msg) {
    const mine = msg.direction === "in";
    const body = msg.card ? cardView(msg) : el("div", { class: "msg-text" }, richText(msg.text));
    const meta = el("div", { class: "msg-meta" },
      msg.edited ? el("span", { class: "msg-edited" }, t("chat.edited")) : null,
      el("time", { datetime: msg.created_at, title: new Date(msg.created_at).toLocaleString() }, when(msg.created_at)));
    const reactions = msg.reactions && msg.reactions.length
      ? el("div", { class: "msg-reactions" }, msg.reactions.map((r) => el("span", { class: "reaction" }, r))) : null;
    // Held by NanoClaw because the agent could not take it yet; redrawn as a normal bubble once it has it.
    const waiting = msg.status === "waiting";
    const status = waiting ? el("div", { class: "msg-status", role: "status" },
      el("span", { class: "status-icon", "aria-hidden": "true" }, "⏳ "),
      t("chat.status_waiting", { name: state.agentName })) : null;
    return el("li", { class: `msg ${mine ? "mine" : "theirs"}${msg.card ? " has-card" : ""}${waiting ? " waiting" : ""}`,
      dataset: { id: msg.id, status: msg.status || "" } },
      el("div", { class: "bubble" }, !msg.card && !msg.text ? null : body, fileList(msg.files), meta),
      reactions, status);
  }

  function nearBottom() {
    const box = $("chat-scroll");
    return box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
  }

  function toBottom() { const box = $("chat-scroll"); box.scrollTop = box.scrollHeight; }

  // ------------------------------------------------------------------------------------------ open questions

  // A card the agent asked with ask_user_question (ids "q-…"; approvals have others): its turn waits for the answer.
  function trackQuestion(msg) {
    const card = msg.card;
    if (!card || !card.question_id || !card.question_id.startsWith("q-") || !(card.options || []).length) return;
    if (card.closed) state.questions.delete(card.question_id);
    else state.questions.set(card.question_id, msg);
  }

  function openQuestion() {
    const open = Array.from(state.questions.values());
    return open.length ? open[open.length - 1] : null;
  }

  // "soup", "Soup!" or "🍲 Soup" typed while "Soup" is an option: that is the answer, not a new message.
  function typedOption(question, text) {
    const plain = (value) => String(value || "").replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "").toLowerCase();
    const typed = plain(text);
    if (!typed) return null;
    return question.card.options.find((o) => [o.label, o.selected_label].some((l) => l && plain(l) === typed)) || null;
  }

  // While a question waits, the agent is not typing: say what it waits for instead.
  function busyText(text) {
    return openQuestion() ? t("chat.question_waiting", { name: state.agentName }) : text;
  }

  // Insert or replace a bubble; new ones go at the end (messages arrive in order).
  function upsert(msg, { scroll = true } = {}) {
    if (msg.platform_id !== PLATFORM) return;
    const waited = Boolean(openQuestion());
    trackQuestion(msg);
    if (waited && !openQuestion() && !$("chat-typing").hidden) showTyping(t("chat.typing", { name: state.agentName }));
    const list = $("chat-list");
    const follow = nearBottom();
    const node = bubble(msg);
    const old = list.querySelector(`li.msg[data-id="${CSS.escape(msg.id)}"]`);
    if (old) old.replaceWith(node);
    else list.append(node);
    if (!state.oldest) state.oldest = msg.id;
    updateEmpty();
    if (scroll && (follow || msg.direction === "in")) toBottom();
  }

  function note(text, kind, actions) {
    const item = el("li", { class: `note ${kind || ""}`, role: kind === "error" ? "alert" : "status" },
      el("span", {}, text), ...(actions || []));
    $("chat-list").append(item);
    updateEmpty();
    toBottom();
    return item;
  }

  function updateEmpty() {
    const empty = !$("chat-list").children.length;
    $("chat-empty").hidden = !empty || !state.wired;
  }

  // ------------------------------------------------------------------------------------------ loading

  function applyAgents(agents) {
    state.wired = agents.length > 0;
    if (state.wired) state.agentName = agents.map((a) => a.name).join(", ");
    $("chat-agent").textContent = state.agentName;
    $("chat-avatar").textContent = state.wired ? (state.agentName.trim()[0] || "N").toUpperCase() : "N";
    $("chat-setup").hidden = state.wired;
    $("chat-text").disabled = !state.wired;
    $("chat-send").disabled = !state.wired;
    $("chat-attach").disabled = !state.wired;
    const prompt = state.wired ? t("chat.placeholder", { name: state.agentName }) : t("chat.placeholder_none");
    $("chat-text").placeholder = prompt;
    $("chat-text").setAttribute("aria-label", prompt);
    $("chat-empty-title").textContent = t("chat.empty_title", { name: state.agentName });
    $("chat-drop-text").textContent = t("chat.drop_here", { name: state.agentName });
  }

  async function loadLatest() {
    const data = await api("GET", "/api/chat/messages");
    applyAgents(data.agents || []);
    const list = $("chat-list");
    const unsent = Array.from(list.querySelectorAll("li.msg.failed"));  // kept so they can still be retried
    list.replaceChildren();
    state.questions.clear();
    for (const msg of data.messages) upsert(msg, { scroll: false });
    list.append(...unsent);
    state.oldest = data.messages.length ? data.messages[0].id : null;
    $("chat-older").hidden = !data.has_more;
    updateEmpty();
    toBottom();
    state.loaded = true;
    document.body.dataset.chatReady = "true";
  }

  async function loadOlder() {
    if (!state.oldest) return;
    const box = $("chat-scroll");
    const before = box.scrollHeight;
    const data = await api("GET", `/api/chat/messages?before=${encodeURIComponent(state.oldest)}`);
    const list = $("chat-list");
    const first = list.firstChild;
    for (const msg of data.messages) {
      if (!list.querySelector(`li.msg[data-id="${CSS.escape(msg.id)}"]`)) list.insertBefore(bubble(msg), first);
    }
    if (data.messages.length) state.oldest = data.messages[0].id;
    $("chat-older").hidden = !data.has_more;
    box.scrollTop = box.scrollHeight - before;
  }

  // ------------------------------------------------------------------------------------------ typing and activity

  function showTyping(text) {
    $("chat-typing-text").textContent = text;
    const follow = nearBottom();
    $("chat-typing").hidden = false;
    if (follow) toBottom();
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
  }

  function hideTyping() {
    clearTimeout(state.typingTimer);
    $("chat-typing").hidden = true;
  }

  function onActivity(data) {
    if (data.platform_id !== PLATFORM) return;
    const name = state.agentName;
    switch (data.state) {
      case "starting": showTyping(t("chat.activity_starting", { name })); break;
      case "waiting": showTyping(t("chat.activity_waiting")); break;
      case "building": showTyping(t("chat.activity_building", { step: data.detail || "…" })); break;
      case "working": showTyping(busyText(t("chat.activity_working", { name }))); break;
      case "tool": showTyping(busyText(t("chat.activity_tool", { name, tool: data.tool }))); break;
      case "stopped": showTyping(t("chat.activity_stopped", { name })); break;
      case "failed": hideTyping(); note(t("chat.activity_failed", { name, detail: data.detail }), "error"); break;
      case "dropped": hideTyping(); note(t("chat.activity_dropped", { detail: data.detail }), "error"); break;
      case "idle": hideTyping(); break;
      default: break;
    }
  }

  // ------------------------------------------------------------------------------------------ sending

  function renderPending() {
    const box = $("composer-files");
    box.replaceChildren(...state.pending.map((file, i) => el("li", { class: "pending-file" },
      el("span", { class: "file-name" }, file.name), el("span", { class: "file-size" }, size(file.size)),
      el("button", { type: "button", class: "link remove", "aria-label": t("chat.remove_file", { name: file.name }),
        onclick: () => { state.pending.splice(i, 1); renderPending(); } }, "×"))));
    box.hidden = !state.pending.length;
  }

  function addFiles(list) {
    if (!state.wired) return;
    for (const file of list) state.pending.push(file);
    renderPending();
    $("chat-text").focus();
  }

  async function send(text, files) {
    const form = new FormData();
    form.append("text", text);
    for (const file of files) form.append("files", file, file.name);
    try {
      const msg = await api("POST", "/api/chat/messages", form, { quiet: true });
      upsert(msg);
      return true;
    } catch (err) {
      failed(text, files, err.message);
      return false;
    }
  }

  function failed(text, files, error) {
    const names = files.map((f) => f.name).join(", ");
    const item = el("li", { class: "msg mine failed", role: "alert" },
      el("div", { class: "bubble" },
        text ? el("div", { class: "msg-text" }, text) : null,
        names ? el("div", { class: "file-chip" }, names) : null,
        el("div", { class: "send-error" }, t("chat.send_failed", { error }))),
      el("div", { class: "failed-actions" },
        el("button", { type: "button", class: "small", onclick: () => { item.remove(); send(text, files); } }, t("chat.retry")),
        el("button", { type: "button", class: "small link", onclick: () => { item.remove(); updateEmpty(); } }, t("chat.dismiss"))));
    $("chat-list").append(item);
    updateEmpty();
    toBottom();
  }

  function submit(event) {
    if (event) event.preventDefault();
    const box = $("chat-text");
    const text = box.value.trim();
    const files = state.pending.slice();
    if (!state.wired || (!text && !files.length)) return;
    box.value = "";
    grow();
    const question = openQuestion();
    const option = question && !files.length ? typedOption(question, text) : null;
    if (option) {  // typed one of the open question's options: answer it, as a click would
      const row = document.querySelector(`li.msg[data-id="${CSS.escape(question.id)}"] .card-options`);
      if (row) { answer(question, option.value, row); return; }
    }
    state.pending = [];
    renderPending();
    send(text, files).then((sent) => {
      if (sent && question) note(t("chat.question_note", { name: state.agentName }), "waiting-answer");
    });
  }

  async function answer(msg, value, row) {
    row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      upsert(await api("POST", `/api/chat/cards/${encodeURIComponent(msg.card.question_id)}`, { value }, { quiet: true }));
    } catch (err) {
      row.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      note(t("chat.card_failed", { error: err.message }), "error");
    }
  }

  function grow() {
    const box = $("chat-text");
    box.style.height = "auto";
    box.style.height = `${Math.min(box.scrollHeight, 200)}px`;
  }

  // ------------------------------------------------------------------------------------------ wiring up

  function hasFiles(event) {
    return event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("composer").addEventListener("submit", submit);
    $("chat-text").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submit(event);
    });
    $("chat-text").addEventListener("input", grow);
    $("chat-text").addEventListener("paste", (event) => {
      const files = Array.from((event.clipboardData && event.clipboardData.files) || []);
      if (files.length) { event.preventDefault(); addFiles(files); }
    });
    $("chat-attach").addEventListener("click", () => $("chat-file-input").click());
    $("chat-file-input").addEventListener("change", (event) => { addFiles(event.target.files); event.target.value = ""; });
    $("chat-older").addEventListener("click", () => loadOlder().catch(() => {}));

    const chat = $("chat");
    let depth = 0;
    chat.addEventListener("dragenter", (e) => { if (!hasFiles(e) || !state.wired) return; depth += 1; $("chat-drop").hidden = false; });
    chat.addEventListener("dragover", (e) => { if (hasFiles(e) && state.wired) e.preventDefault(); });
    chat.addEventListener("dragleave", (e) => { if (!hasFiles(e)) return; depth = Math.max(0, depth - 1); if (!depth) $("chat-drop").hidden = true; });
    chat.addEventListener("drop", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth = 0;
      $("chat-drop").hidden = true;
      addFiles(e.dataTransfer.files);
    });

    on("chat.message", (data) => {
      const msg = data.message;
      if (!msg) return;
      upsert(msg);
      if (msg.direction === "out" && msg.platform_id === PLATFORM) hideTyping();
    });
    on("chat.update", (data) => { if (data.message) upsert(data.message, { scroll: false }); });
    on("chat.typing", (data) => { if (data.platform_id === PLATFORM) showTyping(busyText(t("chat.typing", { name: state.agentName }))); });
    on("chat.activity", onActivity);
    on("chat.wired", () => loadLatest().catch(() => {}));
    on("lost", () => { state.lost = true; });
    on("open", () => {
      // After a lost stream, fetch what arrived meanwhile.
      if (state.lost && state.loaded) { state.lost = false; loadLatest().catch(() => {}); }
    });

    loadLatest().then(() => $("chat-text").focus()).catch(() => {});
  });
})();
