// Live figures the page derives itself: the current rate from successive
// polls, and notifications when a task's state changes on its own.

import {toast, announce, humanize} from "./dom.js";

const WINDOW_MS = 30_000;
const KEEP_MS = 10 * 60_000;

/** Finished targets seen over time, for "current rate" and a fallback ETA and chart. */
export class RateTracker {
  constructor() {
    this.samples = [];  // [epochMs, done]
  }

  add(done, at = Date.now()) {
    const last = this.samples[this.samples.length - 1];
    if (last && done < last[1]) this.samples = [];  // targets were retried or deleted: start over
    this.samples.push([at, done]);
    while (this.samples.length > 2 && at - this.samples[0][0] > KEEP_MS) this.samples.shift();
  }

  /** Targets finished per second over the last half minute; null until two samples a few seconds apart. */
  perSecond() {
    const last = this.samples[this.samples.length - 1];
    if (!last) return null;
    const first = this.samples.find(([t]) => last[0] - t <= WINDOW_MS) ?? last;
    const seconds = (last[0] - first[0]) / 1000;
    if (seconds < 3) return null;
    return (last[1] - first[1]) / seconds;
  }
}

export const TERMINAL = new Set(["completed", "cancelled", "failed"]);

/** Notices when a task completes, fails, or is paused by the service (not by a person). */
export class Watcher {
  constructor() {
    this.seen = new Map();  // task id -> status
    this.expected = new Map();  // task id -> status a person just asked for
  }

  /** A person asked for this change: no notification when it happens. */
  expect(taskId, status) {
    this.expected.set(taskId, status);
  }

  observe(task) {
    const before = this.seen.get(task.id);
    this.seen.set(task.id, task.status);
    if (before === undefined || before === task.status) return;
    const asked = this.expected.get(task.id) === task.status;
    this.expected.delete(task.id);
    announce(`Task ${task.name} is now ${humanize(task.status)}.`);
    if (task.status === "completed") {
      notify(`Task “${task.name}” completed`, "Every target has an outcome.", "success");
    } else if (task.status === "failed") {
      notify(`Task “${task.name}” failed`, task.status_reason ? `Reason: ${task.status_reason}` : "See its log.", "error");
    } else if (task.status === "paused" && !asked && task.status_reason) {
      notify(`Task “${task.name}” was paused by the service`, `Reason: ${task.status_reason}`, "error");
    }
  }
}

function notify(title, body, kind) {
  toast(body, kind, {title});
  if ("Notification" in window && Notification.permission === "granted") {
    try {
      new Notification(title, {body, tag: title});
    } catch {
      /* some platforms only allow notifications from a service worker: the toast is enough */
    }
  }
}
