// Small DOM and formatting helpers. Text always goes in as text (never as
// HTML), so nothing the API returns can become markup.

/** Create an element: h("a", {href: "#/", class: "x", onclick: fn}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key in el && typeof value !== "string") {
      el[key] = value;  // properties such as value, checked, disabled
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An SVG element (the chart). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const numberFormat = new Intl.NumberFormat(undefined);

export function fmtInt(n) {
  return n === undefined || n === null ? "—" : numberFormat.format(Math.round(n));
}

export function fmtPercent(p) {
  if (p === undefined || p === null || Number.isNaN(p)) return "—";
  return `${p >= 10 || p === 0 ? Math.round(p) : p.toFixed(1)} %`;
}

/** 75 -> "1 min 15 s"; null -> "—". */
export function fmtDuration(seconds) {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${m % 60} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

/** Actions per second as people read them: "12 / min" or "3.4 / s". */
export function fmtRate(perSecond) {
  if (perSecond === undefined || perSecond === null || !Number.isFinite(perSecond)) return "—";
  if (perSecond >= 1) return `${perSecond.toFixed(perSecond >= 10 ? 0 : 1)} / s`;
  const perMinute = perSecond * 60;
  if (perMinute >= 1) return `${perMinute.toFixed(perMinute >= 10 ? 0 : 1)} / min`;
  return `${(perMinute * 60).toFixed(1)} / h`;
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

/** "privacy_restricted" -> "privacy restricted". */
export function humanize(code) {
  return String(code ?? "").replaceAll("_", " ");
}

/** A progress bar people and screen readers can read. */
export function progressBar(percent, label) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  const bar = h("div", {
    class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-valuenow": String(Math.round(value * 10) / 10), "aria-label": label,
  }, h("div", {class: "bar-fill"}));
  bar.firstChild.style.width = `${value}%`;
  return bar;
}

/** Update an existing progress bar in place (keeps focus and avoids flicker). */
export function setProgress(bar, percent) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  bar.setAttribute("aria-valuenow", String(Math.round(value * 10) / 10));
  bar.firstChild.style.width = `${value}%`;
}

/** Polite announcements for screen readers (progress milestones, state changes). */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A separate frame, so the same text said twice is announced twice.
  requestAnimationFrame(() => { region.textContent = text; });
}

let toastSeq = 0;

/** An in-page notification; `kind` is "info", "success" or "error". */
export function toast(text, kind = "info", {timeout = 8000, title} = {}) {
  const region = document.getElementById(kind === "error" ? "toasts-urgent" : "toasts");
  if (!region) return null;
  const id = `toast-${++toastSeq}`;
  const close = h("button", {type: "button", class: "toast-close", "aria-label": "Dismiss notification"}, "×");
  const item = h("div", {class: `toast toast-${kind}`, id, dataset: {kind}},
    h("div", {class: "toast-body"}, title ? h("strong", {class: "toast-title"}, title) : null, text), close);
  close.addEventListener("click", () => item.remove());
  region.append(item);
  if (timeout) setTimeout(() => item.remove(), kind === "error" ? timeout * 2 : timeout);
  return item;
}

/** A short status pill for a task or account state. */
export function badge(state, text) {
  return h("span", {class: `badge badge-${String(state).replace(/[^a-z_]/g, "")}`}, text ?? humanize(state));
}
