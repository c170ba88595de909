// The setup wizard: one step at a time (model access → containers → phone channels → name → live test), each
// checked by the server before it is kept. Live image-build progress arrives over the event stream (image.build_*,
// setup.image); the channel steps mount the channels page's own page modules and follow their live events.
"use strict";
(() => {
  // The page's steps by key, numbered from 1; at start a step per phone channel listed for the wizard goes in after
  // "engine" (buildChannelSteps), so nothing here names a channel.
  const STEPS = ["model", "engine", "agent", "test"];
  const stepOf = (key) => STEPS.indexOf(key) + 1;
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
    count.textContent = step <= STEPS.length ? NC.t("wizard.step_count", { n: step, total: STEPS.length }) : "";
    const heading = $(`.wz-step[data-step="${step}"] h2`);
    if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
    window.scrollTo({ top: 0 });
    const key = STEPS[step - 1];
    if (key === "engine") checkEngine();
    if (channelViews.has(key)) prepareChannel(key);
    if (key === "agent") prepareAgent();
    if (key === "test") prepareTest();
    if (step === STEPS.length + 1) showStartup().catch(() => {});
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
      show(stepOf("engine"));
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
      recheck = setTimeout(() => { if (current === stepOf("engine")) checkEngine(true); }, RECHECK_MS);
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
    if (current !== stepOf("engine")) return;
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

  // ------------------------------------------------------------------------------------------ the channel steps

  // One step per phone channel the server lists for the wizard (in_wizard), in its order, each drawn by the channel's
  // own page module (see channels/widgets.js): the module says when its step is done (stepDone) and may ask to move
  // on by itself (the advance option).
  const channelViews = new Map();  // name → the view listed at start (its title and page_module)
  const loading = {};  // name → the promise of its mounted part, made on the step's first visit
  const parts = {};  // name → { module, widget } once mounted

  // The steps from the template, after the containers; then every step and progress dot numbered in order.
  function buildChannelSteps(views) {
    const agent = $('.wz-step[data-key="agent"]');
    for (const view of views) {
      const name = view.name;
      channelViews.set(name, view);
      const section = $("#wz-channel-step").content.firstElementChild.cloneNode(true);
      section.dataset.key = name;
      section.setAttribute("aria-labelledby", `${name}-title`);
      Object.assign($("h2", section), { id: `${name}-title`, textContent: NC.t(`${name}.wizard_title`) });
      $("p.muted", section).textContent = NC.t(`${name}.wizard_lead`);
      $(".wz-channel", section).id = `wz-${name}`;
      $(".wz-error", section).id = `${name}-error`;
      $(".wz-skip", section).id = `${name}-skip`;
      $(".wz-next", section).id = `${name}-next`;
      agent.before(section);
    }
    STEPS.splice(stepOf("engine"), 0, ...channelViews.keys());
    $$(".wz-step").forEach((section, index) => { section.dataset.step = String(index + 1); });
    $(".wz-progress").replaceChildren(...STEPS.map((key, index) => {
      const item = $("#wz-progress-item").content.firstElementChild.cloneNode(true);
      item.dataset.step = String(index + 1);
      $(".wz-dot", item).textContent = String(index + 1);
      $(".wz-label", item).textContent = NC.t(channelViews.has(key) ? `${key}.wizard_step` : `wizard.step_${key}`);
      return item;
    }));
  }

  // The first step not passed yet (or the first of all on a re-run). The server counts its own list of steps; the
  // page's channel steps come from the channel list, so the page finds its place by the steps' names.
  function firstOpen() {
    if (state.completed) return 1;
    const open = STEPS.findIndex((key) => !state.steps[key]);
    return open < 0 ? 1 : open + 1;
  }

  function works(name) {
    const part = parts[name];
    const view = part && part.widget.view;
    if (!view) return false;
    return part.module.stepDone ? part.module.stepDone(view) : Boolean(view.set_up && view.running);
  }

  function renderChannelStep(name) {
    const working = works(name);
    $(`#${name}-next`).disabled = !(working || state.steps[name]);
    $(`#${name}-skip`).hidden = working;
  }

  async function mountChannel(name) {
    try {
      const module = await import(channelViews.get(name).page_module);
      const widget = module.mount($(`#wz-${name}`), {
        title: false, onChange: () => renderChannelStep(name), advance: (message) => advance(name, message),
      });
      parts[name] = { module, widget };
      return parts[name];
    } catch (err) {
      console.error(`the ${name} step did not load:`, err);  // for whoever reads the console (and the tests)
      const reload = NC.el("button", { type: "button", class: "primary", onclick: () => window.location.reload() },
        NC.t("channels.reload"));
      $(`#wz-${name}`).replaceChildren(NC.el("div", { class: "notice bad", role: "alert" },
        NC.el("p", {}, NC.t("channels.module_failed")), reload));
      return null;
    }
  }

  async function prepareChannel(name) {
    $(`#${name}-error`).hidden = true;
    const first = !loading[name];
    if (first) loading[name] = mountChannel(name);
    const part = await loading[name];
    if (!part) return;
    if (first) {
      try {
        part.widget.update(await NC.api("GET", `/api/channels/${name}`, undefined, { quiet: true }));
      } catch (err) {
        channelError(name, err.message);
      }
    } else {
      part.widget.refresh();
    }
    renderChannelStep(name);
  }

  // The channel's module asks to move on (say, its phone is linked): only while its step is the one shown.
  // Both "linked" and "paired" can ask within a moment, and a person who went back to the step chose to be there:
  // a step moves on by itself once per visit of the page, and one leave per step is in flight at a time.
  const leaving = new Set();
  const advanced = new Set();

  function advance(name, message) {
    if (current !== stepOf(name) || leaving.has(name) || advanced.has(name)) return;
    advanced.add(name);
    if (message) NC.toast(message, "good");
    leaveChannel(name, "done");
  }

  function channelError(name, message) {
    const box = $(`#${name}-error`);
    box.textContent = message;
    box.hidden = false;
  }

  async function leaveChannel(name, outcome) {
    const here = stepOf(name);
    if (outcome === "done" && !works(name) && state.steps[name]) { show(here + 1); return; }
    if (leaving.has(name)) return;
    leaving.add(name);
    try {
      await NC.api("POST", "/api/setup/channel", { channel: name, outcome }, { quiet: true });
      markDone(name, outcome === "skipped");
      if (current === here) show(here + 1);
    } catch (err) {
      channelError(name, err.message);
    } finally {
      leaving.delete(name);
    }
  }

  // ------------------------------------------------------------------------------------------ the agent

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
      show(stepOf("test"));
    } catch (err) {
      showError(form, err);
    }
  }

  // ------------------------------------------------------------------------------------------ live test

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
    show(STEPS.length + 1);
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
    $("#model-keep").addEventListener("click", () => show(stepOf("engine")));
    $("#engine-check").addEventListener("click", () => checkEngine());
    $("#engine-fix").addEventListener("click", runFix);
    NC.on("engine.task", onEngineTask);
    $("#engine-build").addEventListener("click", startBuild);
    $("#build-ca").addEventListener("submit", useCaFile);
    clearOnInput($("#build-ca"));
    $("#engine-next").addEventListener("click", () => show(stepOf("engine") + 1));
    $("#agent-form").addEventListener("submit", submitAgent);
    $("#test-send").addEventListener("click", sendTest);
    $("#startup-toggle").addEventListener("change", changeStartup);

    const [listed, setupState] = await Promise.all([NC.api("GET", "/api/channels"), NC.api("GET", "/api/setup/state")]);
    buildChannelSteps(listed.channels.filter((view) => view.in_wizard));
    for (const name of channelViews.keys()) {
      $(`#${name}-skip`).addEventListener("click", () => leaveChannel(name, "skipped"));
      $(`#${name}-next`).addEventListener("click", () => leaveChannel(name, "done"));
    }
    for (const back of $$(".wz-back")) back.addEventListener("click", () => show(Math.max(current - 1, 1)));
    state = setupState;
    if (state.completed) {
      $("#wz-heading").textContent = NC.t("wizard.heading_again");
      $("#wz-intro").textContent = NC.t("wizard.intro_again");
      $("#wz-leave").hidden = false;
    }
    fillModel();
    show(firstOpen());
  });
})();
