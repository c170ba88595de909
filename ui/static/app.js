// Shared helpers for every page: strings, the JSON API (with the CSRF header), the live event stream, toasts and a
// small DOM builder. Page scripts use window.NC; data is always inserted as text, never as HTML.
"use strict";
(() => {
  const stringsEl = document.getElementById("nc-strings");
  const strings = stringsEl ? JSON.parse(stringsEl.textContent) : {};

  function t(key, values) {
    let text = strings[key];
    if (text === undefined) return key;
    for (const [name, value] of Object.entries(values || {})) text = text.split(`{${name}}`).join(String(value));
    return text;
  }

  function csrf() {
    const match = document.cookie.match(/(?:^|;\s*)nanoclaw_csrf=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  class ApiError extends Error {
    constructor(message, status, body) { super(message); this.status = status; this.body = body; }
  }

  // fetch JSON; body is an object (sent as JSON) or FormData (files). Throws ApiError with the server's message.
  async function api(method, url, body, { quiet = false } = {}) {
    const headers = { accept: "application/json" };
    if (method !== "GET") headers["x-csrftoken"] = csrf();
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) { headers["content-type"] = "application/json"; payload = JSON.stringify(body); }
    let res;
    try {
      res = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
    } catch (err) {
      if (!quiet) toast(t("common.error_network"), "error");
      throw new ApiError(t("common.error_network"), 0, null);
    }
    if (res.status === 401) { location.assign("/login"); throw new ApiError("sign in first", 401, null); }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
    if (!res.ok) {
      const message = (data && data.error) || res.statusText;
      if (!quiet) toast(t("common.error_generic", { error: message }), "error");
      throw new ApiError(message, res.status, data);
    }
    return data;
  }

  function toast(message, kind = "info", ms = 6000) {
    const box = document.getElementById("nc-toasts");
    if (!box) return;
    const item = el("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
    item.addEventListener("click", () => item.remove());  // a tap clears one that covers something
    box.append(item);
    setTimeout(() => item.remove(), ms);
  }

  // el("button", {class: "primary", onclick: fn}, "text", child, ...)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // One EventSource per page; handlers by event kind (SSE "event:" name, e.g. "chat.message").
  const handlers = new Map();
  let source = null;
  function dispatch(kind, raw) {
    let data = {};
    try { data = raw ? JSON.parse(raw) : {}; } catch (_) { data = { raw }; }
    for (const fn of handlers.get(kind) || []) {
      try { fn(data, kind); } catch (err) { console.error(err); }
    }
  }
  function on(kind, fn) {
    const known = handlers.has(kind);
    if (!known) handlers.set(kind, []);
    handlers.get(kind).push(fn);
    if (source === null) {
      source = new EventSource("/api/events");
      source.addEventListener("open", () => dispatch("open", ""));
      source.addEventListener("error", () => dispatch("lost", ""));
      for (const name of handlers.keys()) source.addEventListener(name, (e) => dispatch(name, e.data));
    } else if (!known && kind !== "open" && kind !== "lost") {
      source.addEventListener(kind, (e) => dispatch(kind, e.data));
    }
  }

  function showHealth(components) {
    const box = document.getElementById("nc-health");
    if (!box) return;
    box.replaceChildren();
    const bad = Object.entries(components).filter(([, status]) => /unavailable|down|error|failed|reconnecting|locked/i.test(status));
    box.className = `health ${bad.length ? "bad" : "good"}`;
    showHealthDot(bad);
    if (!bad.length) { box.append(el("span", {}, "● ", t("common.health_ok"))); return; }
    for (const [name, status] of bad) {
      const { part, state, detail, fix } = plainHealth(name, status);
      box.append(el("div", { title: detail || null }, "● ", t("common.health_problem", { name: part, status: state }),
        fix ? [" ", el("a", { href: fix }, t("common.health_fix"))] : null));
    }
  }

  // A part's status in words: "channel:whatsapp" / "failed: no network" becomes "WhatsApp" / "could not connect",
  // the raw text kept for the tooltip, with the page that fixes it.
  function plainHealth(name, status) {
    const [kind, ...rest] = String(status).split(":");
    const word = (prefix, key, fallback) => { const text = t(`${prefix}${key}`); return text === `${prefix}${key}` ? fallback : text; };
    const key = name.replace(":", "_");
    const detail = rest.join(":").trim();
    const offline = /no network|network is unreachable|name resolution|temporary failure in name|no route to host/i.test(detail);
    const state = offline ? "offline" : kind.trim().toLowerCase();
    const fixes = { containers: "/setup", secrets: "/settings", lan: "/settings", gateway: "/settings" };
    return {
      part: word("common.part_", key, name.startsWith("channel:") ? name.slice(8) : name),
      state: word("common.state_", state.replace(/\s+/g, "_"), t("common.state_trouble")),
      detail,
      fix: name.startsWith("channel:") ? "/channels" : fixes[name] || null,
    };
  }

  // The top bar's dot (phone width): a colour and, on trouble, two words; the details stay in the menu.
  function showHealthDot(bad) {
    const dot = document.getElementById("nc-health-dot");
    if (!dot) return;
    dot.className = `health-dot ${bad.length ? "bad" : "good"}`;
    document.getElementById("nc-health-dot-text").textContent = bad.length ? t("common.health_attention") : "";
    const summary = bad.length ? bad.map(([name, status]) => {
      const { part, state } = plainHealth(name, status);
      return t("common.health_problem", { name: part, status: state });
    }).join("; ")
      : t("common.health_ok");
    document.getElementById("nc-health-dot-label").textContent = `${t("common.health")}: ${summary}`;
  }

  // Below 900 px the menu is a panel opened from the top bar: Escape, the backdrop or a second press closes it.
  function setupMenuToggle() {
    const nav = document.getElementById("nc-nav");
    const button = document.getElementById("nc-menu-button");
    if (!nav || !button) return;
    const dot = document.getElementById("nc-health-dot");
    const backdrop = document.getElementById("nc-nav-backdrop");
    const toggles = [button, dot].filter(Boolean);
    const isOpen = () => nav.classList.contains("open");
    function setOpen(open, { focus = null } = {}) {
      nav.classList.toggle("open", open);
      if (backdrop) backdrop.hidden = !open;
      for (const toggle of toggles) toggle.setAttribute("aria-expanded", String(open));
      // An opened panel takes the focus (on the current page's entry), as it covers the page below.
      if (open && getComputedStyle(nav).position === "fixed") {
        (nav.querySelector("a[aria-current=page]") || nav.querySelector("a"))?.focus();
      }
      if (focus) focus.focus();
    }
    // Tabbing out of the open panel closes it, so the focus never goes on behind the backdrop.
    nav.addEventListener("focusout", (event) => {
      const next = event.relatedTarget;
      if (isOpen() && next && !nav.contains(next) && !toggles.includes(next)) setOpen(false);
    });
    button.addEventListener("click", () => setOpen(!isOpen()));
    if (dot) dot.addEventListener("click", () => {
      setOpen(!isOpen());
      if (isOpen()) document.getElementById("nc-health")?.scrollIntoView({ block: "nearest" });
    });
    if (backdrop) backdrop.addEventListener("click", () => setOpen(false));
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !isOpen()) return;
      const inside = nav.contains(document.activeElement) || toggles.includes(document.activeElement);
      setOpen(false, { focus: inside ? button : null });
    });
    // Widening the window to the sidebar layout leaves no panel state behind.
    window.matchMedia("(min-width: 900px)").addEventListener("change", (event) => { if (event.matches) setOpen(false); });
  }

  window.NC = { t, csrf, api, toast, el, on, ApiError };

  document.addEventListener("DOMContentLoaded", () => {
    setupMenuToggle();
    if (document.getElementById("nc-health")) {
      let components = {};
      on("hello", (data) => { components = data.components || {}; showHealth(components); });
      on("health", (data) => { components = { ...components, ...(data.components || {}) }; showHealth(components); });
      on("lost", () => showHealth({ ...components, web: "reconnecting" }));
    }
    const locked = document.getElementById("nc-locked");
    if (locked) {
      // A store made with a passphrase is locked after each restart: unlock it from any page, right here.
      const check = () => api("GET", "/api/secrets/status", undefined, { quiet: true })
        .then((status) => { locked.hidden = !status.locked; }).catch(() => {});
      check();
      on("health", (data) => { if ("secrets" in (data.components || {})) check(); });
      on("secrets.waiting", check);
      locked.addEventListener("submit", async (event) => {
        event.preventDefault();
        const input = document.getElementById("nc-locked-passphrase");
        const error = document.getElementById("nc-locked-error");
        error.hidden = true;
        if (!input.value) { error.textContent = t("common.locked_needed"); error.hidden = false; input.focus(); return; }
        try {
          await api("POST", "/api/secrets/unlock",
            { passphrase: input.value, automatic: document.getElementById("nc-locked-automatic").checked },
            { quiet: true });
          input.value = "";
          locked.hidden = true;
          toast(t("common.unlocked"), "good");
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
          input.focus();
        }
      });
    }
    // The approvals count in the menu, on every page, refreshed whenever the queue may have changed.
    const badges = document.querySelectorAll("[data-badge=approvals], [data-badge-copy=approvals]");  // + menu button
    if (badges.length) {
      const refresh = () => api("GET", "/api/approvals/count", undefined, { quiet: true })
        .then(({ count }) => {
          for (const badge of badges) { badge.textContent = String(count); badge.hidden = count === 0; }
        }).catch(() => {});
      for (const kind of ["approval.requested", "sender.approval_requested", "channel.registration_requested",
        "approval.decided", "approval.expired", "approval.swept_on_start", "sender.allowed", "sender.denied",
        "channel.connected", "channel.rejected", "channel.registration_cancelled", "agent.deleted",
        "approvals.changed", "hello"]) on(kind, refresh);
    }
    const logout = document.getElementById("nc-logout");
    if (logout) logout.addEventListener("click", async () => {
      await api("POST", "/api/logout").catch(() => {});
      location.assign("/login");
    });
  });
})();
