// The settings page: the secret store (unlock or create it), secrets by name (values go in, never come out),
// general and container settings, LAN access (and whether other devices connect encrypted), and signing out other
// devices. Each form sends only what changed; the server validates and says which saved changes wait for a restart.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { t, api, el, on, toast } = NC;
  const $ = (id) => document.getElementById(id);
  let current = null;
  // api() already shows the server's message as a toast; anything else is a bug worth a console line.
  const guard = (fn) => (event) => fn(event).catch((err) => { if (!(err instanceof NC.ApiError)) console.error(err); });

  // ---- secrets -------------------------------------------------------------------------------------------------

  async function loadStore() {
    const status = await api("GET", "/api/secrets/status");
    const line = $("store-status");
    $("unlock-form").hidden = !status.locked;
    $("create-form").hidden = !status.needs_passphrase_setup;
    if (status.kind === "os_keyring") line.replaceChildren(badge("good", t("settings.store_badge_ok")), " ", t("settings.store_os_keyring", { backend: status.backend }));
    else if (status.kind === "encrypted_file") line.replaceChildren(badge("good", t("settings.store_badge_ok")), " ", t("settings.store_encrypted_file", { backend: status.backend }));
    else if (status.locked) line.replaceChildren(badge("warn", t("settings.locked")), " ", t("settings.store_locked"));
    else line.replaceChildren(badge("warn", t("settings.store_badge_setup")), " ", t("settings.store_setup"));
    $("secret-form").hidden = status.kind === "none";
  }

  function badge(kind, text) { return el("span", { class: `badge ${kind}` }, text); }

  function labelOf(secret) {
    const key = `settings.secret_label_${secret.name}`;
    const known = t(key);
    return secret.label || (known !== key ? known : "");
  }

  // What the table calls a key: its label in words; a key with none gets its name made readable ("github_token" →
  // "Github token"). The name itself is small print, shown while "Advanced" is open.
  function titleOf(secret) {
    const label = labelOf(secret);
    if (label) return label;
    const words = secret.name.replace(/[_.-]+/g, " ").trim();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  async function loadSecrets() {
    const secrets = await api("GET", "/api/secrets");
    $("secrets-table").tBodies[0].replaceChildren(...secrets.map(secretRow));
  }

  function secretRow(secret) {
    const tr = el("tr", { dataset: { secret: secret.name } });
    const status = secret.is_set === null ? badge("warn", t("settings.locked"))
      : secret.is_set ? badge("good", t("settings.is_set")) : badge("", t("settings.not_set"));
    const actions = el("td", { class: "secret-actions" });
    const showActions = () => {
      const buttons = [];
      if (secret.is_set !== null) {
        buttons.push(el("button", { type: "button", class: "small", onclick: () => editInline() },
          secret.is_set ? t("settings.replace") : t("settings.set")));
      }
      if (secret.is_set) buttons.push(el("button", { type: "button", class: "small danger", onclick: confirmDelete }, t("common.delete")));
      actions.replaceChildren(el("div", { class: "row" }, buttons));
    };
    // Set or Replace: the value is pasted right in the row, so a home user never meets the by-name form.
    const editInline = () => {
      const input = el("input", { type: "password", name: "value", autocomplete: "off",
        "aria-label": t("settings.new_value", { label: titleOf(secret) }) });
      const form = el("form", { class: "row secret-inline" }, input,
        el("button", { type: "submit", class: "small primary" }, t("common.save")),
        el("button", { type: "button", class: "small", onclick: showActions }, t("common.cancel")));
      form.addEventListener("submit", guard(async (event) => {
        event.preventDefault();
        if (!input.value.trim()) { toast(t("settings.value_empty"), "error"); input.focus(); return; }
        await api("PUT", `/api/secrets/${encodeURIComponent(secret.name)}`, { value: input.value, label: labelOf(secret) });
        input.value = "";
        toast(t("settings.stored", { name: titleOf(secret) }), "good");
        await loadSecrets();
      }));
      actions.replaceChildren(form);
      input.focus();
    };
    const confirmDelete = () => {
      actions.replaceChildren(el("div", { class: "row" },
        el("span", { class: "hint" }, t("settings.delete_confirm", { name: titleOf(secret) })),
        el("button", { type: "button", class: "small danger", onclick: guard(() => remove(secret)) }, t("common.delete")),
        el("button", { type: "button", class: "small", onclick: showActions }, t("common.cancel"))));
    };
    showActions();
    tr.append(el("td", {}, el("strong", {}, titleOf(secret)),
      el("code", { class: "secret-name" }, t("settings.secret_name_small", { name: secret.name }))),
    el("td", {}, status), actions);
    return tr;
  }

  async function remove(secret) {
    await api("DELETE", `/api/secrets/${encodeURIComponent(secret.name)}`);
    toast(t("settings.deleted", { name: titleOf(secret) }), "good");
    await loadSecrets();
  }

  // The names are plumbing: shown in small print only while the Advanced part is open.
  $("secret-advanced").addEventListener("toggle", (event) => {
    $("secrets-table").classList.toggle("show-names", event.target.open);
  });

  $("secret-form").addEventListener("submit", guard(async (event) => {
    event.preventDefault();
    const form = event.target;
    const name = form.elements.name.value.trim();
    await api("PUT", `/api/secrets/${encodeURIComponent(name)}`,
      { value: form.elements.value.value, label: form.elements.label.value.trim() });
    form.reset();
    toast(t("settings.stored", { name }), "good");
    await loadSecrets();
  }));

  $("unlock-form").addEventListener("submit", guard(async (event) => {
    event.preventDefault();
    const field = event.target.elements.passphrase;
    await api("POST", "/api/secrets/unlock", { passphrase: field.value });
    field.value = "";
    toast(t("settings.unlocked"), "good");
    await Promise.all([loadStore(), loadSecrets()]);
  }));

  $("create-form").addEventListener("submit", guard(async (event) => {
    event.preventDefault();
    const form = event.target;
    if (form.elements.passphrase.value !== form.elements.again.value) {
      toast(t("settings.passphrase_mismatch"), "error");
      return;
    }
    await api("POST", "/api/secrets/passphrase", { passphrase: form.elements.passphrase.value });
    form.reset();
    toast(t("settings.created"), "good");
    await Promise.all([loadStore(), loadSecrets()]);
  }));

  // ---- settings ------------------------------------------------------------------------------------------------

  // The app's settings are top-level fields; each channel's are in ``channel_settings`` (one form per channel).
  const valueOf = (settings, name) => (name in settings ? settings[name] : (settings.channel_settings || {})[name]);
  const isChannel = (name) => name in (current.channel_settings || {});
  const FORMS = [...document.querySelectorAll("#general-form, #containers-form, #voice-form, form.channel-settings, #advanced-form")];
  let restarting = false;

  // Restart now: the host stops and starts again (the window stays); this page waits for the new host's /health.
  const uptime = () => fetch("/health", { cache: "no-store" }).then((r) => (r.ok ? r.json() : null))
    .then((h) => (h && h.status === "ok" ? h.uptime_s : null)).catch(() => null);
  $("restart-now").addEventListener("click", guard(async () => {
    const before = await uptime();
    restarting = true;
    $("restart-now").hidden = true;
    $("restart-text").textContent = t("settings.restarting");
    try {
      await api("POST", "/api/app/restart");
    } catch (err) {
      restarting = false;
      $("restart-now").hidden = false;
      throw err;
    }
    const deadline = Date.now() + 60000;
    while (Date.now() < deadline) {
      await new Promise((done) => setTimeout(done, 500));
      const now = await uptime();
      if (now !== null && (before === null || now < before)) { location.reload(); return; }
    }
    $("restart-text").textContent = t("settings.restart_lost");
  }));

  function show(settings) {
    current = settings;
    for (const form of FORMS) {
      for (const input of form.querySelectorAll("input[name], select[name]")) {
        const name = input.name;
        if (input.type === "checkbox") input.checked = Boolean(valueOf(settings, name));
        else if (document.activeElement !== input) input.value = valueOf(settings, name) ?? "";
        const fixed = settings.fixed_by_environment.includes(name);
        input.disabled = fixed;
        const hint = form.querySelector(`[data-hint="${name}"]`);
        if (hint && fixed) hint.textContent = t("settings.from_environment", { variable: `NANOCLAW_${name.toUpperCase()}` });
      }
    }
    const banner = $("restart-banner");
    if (!restarting) {
      banner.hidden = !settings.restart_needed.length;
      const fields = settings.restart_needed.map((name) => t(`settings.field_${name}`)).join(", ");
      $("restart-text").textContent = t(settings.can_restart ? "settings.restart_needed" : "settings.restart_needed_manual",
        { fields });
      $("restart-now").hidden = !settings.can_restart;
    }
    showLan(settings);
  }

  function showLan(settings) {
    $("lan-status").replaceChildren(
      badge(settings.lan_access ? "warn" : "good", t(settings.lan_access ? "settings.lan_badge_on" : "settings.lan_badge_off")), " ",
      !settings.lan_access ? t("settings.lan_off")
        : settings.lan_url ? t("settings.lan_on", { address: settings.lan_url })
        : t("settings.lan_on_port", { port: settings.lan_https ? settings.https_port : settings.port }));
    $("lan-on").hidden = settings.lan_access;
    $("lan-password").hidden = !settings.lan_access;
    $("lan-off").hidden = !settings.lan_access;
    const password = $("lan-form").elements.password;
    password.required = !settings.lan_password_set;
    $("lan-password-hint").textContent = settings.lan_password_set
      ? `${t("settings.lan_password_hint")} ${t("settings.lan_password_keep")}` : t("settings.lan_password_hint");
    const https = $("lan-https-form");
    if (!https.contains(document.activeElement)) https.elements.lan_https.value = settings.lan_https ? "on" : "off";
    for (const input of https.elements.lan_https) input.disabled = settings.fixed_by_environment.includes("lan_https");
    const fingerprint = $("lan-fingerprint");
    fingerprint.hidden = !(settings.lan_https && settings.lan_certificate_fingerprint);
    // A line break may fall only between byte pairs, so each pair stays readable to compare with the phone's.
    const pairs = (settings.lan_certificate_fingerprint || "").split(":");
    fingerprint.querySelector("code").replaceChildren(
      ...pairs.flatMap((pair, i) => (i < pairs.length - 1 ? [`${pair}:`, el("wbr")] : [pair])));
  }

  async function saveForm(event) {
    event.preventDefault();
    const changes = {};
    const theirs = {};
    for (const input of event.target.querySelectorAll("input[name]:not(:disabled), select[name]:not(:disabled)")) {
      const value = input.type === "checkbox" ? input.checked
        : input.type === "number" ? Number(input.value) : input.value.trim();
      if (value === valueOf(current, input.name)) continue;
      if (isChannel(input.name)) theirs[input.name] = value; else changes[input.name] = value;
    }
    if (!Object.keys(changes).length && !Object.keys(theirs).length) { toast(t("settings.nothing_changed")); return; }
    if (Object.keys(theirs).length) changes.channel_settings = theirs;
    show(await api("PUT", "/api/settings", changes));
    toast(t("common.saved"), "good");
  }

  $("general-form").addEventListener("submit", guard(saveForm));
  $("containers-form").addEventListener("submit", guard(saveForm));
  $("voice-form").addEventListener("submit", guard(saveForm));
  for (const form of document.querySelectorAll("form.channel-settings")) form.addEventListener("submit", guard(saveForm));
  $("advanced-form").addEventListener("submit", guard(saveForm));

  $("lan-form").addEventListener("submit", guard(async (event) => {
    event.preventDefault();
    const field = event.target.elements.password;
    const changing = current.lan_access;
    if (changing && !field.value) { field.focus(); return; }
    const settings = await api("POST", "/api/settings/lan", { enabled: true, password: field.value || null });
    field.value = "";
    show(settings);
    toast(changing ? t("settings.lan_password_changed") : t("common.saved"), "good");
  }));

  $("lan-off").addEventListener("click", guard(async () => {
    show(await api("POST", "/api/settings/lan", { enabled: false }));
    toast(t("common.saved"), "good");
    await loadDevices();
  }));

  $("lan-https-form").addEventListener("submit", guard(async (event) => {
    event.preventDefault();
    const wanted = event.target.elements.lan_https.value === "on";
    if (wanted === current.lan_https) { toast(t("settings.nothing_changed")); return; }
    show(await api("PUT", "/api/settings", { lan_https: wanted }));
    toast(t("settings.lan_https_saved"), "good");
  }));

  // ---- start at login (the OS's own entry, read back after every change) ---------------------------------------

  function showStartup(state) {
    const box = $("startup-toggle");
    box.checked = state.enabled;
    box.disabled = !state.supported;
    $("startup-status").textContent = !state.supported ? t("settings.startup_unsupported")
      : t(state.enabled ? "settings.startup_on" : "settings.startup_off");
  }

  $("startup-toggle").addEventListener("change", guard(async (event) => {
    const box = event.target;
    const wanted = box.checked;
    box.disabled = true;
    try {
      const state = await api("PUT", "/api/autostart", { enabled: wanted });
      showStartup(state);
      toast(t(state.enabled ? "settings.startup_saved_on" : "settings.startup_saved_off"), "good");
    } catch (err) {
      box.checked = !wanted;
      throw err;
    } finally {
      box.disabled = false;
    }
  }));

  // ---- signed-in devices ---------------------------------------------------------------------------------------

  async function loadDevices() {
    const { others } = await api("GET", "/api/sessions");
    $("devices-status").textContent = others === 0 ? t("settings.devices_none")
      : others === 1 ? t("settings.devices_one") : t("settings.devices_many", { count: others });
    $("sign-out-others").disabled = others === 0;
  }

  $("sign-out-others").addEventListener("click", guard(async () => {
    const { signed_out: count } = await api("POST", "/api/sessions/sign-out-others");
    toast(t("settings.devices_signed_out", { count }), "good");
    await loadDevices();
  }));

  // ---- live updates --------------------------------------------------------------------------------------------

  const loadSettings = async () => show(await api("GET", "/api/settings"));
  on("settings.changed", () => loadSettings().catch(() => {}));
  on("secrets.changed", () => loadSecrets().catch(() => {}));
  on("health", (data) => {
    if (data.components && "secrets" in data.components) Promise.all([loadStore(), loadSecrets()]).catch(() => {});
  });

  loadSettings().catch(() => {});
  loadDevices().catch(() => {});
  api("GET", "/api/autostart").then(showStartup).catch(() => {});
  loadStore().catch(() => {});
  loadSecrets().catch(() => {});
});
