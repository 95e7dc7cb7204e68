// The task list: every campaign of the person with live progress, rate and ETA, and "New task".

import {api, ApiError} from "./api.js";
import {NOT_AVAILABLE} from "./caps.js";
import {h, fill, fmtInt, fmtPercent, fmtDuration, fmtRate, fmtTime, progressBar, setProgress, badge, toast} from "./dom.js";
import {TERMINAL} from "./live.js";

const PAGE_SIZE = 50;
// Terminal tasks change rarely (retries): their figures are refreshed this often (ticks).
const TERMINAL_EVERY = 20;
// Live figures of at most this many tasks per poll; with more active tasks they take turns.
const LIVE_PER_TICK = 12;

/** Rate and ETA as shown in the list and the task view. */
export function liveFigures(ctx, task, live) {
  const progress = live?.progress;
  if (!progress) return {rate: "—", eta: "—", rateTitle: ""};
  const tracker = ctx.rate(task.id);
  const perSecond = tracker.perSecond();
  const hourly = live.rate_per_hour;
  const rateTitle = hourly !== undefined ? `${fmtInt(hourly)} attempts in the last hour` : "";
  let rate = "—";
  if (task.status === "running") {
    rate = perSecond !== null ? fmtRate(perSecond) : hourly !== undefined ? fmtRate(hourly / 3600) : "measuring…";
  }
  let eta = "—";
  if (task.status === "running") {
    if (progress.open === 0) eta = "finishing";
    else if (live.eta_seconds !== undefined && live.eta_seconds !== null) eta = fmtDuration(live.eta_seconds);
    else if (perSecond) eta = `≈ ${fmtDuration(progress.open / perSecond)}`;
    else eta = live.eta_seconds === null ? "waiting for an account" : "estimating…";
  } else if (task.status === "paused") {
    eta = "paused";
  } else if (task.status === "draft") {
    eta = "not started";
  } else if (task.started_at && task.finished_at) {
    eta = `took ${fmtDuration((Date.parse(task.finished_at) - Date.parse(task.started_at)) / 1000)}`;
  }
  return {rate, eta, rateTitle};
}

/** Progress and rate of one task: /status when the service has it (rate, ETA), else /stats. */
export async function fetchLive(ctx, taskId) {
  const path = ctx.caps.status ? `api/v1/tasks/${taskId}/status` : `api/v1/tasks/${taskId}/stats`;
  const live = await api.get(path);
  ctx.rate(taskId).add(live.progress.done);
  return live;
}

export class TaskList {
  constructor(ctx) {
    this.ctx = ctx;
    this.tick = 0;
    this.rows = new Map();  // task id -> {tr, cells}
    this.live = new Map();  // task id -> last status/stats answer
    this.heading = h("h1", {id: "view-title", tabindex: "-1"}, "Your campaigns");
    this.updated = h("p", {class: "muted", id: "tasks-updated"}, "Loading…");
    this.body = h("tbody");
    this.table = h("table", {class: "tasks", "aria-describedby": "tasks-updated"},
      h("caption", {class: "sr-only"}, "Campaigns with their live progress"),
      h("thead", {}, h("tr", {},
        h("th", {scope: "col"}, "Name"), h("th", {scope: "col"}, "Status"),
        h("th", {scope: "col", class: "col-progress"}, "Progress"), h("th", {scope: "col", class: "num"}, "Rate"),
        h("th", {scope: "col", class: "num"}, "ETA"), h("th", {scope: "col"}, "Created"))),
      this.body);
    this.empty = h("p", {class: "empty", hidden: true}, "No campaigns yet. Create one with “New task”.");
    const create = h("button", {type: "button", class: "primary", id: "new-task"}, "New task");
    if (ctx.caps.createTask) create.addEventListener("click", () => openCreateDialog(ctx));
    else disable(create, NOT_AVAILABLE);
    this.element = h("section", {"aria-labelledby": "view-title", class: "view"},
      h("div", {class: "section-head"}, this.heading, create),
      this.updated, h("div", {class: "table-wrap"}, this.table), this.empty);
  }

