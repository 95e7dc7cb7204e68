// One task: progress, outcomes, throughput, accounts, log lines, audience upload and the controls.

import {api, ApiError, download} from "./api.js";
import {NOT_AVAILABLE} from "./caps.js";
import {bucketize, samplesToEvents, throughputChart} from "./chart.js";
import {h, fill, fmtInt, fmtPercent, fmtDuration, fmtTime, humanize, progressBar, setProgress, badge, toast,
  announce} from "./dom.js";
import {TERMINAL} from "./live.js";
import {disable, fetchLive, liveFigures} from "./tasks.js";

const LOG_LINES = 15;
const RETRYABLE = "transient_error";
const LOG_FETCH = 500;
// How an outcome reads: sent, nothing to do, the person can't be reached, the account or chat is in trouble.
const ACCOUNT_OR_CHAT = new Set(["flood_wait", "peer_flood", "account_banned", "session_invalid", "session_duplicated",
  "chat_admin_required", "chat_write_forbidden", "chat_invalid", "chat_full", "chat_restricted"]);

function tone(outcome) {
  if (outcome === "invited" || outcome === "message_sent") return "ok";
  if (outcome === "already_member") return "soft";
  if (outcome === "transient_error") return "muted";
  return ACCOUNT_OR_CHAT.has(outcome) ? "bad" : "warn";
}
const TARGET_STATES = ["pending", "in_flight", "invited", "already_member", "skipped", "failed", "cancelled", "unknown"];

const CONTROLS = [
  // [feature, label, command path, allowed in, status it leads to]
  ["execute", "Start", "execute", ["draft"], "running"],
  ["pause", "Pause", "pause", ["running"], "paused"],
  ["resume", "Resume", "resume", ["paused"], "running"],
  ["cancel", "Cancel", "cancel", ["draft", "running", "paused"], "cancelled"],
];

function section(id, title, ...children) {
  return h("section", {class: "panel", "aria-labelledby": `${id}-title`, id},
    h("h2", {id: `${id}-title`}, title), ...children);
}

function windowName(seconds) {
  if (seconds === 3600) return "hour";
  if (seconds === 86400) return "day";
  if (seconds === 60) return "minute";
  return fmtDuration(seconds);
}

function until(iso) {
  if (!iso) return "";
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  return seconds > 0 ? `in ${fmtDuration(seconds)}` : "now";
}

export class TaskDetail {
  constructor(ctx, taskId) {
    this.ctx = ctx;
    this.taskId = taskId;
    this.tick = 0;
    this.task = null;
    this.live = null;
    this.stats = null;
    this.report = null;
    this.logs = null;
    this.accounts = null;
    this.lastMilestone = null;
    this.dirty = new Set(["logs", "report", "accounts", "imports"]);
    this.build();
  }

  base(path = "") {
    return `api/v1/tasks/${this.taskId}${path}`;
  }

  // --- layout ---------------------------------------------------------------------------

  build() {
    this.heading = h("h1", {id: "view-title", tabindex: "-1"}, "Task");
    this.statusBadge = h("span");
    this.meta = h("dl", {class: "meta"});
    this.controls = h("div", {class: "controls", role: "group", "aria-label": "Task controls"});
    this.bar = progressBar(0, "Task progress");
    this.progressText = h("p", {class: "big-number"}, "…");
    this.figures = h("dl", {class: "figures"});
    this.byStatus = h("ul", {class: "chips", "aria-label": "Targets by status"});
    this.outcomes = h("div", {class: "outcomes"});
    this.reasons = h("div");
    this.chart = h("div", {class: "chart-wrap"});
    this.accountsBox = h("div", {class: "table-wrap"});
    this.logBox = h("div", {class: "table-wrap"});
    this.audience = h("div", {class: "stack"});
    this.importsBox = h("div");
    this.notFound = h("div", {hidden: true});
    this.body = h("div", {class: "task-grid"},
      h("div", {class: "col"},
        section("progress", "Progress", this.bar, this.progressText, this.figures, this.byStatus),
        section("outcomes", "Outcomes", this.outcomes, this.reasons),
        section("throughput", "Throughput", this.chart)),
      h("div", {class: "col"},
        section("accounts", "Accounts", this.accountsBox),
        section("audience", "Audience", this.audience, this.importsBox),
        section("log", "Latest log lines", this.logBox)));
    this.element = h("section", {class: "view", "aria-labelledby": "view-title"},
      h("p", {class: "crumbs"}, h("a", {href: "#/"}, "← All campaigns")),
      h("div", {class: "section-head"}, h("div", {class: "title-line"}, this.heading, this.statusBadge), this.controls),
      this.meta, this.notFound, this.body);
    this.buildAudience();
  }

