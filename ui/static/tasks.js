// The scheduled-tasks page: a table of every agent's tasks with Pause/Resume and Cancel (confirmed inline).
// The list reloads on task events, so a task an agent schedules while the page is open shows up by itself.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const { t, api, el, on, toast } = NC;
  const list = document.getElementById("tasks-list");
  const problems = document.getElementById("tasks-problems");
  const STATUS_BADGE = { pending: "good", paused: "warn", cancelled: "bad" };

  const url = (task, action) =>
    `/api/tasks/${encodeURIComponent(task.id)}/${action}?session=${encodeURIComponent(task.session_id)}`;

  async function load() {
    const data = await api("GET", "/api/tasks");
    problems.replaceChildren(...data.problems.map((p) => el("p", { class: "error" }, t("tasks.problem", { problem: p }))));
    if (!data.tasks.length) {
      list.replaceChildren(el("p", { class: "empty" }, t("tasks.empty")));
      return;
    }
    const head = el("tr", {}, ["col_agent", "col_task", "col_schedule", "col_next", "col_status", "col_actions"]
      .map((key) => el("th", { scope: "col" }, t(`tasks.${key}`))));
    const body = el("tbody", {}, data.tasks.map(row));
    list.replaceChildren(el("div", { class: "table-wrap" }, el("table", { class: "tasks-table" }, el("thead", {}, head), body)));
  }

  function row(task) {
    const tr = el("tr", { dataset: { taskId: task.id, sessionId: task.session_id }, class: `task-${task.status}` });
    fill(tr, task);
    return tr;
  }

  function fill(tr, task) {
    tr.className = `task-${task.status}`;
    const next = [el("div", {}, task.next_run || "—")];
    if (task.due && task.status === "pending") next.push(el("div", { class: "hint" }, t("tasks.due")));
    if (task.due && task.status === "paused") next.push(el("div", { class: "hint" }, t("tasks.due_paused")));
    tr.replaceChildren(
      el("td", {}, el("div", {}, task.agent_name),
        task.chat ? el("div", { class: "hint" }, t("tasks.to_chat", { chat: task.chat })) : null),
      el("td", { class: "task-prompt" }, el("div", { title: t("tasks.id", { id: task.id }) }, task.prompt),
        task.has_script ? el("div", { class: "hint" }, t("tasks.has_script")) : null),
      el("td", { class: "task-schedule" }, task.recurrence
        ? el("span", { title: t("tasks.cron", { expr: task.recurrence }) }, describeCron(task.recurrence))
        : t("tasks.once")),
      el("td", { class: "task-next" }, next),
      el("td", {}, el("span", { class: `badge ${STATUS_BADGE[task.status] || ""}`, "data-status": task.status },
        t(`tasks.status_${task.status}`))),
      el("td", { class: "task-actions" }, actions(tr, task)),
    );
  }

  // The common cron shapes in words; anything else is shown as the expression itself.
  function describeCron(expr) {
    const [min, hour, dom, month, dow] = expr.split(/\s+/);
    const num = (v) => /^\d+$/.test(v);
    const time = num(min) && num(hour) ? `${hour.padStart(2, "0")}:${min.padStart(2, "0")}` : null;
    if (time && dom === "*" && month === "*") {
      if (dow === "*") return t("tasks.cron_daily", { time });
      if (dow === "1-5") return t("tasks.cron_weekdays", { time });
      if (/^[0-7]$/.test(dow)) return t("tasks.cron_weekly", { day: t(`tasks.day_${dow}`), time });
    }
    if (time && num(dom) && month === "*" && dow === "*") return t("tasks.cron_monthly", { day: dom, time });
    if (num(min) && hour === "*" && dom === "*" && month === "*" && dow === "*") return t("tasks.cron_hourly", { minute: min });
    const every = /^\*\/(\d+)$/.exec(min);
    if (every && hour === "*" && dom === "*" && month === "*" && dow === "*") return t("tasks.cron_minutes", { n: every[1] });
    return t("tasks.cron", { expr });
  }

  function actions(tr, task) {
    if (task.status === "cancelled") return [];
    const toggle = task.status === "paused"
      ? el("button", { type: "button", class: "small primary", onclick: () => change(tr, task, "resume", "tasks.resumed_toast") }, t("tasks.resume"))
      : el("button", { type: "button", class: "small", onclick: () => change(tr, task, "pause", "tasks.paused_toast") }, t("tasks.pause"));
    const cancel = el("button", { type: "button", class: "small danger", onclick: () => confirmCancel(tr, task) }, t("tasks.cancel"));
    return el("div", { class: "row" }, toggle, cancel);
  }

  function confirmCancel(tr, task) {
    const cell = tr.querySelector(".task-actions");
    cell.replaceChildren(el("div", { class: "stack", role: "group" },
      el("span", { class: "hint" }, t("tasks.cancel_confirm")),
      el("div", { class: "row" },
        el("button", { type: "button", class: "small danger", onclick: () => change(tr, task, "cancel", "tasks.cancelled_toast") }, t("tasks.cancel_yes")),
        el("button", { type: "button", class: "small", onclick: () => fill(tr, task) }, t("tasks.cancel_no")))));
  }

  async function change(tr, task, action, doneKey) {
    for (const button of tr.querySelectorAll("button")) button.disabled = true;
    try {
      const updated = await api("POST", url(task, action));
      toast(t(doneKey), "good");
      if (updated.status === "cancelled") await load();  // a cancelled task is no longer scheduled: it leaves the list
      else fill(tr, updated);
    } catch (_) {
      await load();  // the server's message is already shown; show the task as it really is now
    }
  }

  document.getElementById("tasks-refresh").addEventListener("click", load);
  on("task.scheduled", load);
  on("task.changed", load);
  load();
});