  async refresh() {
    this.tick++;
    const page = await api.get("api/v1/tasks", {query: {limit: PAGE_SIZE, sort: "-created_at"}});
    const tasks = page.items || [];
    this.ctx.clearError("tasks");
    const ids = new Set(tasks.map((t) => t.id));
    for (const [id, row] of this.rows) if (!ids.has(id)) { row.tr.remove(); this.rows.delete(id); }
    tasks.forEach((task, index) => {
      this.ctx.watcher.observe(task);
      const row = this.rows.get(task.id) ?? this.addRow(task);
      if (this.body.children[index] !== row.tr) this.body.insertBefore(row.tr, this.body.children[index] ?? null);
      row.task = task;
    });
    this.empty.hidden = tasks.length > 0;
    this.table.hidden = tasks.length === 0;
    let wanted = tasks.filter((t) => !TERMINAL.has(t.status) || !this.live.has(t.id)
      || this.tick % TERMINAL_EVERY === 0);
    if (wanted.length > LIVE_PER_TICK) {
      const start = (this.tick * LIVE_PER_TICK) % wanted.length;
      wanted = [...wanted, ...wanted].slice(start, start + LIVE_PER_TICK);
    }
    await Promise.all(wanted.map(async (task) => {
      try {
        this.live.set(task.id, await fetchLive(this.ctx, task.id));
      } catch (exc) {
        // A starting worker answers 503 for a moment: keep the last figures.
        if (!(exc instanceof ApiError) || exc.status !== 503) throw exc;
      }
    }));
    for (const task of tasks) this.render(this.rows.get(task.id), task);
    const more = page.total > tasks.length ? ` (the ${tasks.length} newest of ${fmtInt(page.total)})` : "";
    this.updated.textContent = `${fmtInt(tasks.length)} campaign${tasks.length === 1 ? "" : "s"}${more};`
      + ` updated ${new Date().toLocaleTimeString()}.`;
  }

  addRow(task) {
    const link = h("a", {href: `#/tasks/${task.id}`});
    const bar = progressBar(0, `Progress of ${task.name}`);
    const cells = {
      link, status: h("td"), bar, numbers: h("span", {class: "numbers"}),
      rate: h("td", {class: "num"}), eta: h("td", {class: "num"}), created: h("td"),
    };
    const tr = h("tr", {dataset: {taskId: task.id}},
      h("th", {scope: "row"}, link), cells.status,
      h("td", {class: "col-progress"}, h("div", {class: "progress-cell"}, bar, cells.numbers)),
      cells.rate, cells.eta, cells.created);
    const row = {tr, cells, task};
    this.rows.set(task.id, row);
    return row;
  }

  render(row, task) {
    const {cells} = row;
    cells.link.textContent = task.name;
    fill(cells.status, badge(task.status), task.status_reason ? h("span", {class: "reason"}, task.status_reason) : null);
    const live = this.live.get(task.id);
    const progress = live?.progress;
    setProgress(cells.bar, progress?.total ? progress.percent : 0);
    cells.numbers.textContent = !progress ? "…" : !progress.total ? "no audience yet"
      : `${fmtInt(progress.done)} / ${fmtInt(progress.total)} (${fmtPercent(progress.percent)})`;
    const figures = liveFigures(this.ctx, task, live);
    cells.rate.textContent = figures.rate;
    cells.rate.title = figures.rateTitle;
    cells.eta.textContent = figures.eta;
    cells.created.textContent = fmtTime(task.created_at);
  }

  destroy() {}
}

/** Turn a control off, saying why (it stays focusable, so the reason can be read). */
export function disable(button, reason) {
  button.setAttribute("aria-disabled", "true");
  button.title = reason;
  button.dataset.reason = reason;
  button.addEventListener("click", (event) => {
    if (button.getAttribute("aria-disabled") === "true") {
      event.preventDefault();
      event.stopImmediatePropagation();
      toast(`${button.textContent}: ${button.dataset.reason}`, "info", {timeout: 5000});
    }
  }, {capture: true});
}

// --- New task ---------------------------------------------------------------------------

