// The people page: strangers waiting to be let in (decided through /api/approvals, like the card in a chat), then
// everyone with their roles and the agents they may talk to. Live events redraw it unless a name is being edited.
"use strict";
(() => {
  const { t, api, el, on, toast } = window.NC;
  const list = document.getElementById("people");
  const waiting = document.getElementById("waiting");
  const waitingList = document.getElementById("waiting-list");
  const addForm = document.getElementById("add-person");
  const addAgent = document.getElementById("add-agent");
  let editing = false;  // a rename form is open: live reloads wait
  let stale = false;
  const picked = new Map();  // what is chosen in each person's Give list, kept across live redraws

  // Event handlers: the API helper already showed its error as a toast; anything else is a bug worth logging.
  const guarded = (fn) => (...args) => fn(...args).catch((err) => { if (!(err instanceof NC.ApiError)) console.error(err); });

  function roleLabel(role) {
    if (role.role === "owner") return t("people.owner");
    return role.agent_group_id ? t("people.admin_of", { agent: role.agent_name }) : t("people.admin_all");
  }

  function chip(label, onRemove, cls) {
    return el("span", { class: `badge chip ${cls || ""}` }, label,
      el("button", { type: "button", title: t("people.remove", { what: label }),
        "aria-label": t("people.remove", { what: label }), onclick: onRemove }, "×"));
  }

  const change = (url, body, message) => guarded(async () => {
    await api("POST", url, body);
    toast(message, "good");
    await load();
  })();

  function giveOptions(person, agents) {
    const roles = person.roles;
    const has = (role, agent) => roles.some((r) => r.role === role && (r.agent_group_id || null) === agent);
    const options = [el("option", { value: "" }, t("people.give_pick"))];
    if (!has("owner", null)) options.push(el("option", { value: "owner|" }, t("people.give_owner")));
    if (!has("admin", null)) options.push(el("option", { value: "admin|" }, t("people.give_admin")));
    for (const a of agents) {
      if (!has("admin", a.id)) options.push(el("option", { value: `admin|${a.id}` }, t("people.give_admin_of", { agent: a.name })));
    }
    const members = new Set(person.memberships.map((m) => m.agent_group_id));
    for (const a of agents) {
      if (!members.has(a.id)) options.push(el("option", { value: `member|${a.id}` }, t("people.give_member_of", { agent: a.name })));
    }
    return options;
  }

  function giveForm(person, agents) {
    const id = `give-${person.id}`;
    const choice = el("select", { id, "aria-label": t("people.col_add"),
      onchange: () => picked.set(person.id, choice.value) }, giveOptions(person, agents));
    const wanted = picked.get(person.id);
    if (wanted) {
      choice.value = wanted;
      if (choice.value !== wanted) picked.delete(person.id);  // given meanwhile: no longer on the list
    }
    const form = el("form", { class: "give" }, choice, el("button", { type: "submit" }, t("people.give")));
    form.addEventListener("submit", guarded(async (event) => {
      event.preventDefault();
      if (!choice.value) return;
      const [what, agent] = choice.value.split("|");
      const label = choice.selectedOptions[0].textContent;
      picked.delete(person.id);
      const message = t("people.given", { who: person.name, what: label });
      if (what === "member") await change("/api/people/add-member", { user_id: person.id, agent_group_id: agent }, message);
      else await change("/api/people/grant", { user_id: person.id, role: what, agent_group_id: agent || null }, message);
    }));
    return form;
  }

  function word(key, fallback) {
    const text = t(key);
    return text === key ? fallback : text;
  }

  // "whatsapp:491701234567@s.whatsapp.net" → "+491701234567"; "telegram:777" → "user id 777"; the app's own → "".
  function handleWords(id) {
    const [channel, ...rest] = id.split(":");
    const handle = rest.join(":");
    if (channel === "webchat") return "";
    if (channel === "whatsapp") {
      const phone = handle.match(/^(\d+)@s\.whatsapp\.net$/);
      if (phone) return `+${phone[1]}`;
      return handle.endsWith("@lid") ? t("people.hidden_number") : handle;
    }
    if (channel === "telegram" && /^\d+$/.test(handle)) return t("people.telegram_handle", { id: handle });
    return handle;
  }

  // Where a person writes, in words ("on WhatsApp, +49…"); the stored id stays in the tooltip.
  function whereWords(person) {
    const type = person.id.split(":")[0];
    const channel = word(`people.channel_${type}`, type);
    const handle = person.display_name ? handleWords(person.id) : "";  // without a name the handle is the headline
    return handle ? t("people.on_channel_handle", { channel, handle }) : t("people.on_channel", { channel });
  }

  function whoCell(person) {
    const cell = el("td", { class: "who" },
      el("strong", {}, person.display_name || handleWords(person.id) || person.name),
      el("span", { class: "where", title: person.id }, whereWords(person)));
    const button = el("button", { type: "button", class: "link" }, t("people.rename"));
    button.addEventListener("click", () => {
      editing = true;
      const input = el("input", { type: "text", value: person.display_name || "", id: `name-${person.id}`,
        "aria-label": t("people.rename_label", { who: person.name }), maxlength: "80" });
      const form = el("form", { class: "rename-form" }, input,
        el("button", { type: "submit", class: "primary small" }, t("common.save")),
        el("button", { type: "button", class: "small", onclick: () => { form.replaceWith(button); done(); } },
          t("common.cancel")));
      const hint = el("span", { class: "hint" }, t("people.rename_hint"));
      const done = () => { hint.remove(); editing = false; if (stale) load().catch(() => {}); };
      form.addEventListener("submit", guarded(async (event) => {
        event.preventDefault();
        await api("POST", "/api/people/rename", { user_id: person.id, display_name: input.value });
        toast(t("people.renamed", { name: input.value.trim() }), "good");
        editing = false;
        await load();
      }));
      button.replaceWith(form);
      form.after(hint);
      input.focus();
    });
    cell.append(button);
    return cell;
  }

  function row(person, agents) {
    const roles = person.roles.map((r) => chip(roleLabel(r), () => change("/api/people/revoke",
      { user_id: person.id, role: r.role, agent_group_id: r.agent_group_id },
      t("people.removed", { what: roleLabel(r), who: person.name })), r.role === "owner" ? "good" : ""));
    const members = person.memberships.map((m) => chip(m.agent_name, () => change("/api/people/remove-member",
      { user_id: person.id, agent_group_id: m.agent_group_id },
      t("people.removed", { what: m.agent_name, who: person.name }))));
    return el("tr", { dataset: { person: person.id } },
      whoCell(person),
      el("td", {}, el("div", { class: "chips" }, roles.length ? roles : el("span", { class: "muted" }, t("people.no_role")))),
      el("td", {}, el("div", { class: "chips" }, members.length ? members : el("span", { class: "muted" }, t("people.no_role")))),
      el("td", {}, giveForm(person, agents)));
  }

  function renderPeople(data) {
    if (!data.people.length) {
      list.replaceChildren(el("p", { class: "empty" }, t("people.empty")));
    } else {
      list.replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "people-table" },
        el("thead", {}, el("tr", {}, ["col_person", "col_roles", "col_agents", "col_add"].map((k) => el("th", { scope: "col" }, t(`people.${k}`))))),
        el("tbody", {}, data.people.map((p) => row(p, data.agents))))));
    }
    const current = addAgent.value;
    addAgent.replaceChildren(...data.agents.map((a) => el("option", { value: a.id, selected: a.id === current }, a.name)));
    addForm.querySelector("button[type=submit]").disabled = !data.agents.length;
    renderMemoryAgents(data.agents);
  }

  function renderWaiting(queue) {
    waiting.hidden = !queue.items.length;
    waitingList.replaceChildren(...queue.items.map((item) => {
      const names = { who: item.who, agent: item.agent_name, chat: item.chat_name };
      const decide = guarded(async (approve, button) => {
        button.disabled = true;
        try {
          await api("POST", `/api/approvals/${encodeURIComponent(item.id)}/${approve ? "approve" : "reject"}`, approve ? {} : undefined);
          toast(t(approve ? "people.allowed" : "people.denied", names), "good");
          await load();
        } finally {
          button.disabled = false;
        }
      });
      const allow = el("button", { type: "button", class: "primary" }, t("people.allow"));
      const deny = el("button", { type: "button", class: "danger" }, t("people.deny"));
      allow.addEventListener("click", () => decide(true, allow));
      deny.addEventListener("click", () => decide(false, deny));
      return el("li", { dataset: { approval: item.id } },
        el("div", {}, el("strong", {}, t("people.waiting_item", names)),
          item.message ? el("div", { class: "hint" }, t("people.said", { text: item.message })) : null),
        el("div", { class: "row" }, allow, deny));
    }));
  }

  async function load() {
    const [people, queue] = await Promise.all([api("GET", "/api/people"), api("GET", "/api/approvals?kind=sender")]);
    stale = false;
    renderWaiting(queue);
    renderPeople(people);
  }

  // The add form asks for a phone number or a Telegram id and builds the stored id; a typed "channel:handle" is
  // taken as it is (Advanced).
  const channelPick = addForm.elements.channel;
  const userInput = addForm.elements.user_id;
  function showChannel() {
    const type = channelPick.value;
    document.getElementById("add-user-label").textContent = t(`people.handle_${type}`);
    document.getElementById("add-user-hint").textContent = t(`people.hint_${type}`);
    userInput.placeholder = type === "whatsapp" ? "+49 170 1234567" : "123456789";
  }
  channelPick.addEventListener("change", showChannel);
  showChannel();

  function storedId() {
    const typed = userInput.value.trim();
    if (typed.includes(":")) return typed;
    if (channelPick.value === "whatsapp") {
      const digits = typed.replace(/[\s()./-]/g, "").replace(/^\+/, "").replace(/^00/, "");
      if (!/^\d{6,15}$/.test(digits)) throw new Error(t("people.bad_number"));
      return `whatsapp:${digits}@s.whatsapp.net`;
    }
    if (!/^\d+$/.test(typed)) throw new Error(t("people.bad_telegram"));
    return `telegram:${typed}`;
  }

  addForm.addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    let user;
    try {
      user = storedId();
    } catch (err) {
      toast(err.message, "error");
      userInput.focus();
      return;
    }
    const who = userInput.value.trim();
    const agent = addAgent.selectedOptions[0];
    await api("POST", "/api/people/add-member", { user_id: user, agent_group_id: addAgent.value });
    toast(t("people.added", { who, agent: agent ? agent.textContent : "" }), "good");
    addForm.reset();
    showChannel();
    await load();
  }));

  // What an agent remembers about each person: pick an agent and a person, then read and edit their private memory.
  // The agent writes the same file, so a save names the version it started from and a conflict is said in words.
  const memAgent = document.getElementById("memory-agent");
  const memPerson = document.getElementById("memory-person");
  const memBox = document.getElementById("memory-box");
  const memText = document.getElementById("memory-text");
  const memRefused = document.getElementById("memory-refused");
  const memSaveFailed = document.getElementById("memory-save-failed");
  const mem = { original: "", version: null, max: 0, name: "" };
  const sentence = (text) => (text ? text[0].toUpperCase() + text.slice(1) : text);
  const memDirty = () => !memBox.hidden && memText.value !== mem.original;
  const agentName = () => (memAgent.selectedOptions[0] ? memAgent.selectedOptions[0].textContent : "");
  const memQuery = () => `agent=${encodeURIComponent(memAgent.value)}&user=${encodeURIComponent(memPerson.value)}`;

  function memState() {
    const size = new TextEncoder().encode(memText.value).length;
    const sizeBox = document.getElementById("memory-size");
    sizeBox.textContent = t("people.memory_size", { size: size.toLocaleString(), max: mem.max.toLocaleString() });
    sizeBox.classList.toggle("error", size > mem.max);
    document.getElementById("memory-save").disabled = !memDirty() || size > mem.max;
    document.getElementById("memory-revert").disabled = !memDirty();
  }

  function showMemory(data) {
    Object.assign(mem, { original: data.text, version: data.version, max: data.max_bytes, name: data.name });
    memText.value = data.text;
    document.getElementById("memory-path").textContent = data.path;
    document.getElementById("memory-label").textContent = t("people.memory_label", { agent: agentName(), name: data.name });
    memRefused.hidden = true;
    memSaveFailed.hidden = true;
    memBox.hidden = false;
    memState();
  }

  async function loadPersonMemory() {
    memSaveFailed.hidden = true;
    if (!memPerson.value) { memBox.hidden = true; memRefused.hidden = true; return; }
    try {
      showMemory(await api("GET", `/api/people/memory?${memQuery()}`, undefined, { quiet: true }));
    } catch (err) {
      if (!(err instanceof NC.ApiError)) throw err;
      memBox.hidden = true;  // the sentence says what stands there; the button below removes it
      document.getElementById("memory-error").textContent = sentence(err.message);
      memRefused.hidden = false;
    }
  }

  async function loadMemories() {
    const current = memPerson.value;
    const data = memAgent.value ? await api("GET", `/api/people/memories?agent=${encodeURIComponent(memAgent.value)}`)
      : { people: [] };
    // Nobody's memory is open until the owner picks whose: the page is also where roles are managed, maybe with
    // someone looking over the owner's shoulder.
    memPerson.replaceChildren(el("option", { value: "" }, t("people.memory_choose")),
      ...data.people.map((p) => el("option", { value: p.user_id, selected: p.user_id === current },
        p.bytes ? p.name : t("people.memory_pick_person_empty", { name: p.name }))));
    document.getElementById("memory-none").hidden = data.people.length > 0 || !memAgent.value;
    await loadPersonMemory();
  }

  function renderMemoryAgents(agents) {
    const current = memAgent.value;
    memAgent.replaceChildren(...agents.map((a) => el("option", { value: a.id, selected: a.id === current }, a.name)));
    document.getElementById("person-memory").hidden = !agents.length;
    if (memAgent.value !== current && !memDirty()) loadMemories().catch(() => {});
  }

  const switchTo = (select) => {
    let before = select.value;
    select.addEventListener("focus", () => { before = select.value; });
    return guarded(async () => {
      if (memDirty() && !window.confirm(t("people.memory_discard"))) { select.value = before; return; }
      before = select.value;
      await (select === memAgent ? loadMemories() : loadPersonMemory());
    });
  };
  memAgent.addEventListener("change", switchTo(memAgent));
  memPerson.addEventListener("change", switchTo(memPerson));
  memText.addEventListener("input", () => { memSaveFailed.hidden = true; memState(); });
  document.getElementById("memory-revert").addEventListener("click", () => { memText.value = mem.original; memState(); });
  document.getElementById("memory-reload").addEventListener("click", guarded(loadPersonMemory));
  document.getElementById("memory-save").addEventListener("click", guarded(async () => {
    const button = document.getElementById("memory-save");
    button.disabled = true;
    try {
      const saved = await api("POST", "/api/people/memory", { agent_group_id: memAgent.value, user_id: memPerson.value,
        text: memText.value, base_version: mem.version }, { quiet: true });
      showMemory(saved);
      toast(saved.cut_in_prompt ? t("people.memory_saved_cut", { chars: saved.prompt_chars.toLocaleString() })
        : t("people.memory_saved", { agent: agentName(), name: saved.name }), "good");
      const option = memPerson.selectedOptions[0];
      if (option) option.textContent = saved.bytes ? saved.name : t("people.memory_pick_person_empty", { name: saved.name });
    } catch (err) {
      if (!(err instanceof NC.ApiError)) throw err;
      document.getElementById("memory-save-error").textContent = sentence(err.message);
      memSaveFailed.hidden = false;
      memState();
    }
  }));
  document.getElementById("memory-afresh").addEventListener("click", guarded(async () => {
    const data = await api("POST", "/api/people/memory/start-afresh", { agent_group_id: memAgent.value, user_id: memPerson.value });
    showMemory(data);
    toast(t("people.memory_started_afresh", { name: data.name, agent: agentName() }), "good");
  }));
  memText.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "s") {
      event.preventDefault();
      if (!document.getElementById("memory-save").disabled) document.getElementById("memory-save").click();
    }
  });
  window.addEventListener("beforeunload", (event) => { if (memDirty()) event.preventDefault(); });

  function refresh() {
    if (editing) { stale = true; return; }
    load().catch(() => {});
  }
  for (const kind of ["people.changed", "sender.approval_requested", "sender.allowed", "sender.denied",
                      "approval.expired", "approvals.changed", "agent.created", "agent.deleted"]) {
    on(kind, refresh);
  }
  load().catch(() => {});
})();
