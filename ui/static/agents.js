// The agents pages: the list with the create form (/agents) and one agent's tabs (/agents/{id}): overview, memory
// editor, skills, mounts with the allowlist, packages, MCP servers, internet access and restart. Every action is one
// call to /api/agents/...;
// data is inserted as text only (NC.el), never as HTML.
"use strict";
(() => {
  const api = (...args) => window.NC.api(...args);
  const t = (key, values) => window.NC.t(key, values);
  const el = (...args) => window.NC.el(...args);
  const toast = (...args) => window.NC.toast(...args);

  function showError(id, err) {
    const box = document.getElementById(id);
    if (!box) return;
    box.textContent = err ? (err.message || String(err)) : "";
    box.hidden = !err;
  }

  function debounce(fn, ms = 250) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  function when(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  function table(columns, rows) {
    return el("div", { class: "table-wrap" },
      el("table", {},
        el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))),
        el("tbody", {}, rows)));
  }

  function runningBadge(running) {
    return running > 0
      ? el("span", { class: "badge good" }, t("agents.running", { count: running }))
      : el("span", { class: "badge" }, t("agents.stopped"));
  }

  // Wrap a form's submit: prevent the page load, disable the button while the call runs, show errors inline.
  function onSubmit(form, errorId, fn) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      showError(errorId, null);
      try { await fn(); } catch (err) { showError(errorId, err); } finally { if (button) button.disabled = false; }
    });
  }

  // The name setup and the provider menus use; the internal id (for the command line) is its tooltip.
  function providerName(id) {
    const key = `agents.provider_${id}`;
    const name = t(key);
    return name === key ? id : el("span", { title: id }, name);
  }

  // ------------------------------------------------------------------------------------------ the list page

  async function listPage() {
    const box = document.getElementById("agents-list");

    async function load() {
      const agents = await api("GET", "/api/agents");
      if (!agents.length) { box.replaceChildren(el("p", { class: "empty" }, t("agents.none"))); return; }
      const rows = agents.map((a) => el("tr", { dataset: { agentId: a.id } },
        el("td", {}, el("a", { href: `/agents/${encodeURIComponent(a.id)}`, class: "agent-link" }, a.name)),
        el("td", {}, providerName(a.provider), " · ", a.model ? el("code", {}, a.model) : el("span", { class: "muted" },
          t("agents.default_model"))),
        el("td", {}, a.chats.length ? a.chats.map((c) => c.name).join(", ")
          : el("span", { class: "muted" }, t("agents.no_chats"))),
        el("td", {}, String(a.sessions)),
        el("td", {}, runningBadge(a.running))));
      box.replaceChildren(table([t("agents.name"), t("agents.model"), t("agents.chats_title"),
        t("agents.sessions_title"), t("agents.containers")], rows));
    }

    const refresh = debounce(() => load().catch(() => {}));
    for (const kind of ["agent.created", "agent.deleted", "agent.config_changed", "container.started",
      "container.exited"]) window.NC.on(kind, refresh);
    await load();

    const form = document.getElementById("create-form");
    onSubmit(form, "create-error", async () => {
      const created = await api("POST", "/api/agents", {
        name: document.getElementById("create-name").value,
        provider: document.getElementById("create-provider").value,
        model: document.getElementById("create-model").value || null,
      }, { quiet: true });
      location.assign(`/agents/${encodeURIComponent(created.id)}`);
    });
  }

  // ------------------------------------------------------------------------------------------ the detail page

  function detailPage(agentId) {
    const base = `/api/agents/${encodeURIComponent(agentId)}`;
    const loaded = new Set();
    const loaders = {};
    let agent = null;

    // tabs ------------------------------------------------------------------------------------
    const tabs = [...document.querySelectorAll("[role=tab][data-tab]")];
    function select(name) {
      const tab = tabs.find((b) => b.dataset.tab === name) || tabs[0];
      for (const b of tabs) {
        const on = b === tab;
        b.setAttribute("aria-selected", on ? "true" : "false");
        document.getElementById(`panel-${b.dataset.tab}`).hidden = !on;
      }
      history.replaceState(null, "", `#${tab.dataset.tab}`);
      if (!loaded.has(tab.dataset.tab) && loaders[tab.dataset.tab]) {
        loaded.add(tab.dataset.tab);
        loaders[tab.dataset.tab]().catch(() => loaded.delete(tab.dataset.tab));
      }
    }
    for (const b of tabs) b.addEventListener("click", () => select(b.dataset.tab));

    // overview --------------------------------------------------------------------------------
    async function loadAgent(fillForm) {
      agent = await api("GET", base);
      document.getElementById("agent-name").textContent = agent.name;
      document.title = `${agent.name} · NanoClaw`;
      document.getElementById("agent-running").replaceWith(
        Object.assign(runningBadge(agent.running), { id: "agent-running" }));
      if (fillForm) {
        document.getElementById("ov-name").value = agent.name;
        document.getElementById("ov-assistant").value = agent.assistant_name || "";
        document.getElementById("ov-assistant").placeholder = agent.name;
        document.getElementById("ov-provider").value = agent.provider;
        document.getElementById("ov-model").value = agent.model || "";
      }
      const chats = document.getElementById("ov-chats");
      chats.replaceChildren(agent.chats.length
        ? el("ul", { class: "plain" }, agent.chats.map((c) => el("li", {}, c.name, " ",
          el("span", { class: "badge" }, c.channel_type), " ", el("span", { class: "muted" },
            t(`agents.engage_${c.engage_mode.replace("-", "_")}`)))))
        : el("p", { class: "muted" }, t("agents.no_chats")));
      document.getElementById("ov-workspace").textContent = agent.workspace;
      const names = Object.fromEntries(agent.chats.map((c) => [c.messaging_group_id, c.name]));
      const sessions = document.getElementById("ov-sessions");
      sessions.replaceChildren(agent.session_list.length
        ? table([t("agents.session_chat"), t("agents.containers"), t("agents.last_active")],
          agent.session_list.map((s) => el("tr", {},
            el("td", {}, names[s.messaging_group_id] || s.messaging_group_id || t("agents.session_all_chats")),
            el("td", {}, el("span", { class: `badge ${s.container_status === "stopped" ? "" : "good"}` },
              t(`agents.container_${s.container_status}`))),
            el("td", {}, when(s.last_active)))))
        : el("p", { class: "muted" }, t("agents.no_sessions")));
      document.getElementById("restart-state").textContent = agent.running > 0
        ? t("agents.restart_running", { count: agent.running }) : t("agents.restart_idle");
    }

    onSubmit(document.getElementById("overview-form"), null, async () => {
      await api("PATCH", base, {
        name: document.getElementById("ov-name").value,
        assistant_name: document.getElementById("ov-assistant").value,
        provider: document.getElementById("ov-provider").value,
        model: document.getElementById("ov-model").value,
      });
      await loadAgent(true);
      toast(t("agents.saved_next_start"), "good");
    });

    document.getElementById("delete-agent").addEventListener("click", async () => {
      if (!agent || !window.confirm(t("agents.delete_confirm", { name: agent.name }))) return;
      const force = document.getElementById("delete-force").checked;
      const result = await api("DELETE", `${base}?force=${force ? "true" : "false"}`);
      toast(result.moved_to ? t("agents.deleted_moved", { name: result.name, path: result.moved_to })
        : t("agents.deleted", { name: result.name }), "good");
      location.assign("/agents");
    });

    // memory ----------------------------------------------------------------------------------
    const memory = { original: "", version: null, max: 0 };
    const editor = document.getElementById("memory-text");
    const encoder = new TextEncoder();
    function memoryState() {
      const dirty = editor.value !== memory.original;
      const size = encoder.encode(editor.value).length;
      const state = document.getElementById("memory-state");
      state.textContent = dirty ? t("agents.memory_unsaved") : t("agents.memory_saved_state");
      state.className = `badge ${dirty ? "warn" : "good"}`;
      const sizeBox = document.getElementById("memory-size");
      sizeBox.textContent = t("agents.memory_size", { size: size.toLocaleString(), max: memory.max.toLocaleString() });
      sizeBox.classList.toggle("error", size > memory.max);
      document.getElementById("memory-save").disabled = !dirty || size > memory.max;
      document.getElementById("memory-revert").disabled = !dirty;
      return dirty;
    }
    function showMemory(data) {
      memory.original = data.text;
      memory.version = data.version;
      memory.max = data.max_bytes;
      editor.value = data.text;
      document.getElementById("memory-path").textContent = data.path;
      document.getElementById("memory-lossy").hidden = !data.lossy;
      memoryState();
    }
    loaders.memory = async () => showMemory(await api("GET", `${base}/memory`));
    editor.addEventListener("input", () => { memoryState(); showError("memory-error", null); });
    document.getElementById("memory-revert").addEventListener("click", () => { editor.value = memory.original;
      memoryState(); });
    document.getElementById("memory-save").addEventListener("click", async () => {
      const button = document.getElementById("memory-save");
      button.disabled = true;
      showError("memory-error", null);
      try {
        const saved = await api("PUT", `${base}/memory`, { text: editor.value, base_version: memory.version },
          { quiet: true });
        showMemory(saved);
        toast(saved.cut_in_prompt ? t("agents.memory_saved_cut", { chars: saved.prompt_chars.toLocaleString() })
          : t("agents.memory_saved"), "good");
      } catch (err) {
        showError("memory-error", err);
        memoryState();
      }
    });
    editor.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key === "s") {
        event.preventDefault();
        if (!document.getElementById("memory-save").disabled) document.getElementById("memory-save").click();
      }
    });
    window.addEventListener("beforeunload", (event) => {
      if (loaded.has("memory") && editor.value !== memory.original) event.preventDefault();
    });

    // skills ----------------------------------------------------------------------------------
    function showSkills(view) {
      document.getElementById("skills-own-folder").textContent = `${view.own_folder}/<name>/SKILL.md`;
      document.getElementById("skills-list").replaceChildren(...view.skills.map((s) =>
        el("label", { class: "choice skill-choice" },
          el("input", { type: "checkbox", name: "skill", value: s.name, checked: s.enabled }),
          el("span", {}, el("strong", {}, s.name), el("br"), el("span", { class: "hint" }, s.description)))));
    }
    loaders.skills = async () => {
      const retry = document.getElementById("skills-retry");
      try {
        showError("skills-error", null);
        retry.hidden = true;
        showSkills(await api("GET", `${base}/skills`, undefined, { quiet: true }));
      } catch (err) {
        showError("skills-error", new Error(t("agents.skills_load_error", { error: err.message || String(err) })));
        retry.hidden = false;
        throw err;
      }
    };
    document.getElementById("skills-retry").addEventListener("click", () => loaders.skills().catch(() => {}));
    document.getElementById("skills-form").addEventListener("change", () => {
      document.getElementById("skills-saved").hidden = true;
    });
    onSubmit(document.getElementById("skills-form"), "skills-error", async () => {
      document.getElementById("skills-saved").hidden = true;
      const off = [...document.querySelectorAll("#skills-list input[name=skill]")]
        .filter((box) => !box.checked).map((box) => box.value);
      const saved = await api("PUT", `${base}/skills`, { off }, { quiet: true });
      showSkills(saved);
      const box = document.getElementById("skills-saved");
      box.textContent = saved.skills.some((s) => s.enabled) ? t("agents.skills_saved") : t("agents.skills_saved_none_on");
      box.hidden = false;
    });

    // mounts and the allowlist ----------------------------------------------------------------
    let mounts = [];
    async function saveMounts(list) {
      const view = await api("PUT", `${base}/mounts`, { mounts: list }, { quiet: true });
      showMounts(view);
      toast(t("agents.saved_next_start"), "good");
    }
    function showMounts(view) {
      mounts = view.mounts.map((m) => ({ host_path: m.host_path, container_path: m.container_path,
        read_write: m.read_write }));
      showError("mounts-load-error", view.error ? new Error(view.error) : null);
      const list = document.getElementById("mounts-list");
      list.replaceChildren(view.mounts.length
        ? table([t("agents.mount_host"), t("agents.mount_target"), t("agents.mount_status"), ""],
          view.mounts.map((m, i) => el("tr", { class: "mount-row" },
            el("td", {}, el("code", {}, m.host_path)),
            el("td", {}, m.target ? el("code", {}, m.target) : "—"),
            el("td", {}, m.ok
              ? el("span", {}, el("span", { class: "badge good" }, m.read_only ? t("agents.read_only")
                : t("agents.read_write")), m.note ? el("div", { class: "hint" }, m.note) : null)
              : el("span", {}, el("span", { class: "badge bad" }, t("agents.refused")),
                el("div", { class: "hint refusal" }, m.reason))),
            el("td", {}, el("button", { type: "button", class: "small danger", onclick: () =>
              saveMounts(mounts.filter((_, j) => j !== i)).catch((err) => showError("mounts-error", err)) },
            t("agents.remove"))))))
        : el("p", { class: "muted" }, t("agents.no_mounts")));
      showRoots(view.allowlist);
    }
    function showRoots(allowlist) {
      document.getElementById("allowlist-path").textContent = allowlist.path;
      const box = document.getElementById("roots-list");
      box.replaceChildren(allowlist.roots.length
        ? table([t("agents.root_path"), t("agents.mount_status"), t("agents.root_description"), ""],
          allowlist.roots.map((r) => el("tr", {},
            el("td", {}, el("code", {}, r.path)),
            el("td", {}, el("span", { class: `badge ${r.exists ? "good" : "warn"}` },
              r.exists ? (r.allow_read_write ? t("agents.read_write") : t("agents.read_only"))
                : t("agents.root_missing"))),
            el("td", {}, r.description || ""),
            el("td", {}, el("button", { type: "button", class: "small danger", onclick: async () => {
              try {
                await api("DELETE", `/api/agents/allowlist/roots?path=${encodeURIComponent(r.path)}`,
                  undefined, { quiet: true });
                await loaders.mounts();
              } catch (err) { showError("roots-error", err); }
            } }, t("agents.remove"))))))
        : el("p", { class: "muted" }, t("agents.no_roots")));
      document.getElementById("blocked-patterns").textContent = t("agents.blocked_patterns",
        { names: [...allowlist.default_blocked, ...allowlist.blocked_patterns].join(", ") });
    }
    loaders.mounts = async () => showMounts(await api("GET", `${base}/mounts`));
    onSubmit(document.getElementById("mount-form"), "mounts-error", async () => {
      await saveMounts([...mounts, {
        host_path: document.getElementById("mount-host").value,
        container_path: document.getElementById("mount-name").value || null,
        read_write: document.getElementById("mount-rw").checked,
      }]);
      document.getElementById("mount-form").reset();
    });
    onSubmit(document.getElementById("root-form"), "roots-error", async () => {
      await api("POST", "/api/agents/allowlist/roots", {
        path: document.getElementById("root-path").value,
        allow_read_write: document.getElementById("root-rw").checked,
        description: document.getElementById("root-description").value,
      }, { quiet: true });
      document.getElementById("root-form").reset();
      await loaders.mounts();
    });

    // packages ----------------------------------------------------------------------------------
    const words = (text) => text.split(/[\s,]+/).filter(Boolean);
    function showPackages(data) {
      document.getElementById("packages-apt").value = data.apt.join("\n");
      document.getElementById("packages-pip").value = data.pip.join("\n");
    }
    loaders.packages = async () => showPackages(await api("GET", `${base}/packages`));
    onSubmit(document.getElementById("packages-form"), "packages-error", async () => {
      const saved = await api("PUT", `${base}/packages`, {
        apt: words(document.getElementById("packages-apt").value),
        pip: words(document.getElementById("packages-pip").value),
      }, { quiet: true });
      showPackages(saved);
      toast(saved.rebuild_on_next_start ? t("agents.packages_saved") : t("agents.no_change"), "good");
    });

    // MCP servers ----------------------------------------------------------------------------------
    function showServers(servers) {
      const box = document.getElementById("mcp-list");
      box.replaceChildren(servers.length
        ? table([t("agents.mcp_name"), t("agents.mcp_command"), t("agents.mcp_env"), ""],
          servers.map((s) => el("tr", {},
            el("td", {}, s.name),
            el("td", {}, el("code", {}, [s.command, ...s.args].join(" "))),
            el("td", {}, Object.keys(s.env).length
              ? Object.entries(s.env).map(([k, v]) => el("div", {}, el("code", {}, `${k}=${v}`)))
              : el("span", { class: "muted" }, "—")),
            el("td", {}, el("button", { type: "button", class: "small danger", onclick: async () => {
              if (!window.confirm(t("agents.mcp_remove_confirm", { name: s.name }))) return;
              showServers(await api("DELETE", `${base}/mcp-servers/${encodeURIComponent(s.name)}`));
            } }, t("agents.remove"))))))
        : el("p", { class: "muted" }, t("agents.no_mcp")));
    }
    loaders.mcp = async () => showServers(await api("GET", `${base}/mcp-servers`));
    onSubmit(document.getElementById("mcp-form"), "mcp-error", async () => {
      const env = {};
      for (const line of document.getElementById("mcp-env").value.split("\n")) {
        if (!line.trim()) continue;
        const at = line.indexOf("=");
        if (at < 1) throw new Error(t("agents.mcp_env_bad", { line: line.trim() }));
        env[line.slice(0, at).trim()] = line.slice(at + 1);
      }
      const servers = await api("POST", `${base}/mcp-servers`, {
        name: document.getElementById("mcp-name").value,
        command: document.getElementById("mcp-command").value,
        args: document.getElementById("mcp-args").value.split("\n").map((a) => a.trim()).filter(Boolean),
        env,
      }, { quiet: true });
      document.getElementById("mcp-form").reset();
      showServers(servers);
      toast(t("agents.saved_next_start"), "good");
    });

    // internet access ----------------------------------------------------------------------------
    const siteList = document.getElementById("internet-list");
    const chosenMode = () => (document.getElementById("internet-sites").checked ? "sites" : "open");
    function internetState() {
      const sites = chosenMode() === "sites";
      siteList.disabled = !sites;
      document.getElementById("internet-nothing").hidden = !sites || siteList.value.trim() !== "";
    }
    function showInternet(data) {
      document.getElementById(data.mode === "sites" ? "internet-sites" : "internet-open").checked = true;
      siteList.value = data.sites.join("\n");
      internetState();
    }
    loaders.internet = async () => showInternet(await api("GET", `${base}/internet`));
    for (const id of ["internet-open", "internet-sites"]) document.getElementById(id).addEventListener("change", internetState);
    document.getElementById("internet-form").addEventListener("input", () => {
      document.getElementById("internet-saved").hidden = true;
      internetState();
    });
    onSubmit(document.getElementById("internet-form"), "internet-error", async () => {
      document.getElementById("internet-saved").hidden = true;
      const saved = await api("PUT", `${base}/internet`, { mode: chosenMode(), sites: siteList.value.split("\n") },
        { quiet: true });
      showInternet(saved);
      const box = document.getElementById("internet-saved");
      box.textContent = saved.mode === "open" ? t("agents.internet_saved_open")
        : saved.sites.length ? t("agents.internet_saved_sites", { sites: saved.sites.join(", ") })
          : t("agents.internet_saved_none");
      box.hidden = false;
    });

    // restart ----------------------------------------------------------------------------------
    document.getElementById("restart-agent").addEventListener("click", async () => {
      const button = document.getElementById("restart-agent");
      button.disabled = true;
      try {
        const result = await api("POST", `${base}/restart`);
        const box = document.getElementById("restart-result");
        box.textContent = result.stopped > 0 ? t("agents.restart_done", { count: result.stopped })
          : t("agents.restart_none");
        box.hidden = false;
        await loadAgent(false);
      } finally { button.disabled = false; }
    });

    // live updates ------------------------------------------------------------------------------
    const refreshAgent = debounce(() => loadAgent(false).catch(() => {}));
    window.NC.on("container.started", refreshAgent);
    window.NC.on("container.exited", refreshAgent);
    window.NC.on("agent.config_changed", (data) => {
      if (data.agent_group_id !== agentId) return;
      refreshAgent();
      if (data.change === "packages" && loaded.has("packages")) loaders.packages().catch(() => {});
      if (data.change === "mcp_servers" && loaded.has("mcp")) loaders.mcp().catch(() => {});
      if (data.change === "skills" && loaded.has("skills")) loaders.skills().catch(() => {});
    });
    window.NC.on("agent.egress_changed", (data) => {
      if (data.agent_group_id === agentId && loaded.has("internet")) loaders.internet().catch(() => {});
    });
    window.NC.on("agent.deleted", (data) => {
      if (data.agent_group_id === agentId) location.assign("/agents");
    });

    loadAgent(true).catch(() => {});
    select((location.hash || "#overview").slice(1));
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.getElementById("agents-list")) listPage().catch(() => {});
    const detail = document.getElementById("agent-detail");
    if (detail) detailPage(detail.dataset.agentId);
  });
})();