async function loadAccounts(ctx, list) {
  if (!ctx.caps.userAccounts) {
    fill(list, h("p", {class: "muted"}, `Listing your accounts is ${NOT_AVAILABLE}; type their ids below.`));
    return;
  }
  fill(list, h("p", {class: "muted"}, "Loading your accounts…"));
  try {
    const found = await api.get("api/v1/accounts");
    const items = found.items || [];
    if (!items.length) {
      fill(list, h("p", {class: "muted"}, "The Integration Service lists no accounts for you; type their ids below."));
      return;
    }
    fill(list, items.map((a) => {
      const id = `acc-${a.id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
      const state = a.limits?.state ?? a.status;
      return h("div", {class: "check"},
        h("input", {type: "checkbox", id, name: "account", value: a.id, disabled: a.status === "banned"}),
        h("label", {for: id}, a.id, " ", badge(state)));
    }));
  } catch (exc) {
    fill(list, h("p", {class: "error-text"}, `Could not list your accounts: ${exc.full ?? exc.message}.`
      + " Type their ids below."));
  }
}

/** The "New task" dialog; on success, opens the new task. */
export function openCreateDialog(ctx) {
  const errors = h("div", {class: "form-error", role: "alert"});
  const accountList = h("div", {class: "checks", id: "account-list"});
  const field = (id, label, input, hint) => h("div", {class: "field"},
    h("label", {for: id}, label), input, hint ? h("p", {class: "hint", id: `${id}-hint`}, hint) : null);
  const name = h("input", {id: "task-name", name: "name", required: true, maxlength: "200", autocomplete: "off"});
  const kind = h("select", {id: "task-kind", name: "kind"},
    h("option", {value: "invite"}, "Invite into a group or channel"),
    h("option", {value: "message"}, "Send a message"));
  const chat = h("input", {id: "task-chat", name: "chat", placeholder: "@my_channel", "aria-describedby": "task-chat-hint"});
  const template = h("textarea", {id: "task-template", name: "message_template", rows: "3",
    "aria-describedby": "task-template-hint"});
  const extra = h("input", {id: "task-accounts", name: "account_ids", placeholder: "acc-1, acc-2",
    "aria-describedby": "task-accounts-hint", autocomplete: "off"});
  const priority = h("select", {id: "task-priority", name: "priority"},
    h("option", {value: "low"}, "Low"), h("option", {value: "normal", selected: true}, "Normal"),
    h("option", {value: "high"}, "High"));
  const chatField = field("task-chat", "Target chat", chat, "The group or channel to invite into.");
  const templateField = field("task-template", "Message template", template,
    "Placeholders such as {first_name} are filled in per target.");
  templateField.hidden = true;
  kind.addEventListener("change", () => {
    chatField.hidden = kind.value !== "invite";
    templateField.hidden = kind.value !== "message";
  });
  const submit = h("button", {type: "submit", class: "primary"}, "Create task");
  const close = h("button", {type: "button"}, "Cancel");
  const form = h("form", {method: "dialog", class: "stack", novalidate: true},
    h("h2", {id: "create-title"}, "New task"),
    errors,
    field("task-name", "Name", name),
    field("task-kind", "Kind", kind),
    chatField, templateField,
    h("fieldset", {}, h("legend", {}, "Sender accounts"), accountList,
      field("task-accounts", "Account ids", extra, "Comma-separated; added to the ones ticked above.")),
    field("task-priority", "Priority", priority),
    h("div", {class: "actions"}, submit, close));
  const dialog = h("dialog", {"aria-labelledby": "create-title", class: "dialog"}, form);
  document.body.append(dialog);
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    fill(errors);
    const accounts = [...form.querySelectorAll("input[name=account]:checked")].map((c) => c.value);
    accounts.push(...extra.value.split(/[\s,]+/).filter(Boolean));
    const body = {name: name.value.trim(), kind: kind.value, account_ids: [...new Set(accounts)], priority: priority.value};
    if (kind.value === "invite") body.chat = chat.value.trim();
    else body.message_template = template.value;
    const missing = [];
    if (!body.name) missing.push([name, "a name"]);
    if (!body.account_ids.length) missing.push([extra, "at least one sender account"]);
    if (kind.value === "invite" && !body.chat) missing.push([chat, "the target chat"]);
    if (kind.value === "message" && !body.message_template.trim()) missing.push([template, "a message template"]);
    if (missing.length) {
      for (const [el] of missing) el.setAttribute("aria-invalid", "true");
      fill(errors, `Please give ${missing.map(([, what]) => what).join(", ")}.`);
      missing[0][0].focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Creating…";
    try {
      const accepted = await api.post("api/v1/tasks", body);
      await waitRecorded(accepted.task_id);
      dialog.close();
      toast(`Task “${body.name}” created. Add its audience, then start it.`, "success");
      location.hash = `#/tasks/${accepted.task_id}`;
    } catch (exc) {
      const text = exc instanceof ApiError ? exc.full : String(exc);
      fill(errors, `The task was not created: ${text}`);
      const fields = {name, chat, message_template: template, account_ids: extra, priority};
      for (const d of Array.isArray(exc.details) ? exc.details : []) {
        const el = fields[String(d.field || "").split(".")[0]];
        if (el) el.setAttribute("aria-invalid", "true");
      }
      submit.disabled = false;
      submit.textContent = "Create task";
    }
  });
  dialog.showModal();
  name.focus();
  loadAccounts(ctx, accountList);
}

/** The API records a new task asynchronously (202): wait until it can be read. */
async function waitRecorded(taskId) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await api.get(`api/v1/tasks/${taskId}`);
    } catch (exc) {
      if (!(exc instanceof ApiError) || exc.status !== 404 || Date.now() > deadline) throw exc;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}
