// The setup wizard: one step at a time (model access → containers → WhatsApp → Telegram → name → live test), each
// checked by the server before it is kept. Live image-build progress arrives over the event stream (image.build_*,
// setup.image); the channel steps reuse the channels page's widgets (pairing.js) and follow their live events.
"use strict";
(() => {
  const STEPS = ["model", "engine", "whatsapp", "telegram", "agent", "test"];
  const LAST = STEPS.length;
  const DEFAULT_MODEL = "claude-sonnet-4-6";
  const MAX_LOG_LINES = 400;
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

  let state = null;
  let current = 1;
  let kind = "anthropic";
  const models = { anthropic: DEFAULT_MODEL, openai_compatible: "" };

  // ------------------------------------------------------------------------------------------ navigation

  function show(step) {
    current = step;
    for (const section of $$(".wz-step")) section.hidden = Number(section.dataset.step) !== step;
    renderProgress();
    const count = $("#wz-count");
    count.textContent = step <= LAST ? NC.t("wizard.step_count", { n: step }) : "";
    const heading = $(`.wz-step[data-step="${step}"] h2`);
    if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
    window.scrollTo({ top: 0 });
    if (step === 2) checkEngine();
    if (step === 3) prepareChannel("whatsapp");
    if (step === 4) prepareChannel("telegram");
    if (step === 5) prepareAgent();
    if (step === 6) prepareTest();
    if (step === LAST + 1) showStartup().catch(() => {});
  }

  function renderProgress() {
    for (const item of $$(".wz-progress li")) {
      const n = Number(item.dataset.step);
      const done = Boolean(state && state.steps[STEPS[n - 1]]);
      // A skipped channel step is passed, but nothing was set up: a dash and the word, never a tick.
      const skipped = done && Boolean(state.skipped && state.skipped.includes(STEPS[n - 1]));
      item.classList.toggle("done", done && !skipped);
      item.classList.toggle("skipped", skipped);
      item.classList.toggle("current", n === current);
      if (n === current) item.setAttribute("aria-current", "step"); else item.removeAttribute("aria-current");
      const dot = $(".wz-dot", item);
      dot.textContent = n === current || !done ? String(n) : skipped ? "–" : "✓";
      const word = skipped ? NC.t("wizard.skipped_mark") : done ? NC.t("wizard.done_mark") : "";
      dot.title = word;
      const mark = $(".wz-state", item);
      if (mark) {
        mark.textContent = word;
        mark.classList.toggle("visually-hidden", !skipped);  // "done" is read out; "Skipped" is also shown
      }
    }
  }

  function markDone(name, skipped = false) {
    state.steps[name] = true;
    state.skipped = (state.skipped || []).filter((step) => step !== name);
    if (skipped) state.skipped.push(name);
    renderProgress();
  }

  // ------------------------------------------------------------------------------------------ errors and buttons

  function clearErrors(root) {
    for (const box of $$("[data-error-for]", root)) { box.hidden = true; box.textContent = ""; }
    for (const input of $$("[aria-invalid]", root)) input.removeAttribute("aria-invalid");
  }

  // Show a server refusal next to its field (the API names it), else in the step's general error box.
  function showError(root, err) {
    const field = (err.body && err.body.field) || "";
    let box = field ? $(`[data-error-for="${field}"]`, root) : null;
    if (!box) box = $('[data-error-for=""]', root);
    box.textContent = err.message;
    box.hidden = false;
    const input = field ? $(`[name="${field}"]`, root) : null;
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  }

  // Typing in a field clears its refusal: the message was about the old value.
  function clearOnInput(form) {
    form.addEventListener("input", (event) => {
      const name = event.target.name;
      if (!name || name === "kind") return;
      const box = $(`[data-error-for="${name}"]`, form);
      if (box) { box.hidden = true; box.textContent = ""; }
      event.target.removeAttribute("aria-invalid");
    });
  }

  async function busy(button, label, work) {
    const text = button.textContent;
    button.disabled = true;
    button.textContent = label;
    button.classList.add("busy");
    try { return await work(); } finally {
      button.disabled = false;
      button.textContent = text;
      button.classList.remove("busy");
    }
  }

  function notice(kindClass, title, ...lines) {
    return NC.el("div", { class: `notice ${kindClass}` }, NC.el("p", {}, NC.el("strong", {}, title)),
      ...lines.filter(Boolean).map((line) => NC.el("p", {}, line)));
  }

  // ------------------------------------------------------------------------------------------ step 1: model access

  function applyKind(next) {
    const modelInput = $("#model");
    models[kind] = modelInput.value.trim();
    kind = next;
    modelInput.value = models[kind] || "";
    const anthropic = kind === "anthropic";
    for (const node of $$("[data-kind]")) node.hidden = node.dataset.kind !== kind;
    for (const id of ["#api-key-label", "#api-key-hint", "#model-hint"]) {
      const node = $(id);
      node.textContent = anthropic ? node.dataset.anthropic : node.dataset.openai;
    }
    $("#api-key").placeholder = anthropic ? "sk-ant-…" : "";
    modelInput.placeholder = anthropic ? DEFAULT_MODEL : "llama3.2";
    const saved = anthropic ? state.model.anthropic_key_saved : state.model.openai_key_saved;
    $("#key-saved").hidden = !saved;
    if (state && state.secrets) fillStore();
    clearErrors($("#model-form"));
    $("#model-ok").hidden = true;
  }

  function fillModel() {
    const m = state.model;
    models[m.kind] = m.model;
    $("#base-url").value = m.base_url || "";
    const radio = $(`input[name="kind"][value="${m.kind}"]`);
    if (radio) radio.checked = true;
    kind = m.kind;
    $("#model").value = m.model;
    applyKind(m.kind);
    fillStore();
    $("#model-keep").hidden = !state.steps.model;
  }

  // Without a working OS keyring, the key's encrypted file is made (or unlocked) by the same click that saves it.
  function fillStore() {
    const s = state.secrets;
    // A server that needs no key (Ollama) needs no store either, until a key is typed.
    const keyed = kind === "anthropic" || $("#api-key").value.trim() !== "";
    $("#store-new").hidden = s.usable || !s.needs_passphrase || !keyed;
    $("#store-locked").hidden = s.usable || !s.locked || !keyed;
    const passphrase = $('input[name="store"]:checked').value === "passphrase";
    $("#store-passphrase-field").hidden = !passphrase;
  }

  async function prepareStore(form) {
    const s = state.secrets;
    if (s.usable) return;
    let status;
    if (s.needs_passphrase) {
      if ($('input[name="store"]:checked').value === "automatic") {
        status = await NC.api("POST", "/api/secrets/automatic", undefined, { quiet: true });
      } else {
        const passphrase = $("#store-passphrase").value;
        if (passphrase.length < 10) throw fieldError("passphrase", NC.t("wizard.store_passphrase_needed"));
        status = await NC.api("POST", "/api/secrets/passphrase", { passphrase }, { quiet: true });
      }
    } else if (s.locked) {
      const passphrase = $("#unlock-passphrase").value;
      if (!passphrase) throw fieldError("unlock_passphrase", NC.t("wizard.store_unlock_needed"));
      try {
        status = await NC.api("POST", "/api/secrets/unlock",
          { passphrase, automatic: $("#unlock-automatic").checked }, { quiet: true });
      } catch (err) {
        throw fieldError("unlock_passphrase", err.message);
      }
    } else {
      return;  // neither: the server's refusal of the key says what is wrong
    }
    $("#store-passphrase").value = "";
    $("#unlock-passphrase").value = "";
    Object.assign(state.secrets, { usable: status.kind !== "none", locked: status.locked,
      needs_passphrase: status.needs_passphrase_setup, reason: status.reason });
    fillStore();
    clearErrors(form);
  }

  function fieldError(field, message) {
    const err = new Error(message);
    err.body = { field };
    return err;
  }

  async function submitModel(event) {
    event.preventDefault();
    const form = $("#model-form");
    clearErrors(form);
    $("#model-ok").hidden = true;
    const body = {
      kind,
      api_key: $("#api-key").value,
      base_url: kind === "anthropic" ? "" : $("#base-url").value,
      model: $("#model").value,
    };
    try {
      const result = await busy($("#model-submit"), NC.t("wizard.checking_model"), async () => {
        if (kind === "anthropic" || body.api_key.trim()) await prepareStore(form);
        return NC.api("POST", "/api/setup/model", body, { quiet: true });
      });
      $("#api-key").value = "";
      if (result.kind === "anthropic") state.model.anthropic_key_saved = state.model.anthropic_key_saved || Boolean(body.api_key.trim());
      else state.model.openai_key_saved = Boolean(body.api_key.trim()) || state.model.openai_key_saved;
      Object.assign(state.model, { kind: result.kind, model: result.model, base_url: result.base_url || state.model.base_url });
      $("#model").value = result.model;
      $("#base-url").value = result.base_url || $("#base-url").value;
      const ok = $("#model-ok");
      ok.textContent = `✓ ${result.message}`;
      ok.hidden = false;
      $("#model-keep").hidden = false;
      markDone("model");
      show(2);
    } catch (err) {
      showError(form, err);
    }
  }

  // ------------------------------------------------------------------------------------------ step 2: engine

  let engineReport = null;
  let recheck = null;
  const RECHECK_MS = 1500;

  // Server sentences come without a capital or a full stop (they are also used mid-sentence in logs).
  function sentence(text) {
    if (!text) return "";
    const trimmed = String(text).trim();
    const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
    return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
  }

  function fixLine(fix) {
    return fix ? NC.el("span", {}, NC.el("strong", {}, NC.t("wizard.fix")), " ", sentence(fix)) : null;
  }

  // quiet: a re-check while the machine starts or after a fix ended keeps what is shown until the answer comes.
  async function checkEngine(quiet = false) {
    clearTimeout(recheck);
    const box = $("#engine-status");
    if (quiet !== true) {
      box.replaceChildren(NC.el("p", { class: "muted wz-wait" }, NC.t("wizard.engine_checking")));
      $("#engine-check").hidden = true;
      $("#engine-fix").hidden = true;
    }
    $("#engine-build").hidden = true;
    try {
      engineReport = await NC.api("POST", "/api/setup/engine", undefined, { quiet: true });
    } catch (err) {
      box.replaceChildren(notice("bad", NC.t("wizard.engine_problem"), err.message));
      $("#engine-check").hidden = false;
      return;
    }
    renderEngine();
  }

  function renderEngine() {
    const report = engineReport;
    const box = $("#engine-status");
    const building = state.build.status === "running";
    $("#engine-check").hidden = report.ok;
    if (!report.ok) {
      renderEngineProblem(report);
      return;
    }
    $("#engine-fix").hidden = true;
    $("#engine-checks").hidden = true;
    $("#engine-task").hidden = true;
    if (report.development) {
      box.replaceChildren(notice("good", `✓ ${NC.t("wizard.engine_dev")}`, report.detail));
      markDone("engine");
      $("#engine-next").disabled = false;
      return;
    }
    const imageLine = report.image_ready ? `✓ ${NC.t("wizard.image_ready")}` : NC.t("wizard.image_missing");
    const baseLine = !report.image_ready && !report.base_present
      ? NC.t("wizard.base_missing", { image: report.base_image }) : null;
    box.replaceChildren(notice("good", `✓ ${NC.t("wizard.engine_ok")}`, report.detail, imageLine, baseLine));
    if (report.image_ready) markDone("engine");
    $("#engine-build").hidden = report.image_ready || building;
    $("#engine-next").disabled = !state.steps.engine;
    if (state.build.status !== "idle") renderBuild(state.build);
  }

  // Not ready: the machine starting (progress, checked again shortly), a fix under way (progress), or the problem
  // in plain words with the button that fixes it.
  function renderEngineProblem(report) {
    const box = $("#engine-status");
    const task = report.task;
    const working = task && task.status === "running";
    renderChecks(report.findings || []);
    $("#engine-build").hidden = true;
    $("#engine-next").disabled = true;
    if (report.starting) {
      box.replaceChildren();
      renderTask({ phase: `machine_${report.starting.phase}`, fraction: report.starting.fraction,
                   line: report.starting.line });
      recheck = setTimeout(() => { if (current === 2) checkEngine(true); }, RECHECK_MS);
    } else if (working) {
      box.replaceChildren();
      renderTask(task);
    } else {
      $("#engine-task").hidden = true;
      const notes = [];
      if (task && task.status === "failed") {
        notes.push(notice("bad", NC.t("wizard.task_failed"), sentence(task.problem), fixLine(task.fix)));
      } else if (task && task.status === "cancelled") {
        notes.push(notice("info", NC.t("wizard.task_cancelled"), NC.t("wizard.task_cancelled_text")));
      } else if (task && task.status === "restart" && task.action === "install_podman") {
        notes.push(notice("info", NC.t("wizard.task_restart"), NC.t("wizard.task_restart_text")));
      }
      notes.push(notice("bad", NC.t("wizard.engine_problem"), sentence(report.problem), fixLine(report.fix)));
      box.replaceChildren(...notes);
    }
    const busyNow = Boolean(report.starting) || working;
    $("#engine-check").hidden = busyNow;
    const fix = $("#engine-fix");
    fix.hidden = busyNow || !report.action || report.action === "wait";
    if (!fix.hidden) {
      fix.dataset.action = report.action;
      fix.textContent = NC.t(`wizard.fix_${report.action}`);
    }
  }

  function renderChecks(findings) {
    $("#engine-checks").hidden = findings.length === 0;
    $("#engine-check-list").replaceChildren(...findings.map((f) => {
      const kind = f.ok ? "ok" : f.blocking ? "bad" : "warn";
      const mark = { ok: "✓", bad: "✗", warn: "!" }[kind];
      return NC.el("li", { class: kind }, NC.el("span", { class: "wz-mark", "aria-hidden": "true" }, mark),
        NC.el("span", {}, f.title, kind === "warn" ? NC.el("span", { class: "hint" }, ` — ${sentence(f.problem)}`) : null,
          NC.el("span", { class: "visually-hidden" }, kind === "ok" ? ` (${NC.t("wizard.done_mark")})` : "")));
    }));
  }

  function renderTask(task) {
    $("#engine-task").hidden = false;
    const title = NC.t(`wizard.phase_${task.phase}`);
    $("#engine-task-title").textContent = title.startsWith("wizard.") ? NC.t("wizard.engine_checking") : title;
    const bar = $("#engine-task-bar");
    const known = task.fraction !== null && task.fraction !== undefined;
    if (known) { bar.max = 1; bar.value = task.fraction; } else { bar.removeAttribute("value"); }
    const mb = (bytes) => (bytes / 1e6).toFixed(1);
    let amount = known ? `${Math.round(task.fraction * 100)} %` : "";
    if (task.phase === "download" && task.total_bytes) {
      amount = NC.t("wizard.amount", { done: mb(task.done_bytes), total: mb(task.total_bytes) });
    }
    $("#engine-task-amount").textContent = amount;
    const phase = task.phase || "";
    const note = phase === "installer" ? "wizard.phase_installer_note" : phase === "wsl" ? "wizard.phase_wsl_note"
      : phase.startsWith("machine_") ? "wizard.machine_note" : "";
    const noteText = note ? NC.t(note) : "";
    const lineText = phase === "download" || phase === "installer" ? "" : task.line || "";
    $("#engine-task-note").textContent = noteText;
    $("#engine-task-note").hidden = !noteText;
    $("#engine-task-line").textContent = lineText;
    $("#engine-task-line").hidden = !lineText;
  }

  async function runFix() {
    const button = $("#engine-fix");
    const action = button.dataset.action;
    if (action === "restart_windows" && !window.confirm(NC.t("wizard.restart_confirm"))) return;
    let task;
    try {
      task = await busy(button, button.textContent,
        () => NC.api("POST", "/api/setup/engine/action", { action }, { quiet: true }));
    } catch (err) {
      $("#engine-status").prepend(notice("bad", NC.t("wizard.task_failed"), sentence(err.message)));
      return;
    }
    if (task.status === "running") {
      button.hidden = true;
      $("#engine-check").hidden = true;
      $("#engine-status").replaceChildren();
      renderTask(task);
    } else if (action === "restart_windows") {
      NC.toast(NC.t("wizard.restart_started"), "good", 30000);
    } else if (action.startsWith("open_")) {
      NC.toast(NC.t("wizard.settings_opened"), "good");
    }
  }

  // A fix's progress; when it ends, the engine is checked again (which shows what is next).
  function onEngineTask(task) {
    if (current !== 2) return;
    if (task.status === "running") {
      $("#engine-fix").hidden = true;
      $("#engine-check").hidden = true;
      $("#engine-status").replaceChildren();
      renderTask(task);
    } else {
      checkEngine(true);
    }
  }

  async function startBuild() {
    $("#engine-build").hidden = true;
    $("#build-log").textContent = "";
    state.build = { status: "running", step: 0, steps: 0, lines: [] };
    renderBuild(state.build);
    try {
      const build = await NC.api("POST", "/api/setup/image", undefined, { quiet: true });
      // The outcome event may have come first (an image that already existed): it wins over this snapshot.
      if (state.build.status === "running") { state.build = { ...build, ...pick(state.build) }; renderBuild(state.build); }
    } catch (err) {
      state.build = { status: "idle" };
      $("#build").hidden = true;
      $("#engine-build").hidden = false;
      $("#engine-status").append(notice("bad", NC.t("wizard.build_failed"), err.message));
    }
  }

  function renderBuild(build) {
    const panel = $("#build");
    panel.hidden = false;
    const running = build.status === "running";
    panel.classList.toggle("running", running);
    $("#build-failure").hidden = build.status !== "failed";
    const bar = $("#build-bar");
    if (build.status === "done") { bar.max = 1; bar.value = 1; } else if (build.steps) {
      bar.max = build.steps; bar.value = Math.max(build.step - 1, 0);
    } else if (running) { bar.removeAttribute("value"); }
    $("#build-step").textContent = build.steps && running ? NC.t("wizard.build_step", { step: build.step, steps: build.steps }) : "";
    if (running) $("#build-title").textContent = NC.t("wizard.build_running");
    if (build.status === "done") {
      $("#build-title").textContent = build.built
        ? `✓ ${NC.t("wizard.build_done", { seconds: build.seconds })}` : `✓ ${NC.t("wizard.build_reused")}`;
      $("#build-line").textContent = "";
    }
    if (build.status === "failed") {
      $("#build-title").textContent = NC.t("wizard.build_failed");
      $("#build-line").textContent = "";
      // One plain line on top; the engine's own words stay with the log, behind the toggle.
      $("#build-headline").textContent = build.headline || NC.t("wizard.build_failed");
      $("#build-error").textContent = build.error || "";
      $("#build-error").hidden = !build.error;
      $("#build-fix").textContent = build.fix;
      renderBuildFixes(build);
      $("#engine-build").textContent = NC.t("wizard.build_again");
      $("#engine-build").hidden = false;
    }
    if (build.lines && build.lines.length && !$("#build-log").textContent) {
      $("#build-log").textContent = build.lines.join("\n") + "\n";
    }
  }

  // The fixes done here, on this step: a base image already on this computer, or the network's certificate file.
  function renderBuildFixes(build) {
    const bases = build.cause === "pull" ? build.local_bases || [] : [];
    $("#build-offer").hidden = bases.length === 0;
    $("#build-offer-list").replaceChildren(...bases.map((image) => {
      const button = NC.el("button", { type: "button", class: "primary" }, NC.t("wizard.base_use", { image }));
      button.addEventListener("click", () => useBaseImage(button, image));
      return button;
    }));
    const form = $("#build-ca");
    form.hidden = build.cause !== "tls" && build.cause !== "ca_file";
    if (!form.hidden && !$("#ca-file").value) $("#ca-file").value = build.ca_file || "";
    $("#ca-file-hint").textContent = NC.t("wizard.ca_file_hint");
  }

  // Both save a setting the running app uses at once (no restart), then build again.
  async function useBaseImage(button, image) {
    try {
      await busy(button, NC.t("wizard.base_switching"),
        () => NC.api("PUT", "/api/settings", { agent_base_image: image }, { quiet: true }));
    } catch (err) {
      $("#build-fix").textContent = sentence(err.message);
      return;
    }
    await checkEngine(true);
    startBuild();
  }

  async function useCaFile(event) {
    event.preventDefault();
    const form = $("#build-ca");
    clearErrors(form);
    const path = $("#ca-file").value.trim();
    try {
      await busy($("#ca-submit"), NC.t("wizard.ca_checking"),
        () => NC.api("PUT", "/api/settings", { agent_ca_certificates: path }, { quiet: true }));
    } catch (err) {
      showError(form, { message: sentence(err.message), body: { field: "agent_ca_certificates" } });
      return;
    }
    await checkEngine(true);
    startBuild();
  }

  // What the events already told us about a running build (newer than an API snapshot).
  function pick(build) {
    return build.steps ? { step: build.step, steps: build.steps } : {};
  }

  function appendLog(line) {
    const log = $("#build-log");
    const lines = (log.textContent + line + "\n").split("\n");
    if (lines.length > MAX_LOG_LINES) log.textContent = lines.slice(-MAX_LOG_LINES).join("\n");
    else log.textContent += line + "\n";
    if ($("#build-details").open) log.scrollTop = log.scrollHeight;
  }

  function onBuildStarted() {
    state.build = { ...state.build, status: "running", step: 0, steps: 0, lines: [] };
    $("#build-log").textContent = "";
    $("#engine-build").hidden = true;
    renderBuild(state.build);
  }

  function onBuildProgress(data) {
    if (state.build.status !== "running") onBuildStarted();
    if (data.steps) Object.assign(state.build, { step: data.step, steps: data.steps });
    $("#build-line").textContent = data.line || "";
    appendLog(data.line || "");
    renderBuild(state.build);
  }

  function onBuildOutcome(data) {
    const lines = state.build.lines || [];
    state.build = { ...state.build, ...data, lines };
    if (data.status === "failed" && data.log_tail && !$("#build-log").textContent) {
      $("#build-log").textContent = data.log_tail.join("\n") + "\n";
    }
    renderBuild(state.build);
    if (data.status === "done") {
      markDone("engine");
      $("#engine-next").disabled = false;
      if (engineReport) { engineReport.image_ready = true; renderEngine(); }
    }
  }

  // ------------------------------------------------------------------------------------------ steps 3-4: channels

  const CHANNEL_STEP = { whatsapp: 3, telegram: 4 };
  const widgets = {};

  // WhatsApp counts as working once linked; Telegram once its token is saved and it runs.
  function works(view) {
    if (!view) return false;
    return view.name === "whatsapp" ? view.status.state === "connected" : Boolean(view.set_up && view.running);
  }

  function renderChannelStep(name) {
    const widget = widgets[name];
    const working = works(widget && widget.view);
    $(`#${name}-next`).disabled = !(working || state.steps[name]);
    $(`#${name}-skip`).hidden = working;
  }

  async function prepareChannel(name) {
    $(`#${name}-error`).hidden = true;
    if (!widgets[name]) {
      const root = $(`#wz-${name}`);
      const common = { title: false, onChange: () => renderChannelStep(name) };
      widgets[name] = name === "whatsapp"
        ? NCPairing.whatsapp(root, { ...common, onConnected: whatsappLinked })
        : NCPairing.telegram(root, common);
      try {
        widgets[name].update(await NC.api("GET", `/api/channels/${name}`, undefined, { quiet: true }));
      } catch (err) {
        channelError(name, err.message);
      }
      if (name === "whatsapp") {
        NC.on("channel.paired", (data) => {
          if (data.channel_type === "whatsapp" && current === CHANNEL_STEP.whatsapp) leaveChannel("whatsapp", "done");
        });
      }
    } else {
      widgets[name].refresh();
    }
    renderChannelStep(name);
  }

  // Linked while the step is open: with the person's own number that is all, so the wizard moves on by itself; a
  // separate number still needs the owner's phone paired (the code in the widget), after which it moves on too.
  function whatsappLinked(view) {
    if (current !== CHANNEL_STEP.whatsapp) return;
    if (view.mode !== "self") return;  // the widget now asks for the owner's code; pairing moves on
    NC.toast(NC.t("wizard.whatsapp_linked"), "good");
    leaveChannel("whatsapp", "done");
  }

  function channelError(name, message) {
    const box = $(`#${name}-error`);
    box.textContent = message;
    box.hidden = false;
  }

  async function leaveChannel(name, outcome) {
    const widget = widgets[name];
    const next = CHANNEL_STEP[name] + 1;
    if (outcome === "done" && !works(widget && widget.view) && state.steps[name]) { show(next); return; }
    try {
      await NC.api("POST", "/api/setup/channel", { channel: name, outcome }, { quiet: true });
      markDone(name, outcome === "skipped");
      show(next);
    } catch (err) {
      channelError(name, err.message);
    }
  }

  // ------------------------------------------------------------------------------------------ step 5: agent

  function prepareAgent() {
    const input = $("#agent-name");
    if (!input.value && state.agent) input.value = state.agent.name;
    $("#agent-model").textContent = NC.t("wizard.agent_model", { model: state.model.model });
  }

  async function submitAgent(event) {
    event.preventDefault();
    const form = $("#agent-form");
    clearErrors(form);
    try {
      const agent = await busy($("#agent-submit"), NC.t("wizard.saving"),
        () => NC.api("POST", "/api/setup/agent", { name: $("#agent-name").value }, { quiet: true }));
      state.agent = agent;
      $("#agent-name").value = agent.name;
      markDone("agent");
      show(6);
    } catch (err) {
      showError(form, err);
    }
  }

  // ------------------------------------------------------------------------------------------ step 6: live test

  function bubble(who, text, extra = "") {
    return NC.el("div", { class: `wz-bubble ${who} ${extra}` },
      NC.el("span", { class: "wz-who" }, who === "you" ? NC.t("wizard.test_you") : state.agent.name),
      NC.el("span", { class: "wz-text" }, text));
  }

  function prepareTest() {
    const name = state.agent ? state.agent.name : "";
    $("#test-lead").textContent = NC.t("wizard.test_lead", { name });
  }

  async function sendTest() {
    const chat = $("#test-chat");
    const button = $("#test-send");
    $("#test-failure").hidden = true;
    const waiting = bubble("agent", NC.t("wizard.test_waiting", { name: state.agent.name }), "waiting");
    chat.replaceChildren(bubble("you", state.test_text), waiting);
    try {
      const result = await busy(button, NC.t("wizard.test_send"),
        () => NC.api("POST", "/api/setup/test", undefined, { quiet: true }));
      waiting.replaceWith(bubble("agent", result.reply));
      markDone("test");
      finish(result);
    } catch (err) {
      waiting.remove();
      $("#test-error").textContent = err.message;
      $("#test-failure").hidden = false;
      button.textContent = NC.t("wizard.test_again");
    }
  }

  function finish(result) {
    $("#done-text").textContent = NC.t("wizard.done_text", { name: result.agent_name, seconds: result.seconds });
    $("#done-chat").replaceChildren(...$$("#test-chat .wz-bubble").map((node) => node.cloneNode(true)));
    $("#wz-leave").hidden = false;
    show(LAST + 1);
    $("#go-chat").focus();
  }

  // "Start NanoClaw when I log in": the switch shows the OS's real entry and changes it at once.
  async function showStartup() {
    const state = await NC.api("GET", "/api/autostart", undefined, { quiet: true });
    $("#startup-toggle").checked = state.enabled;
    $("#startup-box").hidden = !state.supported;
  }

  async function changeStartup(event) {
    const box = event.currentTarget;
    const wanted = box.checked;
    box.disabled = true;
    try {
      const state = await NC.api("PUT", "/api/autostart", { enabled: wanted });
      box.checked = state.enabled;
      NC.toast(NC.t(state.enabled ? "wizard.startup_saved_on" : "wizard.startup_saved_off"), "good");
    } catch (err) {
      box.checked = !wanted;  // api() has shown why
    } finally {
      box.disabled = false;
    }
  }

  // ------------------------------------------------------------------------------------------ start

  document.addEventListener("DOMContentLoaded", async () => {
    NC.on("image.build_started", onBuildStarted);
    NC.on("image.build_progress", onBuildProgress);
    NC.on("setup.image", onBuildOutcome);

    for (const radio of $$('input[name="kind"]')) radio.addEventListener("change", () => applyKind(radio.value));
    for (const radio of $$('input[name="store"]')) radio.addEventListener("change", fillStore);
    $("#api-key").addEventListener("input", fillStore);
    $("#show-key").addEventListener("click", (event) => {
      const input = $("#api-key");
      const showing = input.type === "text";
      input.type = showing ? "password" : "text";
      event.currentTarget.textContent = NC.t(showing ? "wizard.show_key" : "wizard.hide_key");
      event.currentTarget.setAttribute("aria-pressed", String(!showing));
    });
    $("#model-form").addEventListener("submit", submitModel);
    clearOnInput($("#model-form"));
    clearOnInput($("#agent-form"));
    $("#model-keep").addEventListener("click", () => show(2));
    $("#engine-check").addEventListener("click", () => checkEngine());
    $("#engine-fix").addEventListener("click", runFix);
    NC.on("engine.task", onEngineTask);
    $("#engine-build").addEventListener("click", startBuild);
    $("#build-ca").addEventListener("submit", useCaFile);
    clearOnInput($("#build-ca"));
    $("#engine-next").addEventListener("click", () => show(3));
    for (const name of Object.keys(CHANNEL_STEP)) {
      $(`#${name}-skip`).addEventListener("click", () => leaveChannel(name, "skipped"));
      $(`#${name}-next`).addEventListener("click", () => leaveChannel(name, "done"));
    }
    $("#agent-form").addEventListener("submit", submitAgent);
    $("#test-send").addEventListener("click", sendTest);
    $("#startup-toggle").addEventListener("change", changeStartup);
    for (const back of $$(".wz-back")) back.addEventListener("click", () => show(Math.max(current - 1, 1)));

    state = await NC.api("GET", "/api/setup/state");
    if (state.completed) {
      $("#wz-heading").textContent = NC.t("wizard.heading_again");
      $("#wz-intro").textContent = NC.t("wizard.intro_again");
      $("#wz-leave").hidden = false;
    }
    fillModel();
    show(state.current);
  });
})();
