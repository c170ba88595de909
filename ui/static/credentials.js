// The credentials page: the agents' keys for other services. A value is typed into a password field, sent once and
// never shown again (the API never returns it). "?host=api.github.com" opens the Add form with the host filled in:
// that is the link an agent sends its owner when it needs a credential.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { t, api, el, on, toast } = NC;
  const list = document.getElementById("cred-list");
  const card = document.getElementById("cred-form-card");
  const form = document.getElementById("cred-form");
  const error = document.getElementById("cred-error");
  const kind = document.getElementById("cred-kind");
  const fieldBox = document.getElementById("cred-field-box");
  const agentList = document.getElementById("cred-agent-list");
  const input = (id) => document.getElementById(id);
  let editing = null;  // the credential being changed, or null while adding
  let agents = [];
  let removing = null;  // id of the credential whose removal waits for a confirmation
  const results = new Map();  // id -> last Test result, kept across live reloads

  async function load() {
    const data = await api("GET", "/api/credentials", undefined, { quiet: true }).catch((err) => {
      list.replaceChildren(el("p", { class: "error", role: "alert" }, t("common.error_generic", { error: err.message })));
      return null;
    });
    if (!data) return;
    agents = data.agents;
    showStore(data.store);
    if (!card.hidden) drawAgents(currentAgents());
    if (!data.credentials.length) {
      list.replaceChildren(el("div", { class: "empty cred-empty" }, el("p", {}, t("credentials.empty")),
        el("button", { type: "button", class: "primary", onclick: () => openForm(null) }, t("credentials.add"))));
      return;
    }
    list.replaceChildren(el("div", { class: "cred-items" }, data.credentials.map(item)));
  }

  function showStore(store) {
    const box = document.getElementById("cred-store");
    box.hidden = store.ready;
    document.getElementById("cred-store-text").textContent = store.problem;
    document.getElementById("cred-store-setup").hidden = store.fix !== "setup";
    document.getElementById("cred-store-unlock").hidden = store.fix !== "unlock";
  }

  function agentWords(c) {
    if (c.all_agents) return t("credentials.all_agents");
    return c.agents.length ? c.agents.map((a) => a.name).join(", ") : t("credentials.no_agent_left");
  }

  const SECRET_BADGE = { set: "good", missing: "bad", locked: "warn" };

  function item(c) {
    const result = results.get(c.id);
    const row = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
    return el("article", { class: "card cred-item", dataset: { credentialId: c.id } },
      el("div", { class: "cred-head" }, el("h2", {}, c.name),
        el("span", { class: `badge ${SECRET_BADGE[c.secret] || ""}`, "data-secret": c.secret },
          t(`credentials.secret_${c.secret}`))),
      el("dl", { class: "cred-facts" },
        row(t("credentials.col_host"), el("code", {}, c.host_pattern)),
        row(t("credentials.col_how"), c.kind === "header" || c.kind === "query" ? c.how : t(`credentials.kind_${c.kind}`)),
        row(t("credentials.col_agents"), agentWords(c)),
        row(t("credentials.col_policy"), t(`credentials.policy_${c.policy}`))),
      c.secret === "missing" ? el("p", { class: "hint" }, t("credentials.secret_missing_hint")) : null,
      result ? el("p", { class: `cred-result ${result.ok ? "ok" : "error"}`, role: "status" }, result.message) : null,
      removing === c.id ? confirmRemove(c) : actions(c));
  }

  function actions(c) {
    const test = el("button", { type: "button", class: "cred-test" }, t("credentials.test"));
    test.addEventListener("click", async () => {
      test.disabled = true;
      test.textContent = t("credentials.testing");
      try {
        const result = await api("POST", `/api/credentials/${encodeURIComponent(c.id)}/test`, {}, { quiet: true });
        results.set(c.id, { ok: result.ok, message: result.message });
      } catch (err) {
        results.set(c.id, { ok: false, message: err.message });
      }
      await load();
    });
    return el("div", { class: "row cred-actions" }, test,
      el("button", { type: "button", class: "cred-edit", onclick: () => openForm(c) }, t("credentials.edit")),
      el("button", { type: "button", class: "danger cred-remove",
        onclick: () => { removing = c.id; load(); } }, t("credentials.remove")));
  }

  function confirmRemove(c) {
    return el("div", { class: "cred-confirm stack", role: "alert" }, el("p", {}, t("credentials.remove_confirm", { name: c.name })),
      el("div", { class: "row" },
        el("button", { type: "button", class: "danger cred-remove-yes", onclick: async () => {
          try {
            await api("DELETE", `/api/credentials/${encodeURIComponent(c.id)}`);
            toast(t("credentials.removed", { name: c.name }), "good");
            results.delete(c.id);
          } catch (_) { /* the toast said why */ }
          removing = null;
          await load();
        } }, t("credentials.remove_yes")),
        el("button", { type: "button", onclick: () => { removing = null; load(); } }, t("credentials.cancel"))));
  }

  // ---------------------------------------------------------------------------------------------- the form

  function currentAgents() {
    return [...agentList.querySelectorAll("input:checked")].map((box) => box.value);
  }

  function drawAgents(chosen) {
    document.getElementById("cred-agents-some").hidden = !agents.length;  // nothing to choose from yet
    if (!agents.length) { agentList.replaceChildren(el("p", { class: "hint" }, t("credentials.no_agents"))); return; }
    agentList.replaceChildren(...agents.map((a) => el("label", { class: "cred-agent" },
      el("input", { type: "checkbox", value: a.id, checked: chosen.includes(a.id),
        onchange: () => { form.elements.agents.value = "some"; } }), " ", a.name)));
  }

  function showKind() {
    const named = kind.value === "header" || kind.value === "query";
    fieldBox.hidden = !named;
    if (named) {
      input("cred-field-label").textContent = t(`credentials.field_${kind.value}`);
      input("cred-field-hint").textContent = t(`credentials.field_${kind.value}_hint`);
    }
    input("cred-value-hint").textContent = editing ? t("credentials.value_hint_edit")
      : t(kind.value === "basic" ? "credentials.value_hint_basic" : "credentials.value_hint_add");
  }

  function openForm(c, host) {
    editing = c;
    error.hidden = true;
    form.reset();  // the value field starts empty, always: a saved value is never put back in the page
    input("cred-form-title").textContent = c ? t("credentials.edit_title", { name: c.name }) : t("credentials.add_title");
    input("cred-name").value = c ? c.name : "";
    input("cred-host").value = c ? c.host_pattern : (host || "");
    kind.value = c ? c.kind : "bearer";
    input("cred-field").value = c ? c.field : "";
    input("cred-test-url").value = c ? c.test_url : "";
    form.elements.agents.value = !c || c.all_agents ? "all" : "some";
    form.elements.policy.value = c ? c.policy : "allow";
    drawAgents(c && !c.all_agents ? c.agents.map((a) => a.id) : []);
    showKind();
    card.hidden = false;
    card.scrollIntoView({ block: "start" });
    input("cred-name").focus();
  }

  function closeForm() {
    form.reset();
    card.hidden = true;
    editing = null;
  }

  function fail(message, focus) {
    error.textContent = message.charAt(0).toUpperCase() + message.slice(1);  // the API's sentences start small
    error.hidden = false;
    if (focus) input(focus).focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const body = {
      name: input("cred-name").value.trim(),
      host_pattern: input("cred-host").value.trim(),
      kind: kind.value,
      field: fieldBox.hidden ? "" : input("cred-field").value.trim(),
      agents: form.elements.agents.value === "all" ? "all" : currentAgents(),
      policy: form.elements.policy.value,
      test_url: input("cred-test-url").value.trim(),
      value: input("cred-value").value,
    };
    if (!body.name) return fail(t("credentials.need_name"), "cred-name");
    if (!body.host_pattern) return fail(t("credentials.need_host"), "cred-host");
    if (!fieldBox.hidden && !body.field) return fail(t(`credentials.need_field_${body.kind}`), "cred-field");
    if (!editing && !body.value.trim()) return fail(t("credentials.need_value"), "cred-value");
    if (body.agents !== "all" && !body.agents.length) {
      if (!agents.length) body.agents = "all";
      else return fail(t("credentials.need_agents"));
    }
    const save = input("cred-save");
    save.disabled = true;
    try {
      const saved = editing
        ? await api("PUT", `/api/credentials/${encodeURIComponent(editing.id)}`, body, { quiet: true })
        : await api("POST", "/api/credentials", body, { quiet: true });
      toast(t(editing ? "credentials.saved_edit" : "credentials.saved_new", { name: saved.name }), "good", 9000);
      results.delete(saved.id);
      closeForm();
      await load();
    } catch (err) {
      fail(err.message);
    } finally {
      save.disabled = false;
    }
  });

  kind.addEventListener("change", showKind);
  input("cred-cancel").addEventListener("click", closeForm);
  input("cred-add").addEventListener("click", () => openForm(null));
  input("cred-store-unlock").addEventListener("click", () => document.getElementById("nc-locked-passphrase")?.focus());
  on("credentials.changed", () => load());
  on("health", (data) => { if ("secrets" in (data.components || {})) load(); });

  load().then(() => {
    const host = new URLSearchParams(location.search).get("host");
    if (host) openForm(null, host);
  });
});
