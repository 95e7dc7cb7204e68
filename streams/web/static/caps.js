// Which API operations this service offers, so the page shows only controls that work.
//
// The OpenAPI document (GET api/v1/openapi.json) lists the operations. An
// operation it does not list (or every operation, on a version without the
// document) is probed once without a token: a route that exists answers 401
// (or 415/422 for an upload), one that does not answers 404 or 405.

import {apiUrl} from "./api.js";

const NIL = "00000000-0000-0000-0000-000000000000";

/** Feature name -> [method, path template]; `{}` stands for a path parameter. */
export const FEATURES = {
  listTasks: ["GET", "/api/v1/tasks"],
  createTask: ["POST", "/api/v1/tasks"],
  getTask: ["GET", "/api/v1/tasks/{}"],
  addTargets: ["POST", "/api/v1/tasks/{}/targets"],
  addPasted: ["POST", "/api/v1/tasks/{}/targets/bulk"],
  execute: ["POST", "/api/v1/tasks/{}/execute"],
  pause: ["POST", "/api/v1/tasks/{}/pause"],
  resume: ["POST", "/api/v1/tasks/{}/resume"],
  cancel: ["POST", "/api/v1/tasks/{}/cancel"],
  stats: ["GET", "/api/v1/tasks/{}/stats"],
  status: ["GET", "/api/v1/tasks/{}/status"],
  taskAccounts: ["GET", "/api/v1/tasks/{}/accounts"],
  report: ["GET", "/api/v1/tasks/{}/report"],
  exportCsv: ["GET", "/api/v1/tasks/{}/report.csv"],
  logs: ["GET", "/api/v1/tasks/{}/logs"],
  testInvite: ["POST", "/api/v1/tasks/{}/test-invite"],
  retryFailed: ["POST", "/api/v1/tasks/{}/targets/bulk-action"],
  userAccounts: ["GET", "/api/v1/accounts"],
  importValidate: ["POST", "/api/v1/import/validate"],
  importFile: ["POST", "/api/v1/import/file"],
  taskImports: ["GET", "/api/v1/tasks/{}/imports"],
};

// What the first API slice already had: assumed present without asking.
const BASELINE = new Set(["listTasks", "createTask", "getTask", "addTargets", "execute", "pause", "resume", "cancel",
  "stats"]);

function normalize(path) {
  return path.replace(/\{[^}]*\}/g, "{}");
}

async function documented() {
  try {
    const response = await fetch(apiUrl("api/v1/openapi.json"), {headers: {Accept: "application/json"}});
    if (!response.ok) return null;
    const doc = await response.json();
    const found = new Set();
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of Object.keys(item || {})) found.add(`${method.toUpperCase()} ${normalize(path)}`);
    }
    return found;
  } catch {
    return null;
  }
}

async function probe(method, template) {
  try {
    const response = await fetch(apiUrl(template.replaceAll("{}", NIL)), {method, cache: "no-store"});
    return response.status !== 404 && response.status !== 405;
  } catch {
    return false;
  }
}

/** The features this service offers: {name: true|false}, plus `documented` (whether the OpenAPI document exists). */
export async function detect() {
  const doc = await documented();
  const result = {documented: doc !== null};
  const pending = [];
  for (const [name, [method, template]] of Object.entries(FEATURES)) {
    if (doc && doc.has(`${method} ${template}`)) result[name] = true;
    else if (BASELINE.has(name)) result[name] = true;
    else pending.push(probe(method, template).then((ok) => { result[name] = ok; }));
  }
  await Promise.all(pending);
  return result;
}

export const NOT_AVAILABLE = "not available in this version of the service";