  // --- polling ----------------------------------------------------------------------------

  async refresh() {
    this.tick++;
    let task;
    try {
      task = await api.get(this.base());
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 404) {
        this.showNotFound(exc);
        return;
      }
      throw exc;
    }
    const changed = !this.task || this.task.status !== task.status;
    this.task = task;
    this.body.hidden = false;
    this.controls.hidden = false;
    this.notFound.hidden = true;
    this.ctx.watcher.observe(task);
    this.ctx.clearError("task");
    if (changed) this.dirty = new Set(["logs", "report", "accounts", "imports"]);
    const running = task.status === "running";
    const jobs = [this.load("live", () => fetchLive(this.ctx, this.taskId))];
    // Without /status the live figures are /stats already; with it, /stats adds the outcomes.
    if (this.ctx.caps.status && (running || changed || !this.stats || this.tick % 10 === 0)) {
      jobs.push(this.load("stats", () => api.get(this.base("/stats"))));
    }
    if (this.ctx.caps.logs && (this.dirty.has("logs") || (running && this.tick % 2 === 0))) {
      jobs.push(this.load("logs", () => api.get(this.base("/logs"), {query: {limit: LOG_FETCH}})));
    }
    if (this.ctx.caps.report && (this.dirty.has("report") || (!TERMINAL.has(task.status) && this.tick % 4 === 0))) {
      jobs.push(this.load("report", () => api.get(this.base("/report"))));
    }
    if (!this.ctx.caps.status && this.ctx.caps.taskAccounts && (this.dirty.has("accounts") || this.tick % 2 === 0)) {
      jobs.push(this.load("accounts", () => api.get(this.base("/accounts"))));
    }
    if (this.ctx.caps.taskImports && this.dirty.has("imports")) {
      jobs.push(this.load("imports", () => api.get(this.base("/imports"))));
    }
    this.dirty.clear();
    await Promise.all(jobs);
    if (!this.ctx.caps.status) this.stats = this.live;
    this.render();
  }

  /** One read; a 503 (a worker starting) keeps the last answer, other errors go to the banner. */
  async load(name, fetcher) {
    try {
      this[name] = await fetcher();
      this.ctx.clearError(`task:${name}`);
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 503) return;
      this.ctx.showError(exc, `Could not load the ${name === "live" ? "progress" : name}`, `task:${name}`);
    }
  }

  showNotFound(exc) {
    this.heading.textContent = "Task not found";
    this.body.hidden = true;
    this.controls.hidden = true;
    this.notFound.hidden = false;
    fill(this.notFound, h("p", {class: "error-text"}, `${exc.message}. It may have been deleted, or it belongs to`
      + " another user."), h("p", {}, h("a", {href: "#/"}, "Back to all campaigns")));
  }

  render() {
    const task = this.task;
    this.heading.textContent = task.name;
    document.title = `${task.name} — Invite Service`;
    fill(this.statusBadge, badge(task.status),
      task.status_reason ? h("span", {class: "reason"}, ` ${task.status_reason}`) : null);
    this.renderMeta(task);
    this.renderControls();
    this.renderProgress();
    this.renderOutcomes();
    this.renderChart();
    this.renderAccounts();
    this.renderLog();
    this.renderImports();
    this.renderAudienceState();
  }

  renderMeta(task) {
    const item = (term, value) => h("div", {}, h("dt", {}, term), h("dd", {}, value));
    const what = task.kind === "invite" ? ["Invite into", task.chat] : ["Message", task.message_template];
    fill(this.meta,
      item("Kind", humanize(task.kind)), item(what[0], what[1] ?? "—"),
      item("Priority", {0: "low", 1: "normal", 2: "high"}[task.priority] ?? String(task.priority)),
      item("Accounts", fmtInt(task.account_ids.length)),
      item("Created", fmtTime(task.created_at)),
      task.started_at ? item("Started", fmtTime(task.started_at)) : null,
      task.finished_at ? item("Finished", fmtTime(task.finished_at)) : null);
  }

  // --- controls ---------------------------------------------------------------------------

  /** The buttons, rebuilt only when what they depend on changed (keeps keyboard focus where it is). */
  renderControls() {
    const {caps} = this.ctx;
    const task = this.task;
    const failed = this.failedCount();
    const retryable = this.retryableCount();
    const key = `${task.status}|${failed > 0}|${retryable > 0}`;
    if (key === this.controlsKey) return;
    this.controlsKey = key;
    const focused = this.controls.contains(document.activeElement) ? document.activeElement.textContent : null;
    const buttons = [];
    for (const [feature, label, command, allowed, leadsTo] of CONTROLS) {
      const button = h("button", {type: "button", class: feature === "cancel" ? "danger" : "primary"}, label);
      if (!caps[feature]) disable(button, NOT_AVAILABLE);
      else if (!allowed.includes(task.status)) disable(button, `not possible while the task is ${humanize(task.status)}`);
      else button.addEventListener("click", () => this.command(command, label, leadsTo, button));
      buttons.push(button);
    }
    const retry = h("button", {type: "button"}, "Retry failed");
    if (!caps.retryFailed) disable(retry, NOT_AVAILABLE);
    else if (TERMINAL.has(task.status)) disable(retry, `the task is ${task.status}; its targets are not sent again`);
    else if (!failed) disable(retry, "no failed targets");
    else if (!retryable) disable(retry, "no failed target can be sent again (only transient errors are retried)");
    else retry.addEventListener("click", () => this.retryFailed(retry));
    const test = h("button", {type: "button"}, "Test invite…");
    if (!caps.testInvite) disable(test, NOT_AVAILABLE);
    else test.addEventListener("click", () => this.openTestInvite());
    const exportCsv = h("button", {type: "button"}, "Export CSV");
    if (!caps.exportCsv) disable(exportCsv, NOT_AVAILABLE);
    else exportCsv.addEventListener("click", () => this.exportReport(exportCsv));
    fill(this.controls, buttons, retry, test, exportCsv);
    const again = [...this.controls.querySelectorAll("button")].find((b) => b.textContent === focused);
    if (again) again.focus();
  }

  failedCount() {
    return this.live?.progress?.by_status?.failed ?? this.stats?.progress?.by_status?.failed ?? 0;
  }

  /** Failed targets the service sends again: those that failed on transient errors (models/progress.py). */
  retryableCount() {
    const byReason = this.report?.by_reason;
    return byReason ? byReason[RETRYABLE] ?? 0 : this.failedCount();
  }

  async command(command, label, leadsTo, button) {
    if (command === "cancel" && !confirm(`Cancel “${this.task.name}”? Targets not yet contacted will not be.`)) return;
    button.setAttribute("aria-busy", "true");
    try {
      this.ctx.watcher.expect(this.taskId, leadsTo);
      const accepted = await api.post(this.base(`/${command}`));
      toast(`${label}: accepted; the task is becoming ${humanize(accepted.status)}.`, "success", {timeout: 4000});
    } catch (exc) {
      toast(`${label} failed: ${exc.full ?? exc.message}`, "error");
    } finally {
      button.removeAttribute("aria-busy");
      this.ctx.refreshSoon();
    }
  }

  async retryFailed(button) {
    button.setAttribute("aria-busy", "true");
    try {
      const result = await api.post(this.base("/targets/bulk-action"), {action: "retry_failed"});
      toast(result.affected
        ? `${fmtInt(result.affected)} failed target${result.affected === 1 ? "" : "s"} will be tried again.`
        : "No failed target could be sent again: only transient errors are retried.",
      result.affected ? "success" : "info");
      this.dirty.add("report");
    } catch (exc) {
      toast(`Retry failed targets: ${exc.full ?? exc.message}`, "error");
    } finally {
      button.removeAttribute("aria-busy");
      this.ctx.refreshSoon();
    }
  }

  async exportReport(button) {
    button.setAttribute("aria-busy", "true");
    try {
      const name = await download(this.base("/report.csv"), `task-${this.taskId}.csv`);
      toast(`Report saved as ${name}.`, "success", {timeout: 4000});
    } catch (exc) {
      toast(`Export failed: ${exc.full ?? exc.message}`, "error");
    } finally {
      button.removeAttribute("aria-busy");
    }
  }

  openTestInvite() {
    const accounts = (this.accountRows() || []).filter((a) => (a.task_state ?? "active") === "active")
      .map((a) => a.account_id);
    const ids = accounts.length ? accounts : this.task.account_ids;
    const result = h("div", {class: "result", role: "status", "aria-live": "polite"});
    const account = h("select", {id: "test-account", name: "account_id"},
      ids.map((id) => h("option", {value: id}, id)));
    const target = h("input", {id: "test-target", name: "target", required: true, autocomplete: "off",
      placeholder: "@username, +phone or user id", "aria-describedby": "test-target-hint"});
    const send = h("button", {type: "submit", class: "primary"}, "Send one");
    const close = h("button", {type: "button"}, "Close");
    const form = h("form", {method: "dialog", class: "stack", novalidate: true},
      h("h2", {id: "test-title"}, "Test invite"),
      h("p", {class: "hint"}, "One real send to one person through one of the task's accounts. It counts against",
        " the account's limits; the service refuses while the account serves a running task."),
      h("div", {class: "field"}, h("label", {for: "test-account"}, "Account"), account),
      h("div", {class: "field"}, h("label", {for: "test-target"}, "Target"), target,
        h("p", {class: "hint", id: "test-target-hint"}, "A username (with or without @), a phone in +E.164, or a numeric user id.")),
      result, h("div", {class: "actions"}, send, close));
    const dialog = h("dialog", {"aria-labelledby": "test-title", class: "dialog"}, form);
    document.body.append(dialog);
    close.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => dialog.remove());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = target.value.trim();
      if (!value) {
        target.setAttribute("aria-invalid", "true");
        fill(result, h("p", {class: "error-text"}, "Please give the target."));
        target.focus();
        return;
      }
      target.removeAttribute("aria-invalid");
      send.disabled = true;
      fill(result, "Sending…");
      try {
        const answer = await api.post(this.base("/test-invite"), {account_id: account.value, target: identity(value)});
        const ok = answer.scope === "success" || answer.scope === "target_done";
        fill(result, h("p", {class: ok ? "ok-text" : "error-text"},
          `${humanize(answer.outcome)} (${humanize(answer.scope)})`,
          answer.raw_error ? ` — ${answer.raw_error}` : "",
          answer.retry_after ? `; retry after ${fmtDuration(answer.retry_after)}` : ""));
      } catch (exc) {
        fill(result, h("p", {class: "error-text"}, `Not sent: ${exc.full ?? exc.message}`));
      } finally {
        send.disabled = false;
        this.dirty.add("logs");
      }
    });
    dialog.showModal();
    target.focus();
  }

  // --- progress and outcomes ------------------------------------------------------------

  renderProgress() {
    const live = this.live ?? this.stats;
    const progress = live?.progress;
    if (!progress) {
      this.progressText.textContent = "Waiting for the first figures…";
      return;
    }
    // The API calls an empty task 100 % done; people read that as finished.
    setProgress(this.bar, progress.total ? progress.percent : 0);
    this.progressText.textContent = progress.total
      ? `${fmtInt(progress.done)} of ${fmtInt(progress.total)} targets done (${fmtPercent(progress.percent)})`
      : "0 of 0 targets: no audience yet";
    const figures = liveFigures(this.ctx, this.task, live);
    const item = (term, value, title) => h("div", {}, h("dt", {}, term), h("dd", {title: title || null}, value));
    const attempts = this.stats?.attempts;
    fill(this.figures,
      item("Current rate", figures.rate, figures.rateTitle),
      item("ETA", figures.eta),
      item("Still open", fmtInt(progress.open)),
      item("Attempts", fmtInt(attempts)),
      this.live?.rate_per_hour !== undefined
        ? item("Last hour", `${fmtInt(this.live.rate_per_hour)} attempt${this.live.rate_per_hour === 1 ? "" : "s"}`)
        : null);
    const chips = TARGET_STATES.filter((s) => progress.by_status?.[s]).map((s) => h("li", {class: `chip chip-${s}`},
      h("span", {class: "chip-label"}, humanize(s)), " ", h("strong", {}, fmtInt(progress.by_status[s]))));
    fill(this.byStatus, chips.length ? chips : h("li", {class: "muted"}, "No targets yet."));
    const milestone = progress.total ? Math.floor(progress.percent / 25) * 25 : null;
    if (milestone !== null && this.lastMilestone !== null && milestone !== this.lastMilestone) {
      announce(`${this.task.name}: ${milestone} % done.`);
    }
    this.lastMilestone = milestone;
  }

  renderOutcomes() {
    const outcomes = this.stats?.outcomes ?? this.report?.outcomes;
    if (!outcomes || !Object.keys(outcomes).length) {
      fill(this.outcomes, h("p", {class: "muted"}, "No attempts yet."));
    } else {
      const total = Object.values(outcomes).reduce((a, b) => a + b, 0);
      const sorted = Object.entries(outcomes).sort((a, b) => b[1] - a[1]);
      const stacked = h("div", {class: "stacked", "aria-hidden": "true"});
      for (const [outcome, n] of sorted) {
        const part = h("span", {class: `seg tone-${tone(outcome)}`});
        part.style.flexGrow = String(n);
        part.title = `${humanize(outcome)}: ${n}`;
        stacked.append(part);
      }
      fill(this.outcomes, stacked, h("table", {class: "compact", id: "outcome-table"},
        h("caption", {class: "sr-only"}, "Attempts by outcome"),
        h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Outcome"), h("th", {scope: "col", class: "num"}, "Attempts"),
          h("th", {scope: "col", class: "num"}, "Share"))),
        h("tbody", {}, sorted.map(([outcome, n]) => h("tr", {dataset: {outcome}},
          h("th", {scope: "row"}, h("span", {class: `dot tone-${tone(outcome)}`}),
            humanize(outcome)),
          h("td", {class: "num"}, fmtInt(n)), h("td", {class: "num"}, fmtPercent((100 * n) / total)))))));
    }
    const reasons = this.report?.by_reason;
    if (reasons && Object.keys(reasons).length) {
      fill(this.reasons, h("h3", {}, "Failed targets by reason"), h("ul", {class: "plain"},
        Object.entries(reasons).sort((a, b) => b[1] - a[1])
          .map(([reason, n]) => h("li", {}, `${humanize(reason)}: `, h("strong", {}, fmtInt(n))))));
    } else {
      fill(this.reasons);
    }
  }

  renderChart() {
    let events;
    let caption;
    if (this.ctx.caps.logs && this.logs) {
      events = (this.logs.items || []).map((e) => [Date.parse(e.finished_at), 1]);
      caption = this.logs.next_cursor ? `the latest ${fmtInt(events.length)} attempts` : "every attempt";
    } else {
      events = samplesToEvents(this.ctx.rate(this.taskId).samples);
      caption = "targets finished while this page was open";
    }
    // Ends at the last attempt: log times are the server's clock, which this browser's may not match.
    const series = bucketize(events, 0);
    if (!series) {
      fill(this.chart, h("p", {class: "muted"}, this.task.status === "running"
        ? "Measuring…" : "No attempts to chart yet."));
      return;
    }
    fill(this.chart, throughputChart(series, caption), h("p", {class: "hint"}, `From ${caption}.`));
  }

  // --- accounts ---------------------------------------------------------------------------

  accountRows() {
    if (this.ctx.caps.status && this.live?.accounts) return this.live.accounts;
    if (this.accounts?.items) return this.accounts.items;
    return null;
  }

  renderAccounts() {
    const rows = this.accountRows();
    const kind = this.task.kind;
    const perAccount = new Map((this.report?.by_account || []).map((a) => [a.account_id, a]));
    const attemptsOf = (id) => {
      const found = perAccount.get(id);
      if (!found) return "—";
      const good = (found.outcomes.invited ?? 0) + (found.outcomes.message_sent ?? 0);
      return `${fmtInt(found.attempts)} (${fmtInt(good)} sent)`;
    };
    if (!rows) {
      const note = this.ctx.caps.taskAccounts || this.ctx.caps.status ? "Loading…"
        : `Live limits and cooldowns are ${NOT_AVAILABLE}.`;
      fill(this.accountsBox, h("p", {class: "muted"}, note), h("table", {class: "compact"},
        h("caption", {class: "sr-only"}, "The task's sender accounts"),
        h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Account"), h("th", {scope: "col"}, "Attempts"))),
        h("tbody", {}, this.task.account_ids.map((id) => h("tr", {},
          h("th", {scope: "row"}, id), h("td", {}, attemptsOf(id)))))));
      return;
    }
    const table = h("table", {class: "compact", id: "accounts-table"},
      h("caption", {class: "sr-only"}, "The task's sender accounts with their limits and cooldowns"),
      h("thead", {}, h("tr", {},
        h("th", {scope: "col"}, "Account"), h("th", {scope: "col"}, "Health"),
        h("th", {scope: "col"}, "Left in window"), h("th", {scope: "col"}, "Next action"),
        h("th", {scope: "col"}, "Attempts"))),
      h("tbody", {}, rows.map((a) => {
        const windows = a.remaining?.[kind] ?? Object.values(a.remaining || {})[0] ?? [];
        const left = windows.map((w) => h("div", {}, `${fmtInt(w.remaining)} of ${fmtInt(w.limit)} per ${windowName(w.seconds)}`));
        const health = [badge(a.state)];
        if (a.task_state && a.task_state !== "active" && a.task_state !== a.state) {
          health.push(" ", badge(a.task_state, `${a.task_state} in task`));
        }
        if (a.until) health.push(h("div", {class: "hint"}, `until ${fmtTime(a.until)} (${until(a.until)})`));
        if (a.reason) health.push(h("div", {class: "hint"}, humanize(a.reason)));
        const next = a.next_action_at === null ? "never (account unusable)" : until(a.next_action_at);
        return h("tr", {dataset: {account: a.account_id}},
          h("th", {scope: "row"}, a.account_id), h("td", {}, health),
          h("td", {}, left.length ? left : "—"), h("td", {}, next), h("td", {}, attemptsOf(a.account_id)));
      })));
    fill(this.accountsBox, table);
  }

  // --- log --------------------------------------------------------------------------------

  renderLog() {
    if (!this.ctx.caps.logs) {
      fill(this.logBox, h("p", {class: "muted"}, `The execution log is ${NOT_AVAILABLE}.`));
      return;
    }
    const items = (this.logs?.items || []).slice(0, LOG_LINES);
    if (!items.length) {
      fill(this.logBox, h("p", {class: "muted"}, this.logs ? "Nothing has been attempted yet." : "Loading…"));
      return;
    }
    fill(this.logBox, h("table", {class: "compact log", id: "log-table"},
      h("caption", {class: "sr-only"}, `The latest ${items.length} attempts, newest first`),
      h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Time"), h("th", {scope: "col"}, "Account"),
        h("th", {scope: "col"}, "Target"), h("th", {scope: "col"}, "Outcome"), h("th", {scope: "col"}, "Detail"))),
      h("tbody", {}, items.map((e) => h("tr", {},
        h("td", {}, fmtTime(e.finished_at)), h("td", {}, e.account_id), h("td", {class: "num"}, `#${e.target_id}`),
        h("td", {}, h("span", {class: `dot tone-${tone(e.outcome)}`}), humanize(e.outcome),
          e.attempt > 1 ? ` (attempt ${e.attempt})` : ""),
        h("td", {class: "detail"}, e.raw_error ?? (e.retry_after ? `retry after ${fmtDuration(e.retry_after)}` : "")))))));
  }

  // --- audience ---------------------------------------------------------------------------

  buildAudience() {
    const {caps} = this.ctx;
    this.fileInput = h("input", {type: "file", id: "audience-file", name: "file",
      accept: ".csv,.tsv,.txt,.xlsx,.json,.jsonl,text/csv,application/json", "aria-describedby": "audience-file-hint"});
    this.checkButton = h("button", {type: "submit", class: "primary"},
      caps.importValidate ? "Check file" : "Upload file");
    this.uploadReport = h("div", {class: "upload-report", id: "upload-report", "aria-live": "polite"});
    const hint = caps.importValidate
      ? "CSV, Excel (.xlsx) or JSON with a username, phone or user id column. The file is checked first; nothing"
        + " is added until you accept the report."
      : caps.importFile
        ? "CSV, Excel (.xlsx) or JSON. Checking a file before importing it is " + NOT_AVAILABLE + "."
        : "";
    this.uploadForm = h("form", {class: "stack", id: "upload-form"},
      h("div", {class: "field"}, h("label", {for: "audience-file"}, "Audience file"), this.fileInput,
        h("p", {class: "hint", id: "audience-file-hint"}, hint)),
      h("div", {class: "actions"}, this.checkButton));
    this.uploadForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.checkFile();
    });
    this.fileInput.addEventListener("change", () => fill(this.uploadReport));
    if (!caps.importFile) {
      this.uploadForm.hidden = true;
    }
    this.pasteArea = h("textarea", {id: "paste-identities", rows: "4", "aria-describedby": "paste-hint"});
    const pasteButton = h("button", {type: "submit"}, "Add these targets");
    this.pasteResult = h("div", {role: "status"});
    this.pasteForm = h("form", {class: "stack"},
      h("div", {class: "field"}, h("label", {for: "paste-identities"}, "Paste targets"), this.pasteArea,
        h("p", {class: "hint", id: "paste-hint"}, "One per line: @username, t.me/username, +phone or a numeric user id.")),
      h("div", {class: "actions"}, pasteButton), this.pasteResult);
    this.pasteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.addPasted(pasteButton);
    });
    this.closedNote = h("p", {class: "muted", hidden: true});
    const pasteBox = caps.importFile
      ? h("details", {}, h("summary", {}, "Or paste targets"), this.pasteForm)
      : h("div", {}, h("p", {class: "muted"}, `File import is ${NOT_AVAILABLE}.`), this.pasteForm);
    this.openAudience = h("div", {class: "stack"}, this.uploadForm, this.uploadReport, pasteBox);
    fill(this.audience, this.closedNote, this.openAudience);
  }

  renderAudienceState() {
    const closed = TERMINAL.has(this.task.status);
    this.openAudience.hidden = closed;
    this.closedNote.hidden = !closed;
    this.closedNote.textContent = closed ? `The task is ${this.task.status}; it takes no more targets.` : "";
  }

  formFor(file) {
    const form = new FormData();
    form.append("task_id", this.taskId);
    form.append("file", file, file.name);
    return form;
  }

  async checkFile() {
    const file = this.fileInput.files?.[0];
    if (!file) {
      this.fileInput.setAttribute("aria-invalid", "true");
      fill(this.uploadReport, h("p", {class: "error-text", role: "alert"}, "Choose a file first."));
      this.fileInput.focus();
      return;
    }
    this.fileInput.removeAttribute("aria-invalid");
    if (!this.ctx.caps.importValidate) return this.importFile(file);
    this.checkButton.disabled = true;
    fill(this.uploadReport, h("p", {}, `Checking ${file.name}…`));
    try {
      const answer = await api.upload("api/v1/import/validate", this.formFor(file));
      this.showValidation(file, answer.report, answer.valid);
    } catch (exc) {
      this.showFileError(file, exc);
    } finally {
      this.checkButton.disabled = false;
    }
  }

  showFileError(file, exc) {
    const message = exc instanceof ApiError ? exc.full : String(exc);
    fill(this.uploadReport, h("div", {class: "file-error", role: "alert"},
      h("p", {}, h("strong", {}, `${file.name} cannot be imported: `), message, "."),
      h("p", {class: "hint"}, "Nothing was added to the task. Fix the file and choose it again.")));
  }

  showValidation(file, report, valid) {
    const count = (label, n, cls) => h("li", {class: cls}, h("strong", {}, fmtInt(n)), ` ${label}`);
    const mapping = report.mapping
      ? h("p", {class: "hint"}, "Columns: ", Object.entries(report.mapping.fields || {})
        .map(([fieldName, column]) => `${humanize(fieldName)} ← “${column}”`).join(", ") || "none recognised",
      report.mapping.extra?.length ? `; kept as extra: ${report.mapping.extra.join(", ")}` : "")
      : null;
    const problems = report.problems || [];
    const problemTable = problems.length ? h("table", {class: "compact"},
      h("caption", {}, `Rows that will be left out${report.rejected > problems.length
        ? ` (the first ${problems.length} of ${fmtInt(report.rejected)})` : ""}`),
      h("thead", {}, h("tr", {}, h("th", {scope: "col", class: "num"}, "Row"), h("th", {scope: "col"}, "Column"),
        h("th", {scope: "col"}, "Problem"))),
      h("tbody", {}, problems.slice(0, 50).map((p) => h("tr", {},
        h("td", {class: "num"}, String(p.row)), h("td", {}, p.column ?? p.field ?? ""), h("td", {}, p.reason))))) : null;
    const accept = h("button", {type: "button", class: "primary", id: "accept-import"},
      `Import ${fmtInt(report.accepted)} target${report.accepted === 1 ? "" : "s"}`);
    const discard = h("button", {type: "button"}, "Choose another file");
    accept.addEventListener("click", () => this.importFile(file, accept));
    discard.addEventListener("click", () => {
      this.fileInput.value = "";
      fill(this.uploadReport);
      this.fileInput.focus();
    });
    const verdict = report.accepted === 0
      ? h("p", {class: "error-text", role: "alert"}, `${file.name} has no target that can be imported.`)
      : valid
        ? h("p", {class: "ok-text"}, `${file.name} looks good.`)
        : h("p", {class: "warn-text"}, `${file.name} has rows with problems; they will be left out.`);
    fill(this.uploadReport, h("div", {class: "validation", id: "validation-report"},
      h("h3", {}, "Validation report"), verdict,
      h("ul", {class: "counts"}, count("rows", report.rows), count("accepted", report.accepted, "ok"),
        count("rejected", report.rejected, report.rejected ? "bad" : ""), count("duplicate", report.duplicate),
        count("suppressed", report.suppressed)),
      mapping, problemTable,
      h("div", {class: "actions"}, report.accepted > 0 ? accept : null, discard)));
    (report.accepted > 0 ? accept : discard).focus();
  }

  async importFile(file, button) {
    if (button) button.disabled = true;
    fill(this.uploadReport, h("p", {}, `Importing ${file.name}…`));
    try {
      const view = await api.upload("api/v1/import/file", this.formFor(file));
      const report = view.report || {};
      fill(this.uploadReport, h("div", {class: "validation", role: "status"},
        h("p", {class: "ok-text"}, `Import of ${file.name} accepted: ${fmtInt(report.accepted)} targets are being`
          + ` added to the task (${humanize(view.status)}).`)));
      this.fileInput.value = "";
      this.dirty.add("imports");
      this.ctx.refreshSoon();
    } catch (exc) {
      this.showFileError(file, exc);
    }
  }

  async addPasted(button) {
    const lines = this.pasteArea.value.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    if (!lines.length) {
      fill(this.pasteResult, h("p", {class: "error-text"}, "Paste at least one target."));
      this.pasteArea.focus();
      return;
    }
    button.disabled = true;
    try {
      const accepted = this.ctx.caps.addPasted
        ? await api.post(this.base("/targets/bulk"), {identities: lines})
        : await api.post(this.base("/targets"), {targets: lines.map(pastedRow)});
      fill(this.pasteResult, h("p", {class: "ok-text"}, `${fmtInt(accepted.rows ?? lines.length)} targets sent to`
        + " the task; duplicates are dropped as they are recorded."));
      this.pasteArea.value = "";
      this.ctx.refreshSoon();
    } catch (exc) {
      fill(this.pasteResult, h("p", {class: "error-text", role: "alert"}, `Not added: ${exc.full ?? exc.message}`));
    } finally {
      button.disabled = false;
    }
  }

  renderImports() {
    const items = this.imports?.items;
    if (!this.ctx.caps.taskImports || !items?.length) {
      fill(this.importsBox);
      return;
    }
    fill(this.importsBox, h("h3", {}, "Imports"), h("table", {class: "compact"},
      h("caption", {class: "sr-only"}, "Audience imports of this task"),
      h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Source"), h("th", {scope: "col"}, "Status"),
        h("th", {scope: "col", class: "num"}, "Added"), h("th", {scope: "col", class: "num"}, "Left out"))),
      h("tbody", {}, items.slice(0, 10).map((i) => h("tr", {},
        h("td", {}, i.filename ?? i.parsing_task_id ?? i.source), h("td", {}, badge(i.status),
          i.error ? h("div", {class: "hint"}, i.error.message) : null),
        h("td", {class: "num"}, fmtInt(i.result?.accepted)),
        h("td", {class: "num"}, fmtInt((i.result?.invalid ?? 0) + (i.result?.duplicate ?? 0)
          + (i.result?.suppressed ?? 0))))))));
    if (items.some((i) => ["fetching", "validating", "publishing", "published"].includes(i.status))) {
      this.dirty.add("imports");
    }
  }

  destroy() {
    for (const dialog of document.querySelectorAll("dialog")) dialog.close();
  }
}

/** A pasted identity as a target row (for services without the identities endpoint). */
function pastedRow(value) {
  if (value.startsWith("+")) return {phone: value};
  if (/^\d+$/.test(value)) return {user_id: Number(value)};
  return {username: value.replace(/^@/, "").replace(/^(https?:\/\/)?t\.me\//, "")};
}

/** The test-invite target row from what the person typed. */
function identity(value) {
  if (value.startsWith("+")) return {phone: value};
  if (/^\d+$/.test(value)) return {user_id: Number(value)};
  return {username: value.replace(/^@/, "")};
}
