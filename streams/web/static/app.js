// The campaign console: token, routing between the task list and one task, live polling, errors.

import {ApiError, backoff, getToken, setToken} from "./api.js";
import {detect} from "./caps.js";
import {h, fill, toast} from "./dom.js";
import {RateTracker, Watcher} from "./live.js";
import {TaskDetail} from "./task.js";
import {TaskList} from "./tasks.js";

const VISIBLE_MS = 1500;   // while the page is visible
const HIDDEN_MS = 15_000;  // in a background tab: enough to notice a completion

const main = document.getElementById("main");
const banner = document.getElementById("error-banner");
const tokenForm = document.getElementById("token-form");
const tokenInput = document.getElementById("token-input");
const tokenState = document.getElementById("token-state");
const forget = document.getElementById("token-forget");
const notifyButton = document.getElementById("notify-button");

/** Repeats `run` while the page lives: often when visible, rarely when hidden, never twice at once. */
class Poller {
  constructor(run) {
    this.run = run;
    this.timer = null;
    this.busy = false;
    this.again = false;
  }

  now() {
    if (this.busy) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.step(), 0);
  }

  async step() {
    this.busy = true;
    try {
      await this.run();
    } finally {
      this.busy = false;
      clearTimeout(this.timer);
      const wait = Math.max(backoff(), this.again ? 0 : document.hidden ? HIDDEN_MS : VISIBLE_MS);
      this.again = false;
      this.timer = setTimeout(() => this.step(), wait);
    }
  }
}

const errors = new Map();  // source -> message

function renderBanner() {
  const messages = [...errors.values()];
  banner.hidden = messages.length === 0;
  fill(banner, messages.map((m) => h("p", {}, m)));
}

const ctx = {
  caps: {},
  watcher: new Watcher(),
  trackers: new Map(),
  rate(taskId) {
    if (!this.trackers.has(taskId)) this.trackers.set(taskId, new RateTracker());
    return this.trackers.get(taskId);
  },
  /** Show an API error in words; `source` lets a later success clear it. */
  showError(exc, what, source = "page") {
    let text = exc instanceof ApiError ? exc.full : String(exc?.message ?? exc);
    if (exc instanceof ApiError && exc.status === 401) {
      text += ". Enter a valid API token above.";
      tokenInput.setAttribute("aria-invalid", "true");
    } else if (exc instanceof ApiError && exc.status === 0) {
      text += ". Retrying…";
    }
    const message = `${what}: ${text}`;
    if (errors.get(source) !== message) {
      errors.set(source, message);
      renderBanner();
    }
  },
  clearError(source) {
    if (source === "tasks" || source === "task") tokenInput.removeAttribute("aria-invalid");
    if (errors.delete(source)) renderBanner();
  },
  refreshSoon() {
    poller.now();
  },
};

let view = null;

async function tick() {
  if (!view) return;
  const current = view;
  try {
    await current.refresh();
  } catch (exc) {
    if (current !== view) return;  // the person moved on to another view meanwhile
    const list = current instanceof TaskList;
    ctx.showError(exc, list ? "Could not load your campaigns" : "Could not refresh the task", list ? "tasks" : "task");
  }
}

const poller = new Poller(tick);

/** Route by the fragment: "#/" the list, "#/tasks/<id>" one task. Other fragments are in-page anchors. */
function route({focus = true} = {}) {
  const hash = location.hash;
  if (hash && hash !== "#" && !hash.startsWith("#/")) return;
  view?.destroy();
  errors.clear();
  renderBanner();
  document.title = "Campaigns — Invite Service";
  if (!getToken()) {
    view = null;
    fill(main, h("section", {class: "view intro", "aria-labelledby": "view-title"},
      h("h1", {id: "view-title", tabindex: "-1"}, "Sign in with an API token"),
      h("p", {}, "This console shows your campaigns live and lets you run them. Enter the bearer token your"
        + " platform issued for you in the “API token” field at the top; it is kept only in this browser tab."),
      h("p", {class: "hint"}, "For development, `invite-service demo` prints a token; see docs/console.md.")));
    if (focus) tokenInput.focus();
    return;
  }
  const match = /^#\/tasks\/([0-9A-Za-z-]{1,64})$/.exec(hash);
  view = match ? new TaskDetail(ctx, match[1]) : new TaskList(ctx);
  fill(main, view.element);
  if (focus) document.getElementById("view-title")?.focus();
  poller.now();
}

// --- token --------------------------------------------------------------------------------

function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}

function renderTokenState() {
  const token = getToken();
  forget.hidden = !token;
  if (!token) {
    tokenState.textContent = "No token yet.";
    return;
  }
  const claims = claimsOf(token);
  if (!claims) {
    tokenState.textContent = "Token set (not a readable JWT; the service will judge it).";
    return;
  }
  const at = claims.exp ? new Date(claims.exp * 1000) : null;
  const when = at && at.toDateString() === new Date().toDateString() ? at.toLocaleTimeString() : at?.toLocaleString();
  const expired = at && at < new Date() ? " (expired)" : "";
  tokenState.textContent = `Signed in as ${claims.sub ?? "?"}${at ? `, until ${when}` : ""}${expired}.`;
}

tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const value = tokenInput.value.trim().replace(/^Bearer\s+/i, "");
  if (!value) {
    tokenInput.setAttribute("aria-invalid", "true");
    tokenState.textContent = "Paste a token first.";
    tokenInput.focus();
    return;
  }
  setToken(value);
  tokenInput.value = "";
  tokenInput.removeAttribute("aria-invalid");
  renderTokenState();
  route();
});

forget.addEventListener("click", () => {
  setToken("");
  renderTokenState();
  route();
});

// --- notifications ------------------------------------------------------------------------

function renderNotifyButton() {
  if (!("Notification" in window)) {
    notifyButton.hidden = true;
    return;
  }
  notifyButton.hidden = Notification.permission !== "default";
}

notifyButton.addEventListener("click", async () => {
  const answer = await Notification.requestPermission();
  renderNotifyButton();
  toast(answer === "granted" ? "Desktop notifications are on." : "Desktop notifications stay off; notices appear here.",
    "info", {timeout: 4000});
});

// --- start --------------------------------------------------------------------------------

window.addEventListener("error", (event) => toast(`Something went wrong on this page: ${event.message}`, "error"));
window.addEventListener("unhandledrejection", (event) => {
  const reason = event.reason;
  toast(`Something went wrong: ${reason instanceof ApiError ? reason.full : reason?.message ?? reason}`, "error");
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) poller.now();
});
window.addEventListener("hashchange", () => route());
document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  (document.getElementById("view-title") ?? main).focus();
});

async function start() {
  // "#token=..." (printed by the demo) signs in without pasting; it never reaches the server.
  const fromLink = /^#token=([^&]+)/.exec(location.hash);
  if (fromLink) {
    setToken(decodeURIComponent(fromLink[1]));
    history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  }
  renderTokenState();
  renderNotifyButton();
  ctx.caps = await detect();
  document.body.dataset.ready = "true";
  route({focus: false});
}

start();
