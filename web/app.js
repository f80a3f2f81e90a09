// Chat Export Console: plain ES module, no framework, no build step.
//
// The page talks to the export API only through ./export-client.js (loaded lazily, so
// sign-in and the rest of the page work even if it cannot load). The JWT lives in
// sessionStorage["token"]; it is decoded here only to show who is signed in and what the
// role may do. It is never verified here and never sent anywhere but the Authorization
// header (which the client module adds).

import {
  LEAD_COLUMNS,
  cellText,
  generateMockLeads,
  leadsToCsv,
  leadsToJson,
  leadsToJsonLines,
  mockFileName,
} from "./mock-leads.js";
import { createSchedulesPage, webhookHost } from "./schedules.js";

const TOKEN_KEY = "token";

/** "1 row", "2 rows", with thousands separators. */
function rowCount(n) {
  return `${Number(n).toLocaleString("en-US")} ${Number(n) === 1 ? "row" : "rows"}`;
}

// -----------------------------------------------------------------------------------
// 1. A token handed over in the address (`/#token=<JWT>`) moves to sessionStorage and
//    leaves the address bar (and so the history) before anything else happens.

function takeTokenFromFragment() {
  const hash = window.location.hash;
  if (!hash.startsWith("#token=")) return false;
  let token = hash.slice("#token=".length);
  try {
    token = decodeURIComponent(token);
  } catch {
    // keep it as it came
  }
  if (token.trim()) sessionStorage.setItem(TOKEN_KEY, token.trim());
  window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search);
  return true;
}
takeTokenFromFragment();

// -----------------------------------------------------------------------------------
// Small helpers

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined) continue;
    node.append(child);
  }
  return node;
}

const state = {
  claims: null,
  view: null,
  client: null,
  mock: false,
  mockLeads: null,
};

// -----------------------------------------------------------------------------------
// The JWT: decoded for display only.

function decodeBase64Url(text) {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(text)) throw new Error("not base64url");
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
}

/** The claims of a JWT, or an Error saying why it is not one. */
function decodeToken(token) {
  const parts = String(token).trim().split(".");
  if (parts.length !== 3 || parts.some((p, i) => i < 2 && p === "")) {
    throw new Error("That is not a JWT (it needs three dot-separated parts).");
  }
  let payload;
  try {
    payload = JSON.parse(decodeBase64Url(parts[1]));
  } catch {
    throw new Error("That token is malformed: its payload is not base64url-encoded JSON.");
  }
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) {
    throw new Error("That token is malformed: its payload is not a JSON object.");
  }
  if (typeof payload.exp === "number" && payload.exp * 1000 <= Date.now()) {
    throw new Error("That token has expired. Sign in with a new one.");
  }
  const str = (v) => (typeof v === "string" && v.trim() ? v.trim() : null);
  return {
    sub: str(payload.sub) ?? "(no subject)",
    role: payload.role === "admin" ? "admin" : "user",
    rawRole: str(payload.role) ?? "user",
    client_id: str(payload.client_id),
    company_id: str(payload.company_id),
  };
}

const isAdmin = () => state.claims?.role === "admin";

// -----------------------------------------------------------------------------------
// Toasts

const TOAST_MS = 6000;
const MAX_TOASTS = 5;

/** Text safe to show: no tokens, no stack traces, bounded. */
function safeText(message) {
  let text = String(message ?? "");
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token && token.length > 8) text = text.split(token).join("[token]");
  text = text.replace(/eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, "[token]");
  text = text.replace(/Bearer\s+\S+/gi, "Bearer [token]");
  // Drop anything that looks like a stack trace.
  text = text.split(/\n\s*at\s|\n\s*\S+@\S+:\d+/)[0];
  text = text.trim();
  return text.length > 400 ? `${text.slice(0, 397)}...` : text;
}

const SVG_NS = "http://www.w3.org/2000/svg";

function closeIcon() {
  const svg = document.createElementNS(SVG_NS, "svg");
  for (const [k, v] of Object.entries({ viewBox: "0 0 24 24", width: "16", height: "16", "aria-hidden": "true", focusable: "false" })) {
    svg.setAttribute(k, v);
  }
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute(
    "d",
    "M18.3 5.71 12 12l6.3 6.29-1.41 1.42L10.59 13.4 4.3 19.71 2.89 18.3 9.17 12 2.89 5.71 4.3 4.29l6.29 6.3 6.3-6.3z",
  );
  svg.append(path);
  return svg;
}

function dismissToast(node) {
  if (!node || !node.isConnected) return;
  clearTimeout(node._timer);
  node.remove();
}

/**
 * Shows a toast. kind: "success" | "error" | "info". Returns the toast element, which
 * has .update(text) and .close(). timeout 0 keeps it until closed.
 */
function toast(kind, message, { timeout = TOAST_MS } = {}) {
  const container = $("#toasts");
  const text = el("div", { className: "toast-message", text: safeText(message) });
  const close = el("button", { type: "button", className: "toast-close", "aria-label": "Dismiss notification" });
  close.append(closeIcon());
  const node = el("div", { className: `toast toast-${kind}` }, [text, close]);
  close.addEventListener("click", () => dismissToast(node));
  node.update = (t) => {
    text.textContent = safeText(t);
  };
  node.close = () => dismissToast(node);
  container.append(node);
  while (container.children.length > MAX_TOASTS) dismissToast(container.firstElementChild);
  if (timeout > 0) node._timer = setTimeout(() => dismissToast(node), timeout);
  return node;
}

const toastSuccess = (message) => toast("success", message);
const toastError = (message) => toast("error", message);

function endSentence(text) {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** The message of an error for a person: the server's message, and when to retry. */
function errorText(err, fallback = "Something went wrong") {
  if (err && typeof err.status === "number") {
    let message = safeText(err.message) || `${fallback} (HTTP ${err.status})`;
    if (err.status === 429) {
      const seconds = Number(err.retryAfter);
      message =
        err.retryAfter !== null && err.retryAfter !== undefined && Number.isFinite(seconds)
          ? `${endSentence(message)} Try again in ${Math.max(1, Math.ceil(seconds))} seconds.`
          : `${endSentence(message)} Try again later.`;
    }
    return message;
  }
  if (err instanceof TypeError && /fetch|network|load failed/i.test(err.message)) {
    return "Could not reach the export API. Check the connection and try again.";
  }
  const text = safeText(err?.message);
  return text ? `${fallback}: ${text}` : `${fallback}.`;
}

// -----------------------------------------------------------------------------------
// The client module (./export-client.js)

let clientModule = null;

async function getClient() {
  if (state.client) return state.client;
  if (!clientModule) {
    clientModule = import("./export-client.js").catch((err) => {
      clientModule = null;
      throw Object.assign(new Error("The export client could not be loaded; reload the page."), { cause: err });
    });
  }
  const mod = await clientModule;
  const meta = document.querySelector('meta[name="api-origin"]')?.getAttribute("content")?.trim() ?? "";
  // Empty api-origin: the API is this page's origin.
  const baseUrl = (meta || window.location.origin).replace(/\/+$/, "");
  state.client = mod.createExportClient({ baseUrl, getToken: () => sessionStorage.getItem(TOKEN_KEY) });
  return state.client;
}

// -----------------------------------------------------------------------------------
// Busy buttons

/**
 * Runs fn while the button is disabled, aria-busy and shows a spinner (and busyLabel in
 * place of its content when given). A busy button ignores clicks.
 */
async function withBusy(button, busyLabel, fn) {
  if (button.disabled || button.getAttribute("aria-busy") === "true") return undefined;
  const original = Array.from(button.childNodes, (n) => n.cloneNode(true));
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  const spinner = el("span", { className: "spinner", "aria-hidden": "true" });
  if (busyLabel) button.replaceChildren(spinner, el("span", { text: busyLabel }));
  else button.prepend(spinner);
  try {
    return await fn();
  } finally {
    button.replaceChildren(...original);
    button.removeAttribute("aria-busy");
    button.disabled = false;
    refreshMockControls();
  }
}

// -----------------------------------------------------------------------------------
// Views

const VIEWS = ["sessions", "leads", "chats", "exports", "schedules"];

/** The Schedules page (./schedules.js), made once the page is wired. */
let schedulesPage = null;

function showView(name) {
  if (!state.claims) return;
  if (!VIEWS.includes(name) || (name === "sessions" && !isAdmin())) name = "leads";
  state.view = name;
  for (const view of VIEWS) {
    $(`#view-${view}`).hidden = view !== name;
  }
  for (const tab of $$(".nav-tab")) {
    if (tab.dataset.view === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (name === "exports") loadJobs();
  else stopPolling();
  if (name === "schedules") schedulesPage?.show();
  else schedulesPage?.hide();
}

function showSignIn() {
  state.claims = null;
  state.view = null;
  state.client = null;
  stopPolling();
  resetJobs();
  schedulesPage?.reset();
  $("#session-bar").hidden = true;
  $("#main-nav").hidden = true;
  $("#whoami").replaceChildren();
  for (const view of VIEWS) $(`#view-${view}`).hidden = true;
  $("#view-signin").hidden = false;
}

function showApp(claims) {
  stopPolling();
  resetJobs();
  state.claims = claims;
  $("#view-signin").hidden = true;
  $("#session-bar").hidden = false;
  $("#main-nav").hidden = false;

  const admin = isAdmin();
  const scope = admin
    ? "may export every tenant"
    : "may export their own client/company" +
      (claims.client_id || claims.company_id
        ? ` (${[claims.client_id && `client ${claims.client_id}`, claims.company_id && `company ${claims.company_id}`]
            .filter(Boolean)
            .join(", ")})`
        : "");
  $("#whoami").replaceChildren(
    el("span", { className: "whoami-id", text: `${claims.sub} · ${claims.rawRole}` }),
    document.createTextNode(" "),
    el("span", { className: "whoami-scope", text: scope }),
  );
  for (const node of $$("[data-admin-only]")) node.hidden = !admin;
  schedulesPage?.reset();

  $("#leads-scope").textContent = admin
    ? "Every company, or the companies you name. Filters combine with AND."
    : claims.company_id
      ? `Leads of your company (${claims.company_id}). Filters combine with AND.`
      : "Your token names no company, so the leads export will be refused.";
  $("#chats-scope").textContent = admin
    ? "Chat messages with their replies, or one row per conversation, for any client."
    : claims.client_id
      ? `Chat messages of your client (${claims.client_id}), or one row per conversation. IP addresses are anonymised.`
      : "Your token names no client, so chat exports will be refused.";

  showView(admin ? "sessions" : "leads");
  // Load the client early so the first export does not wait for it.
  getClient().catch((err) => toastError(errorText(err, "The export client could not be loaded")));
}

function startFromStorage() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    showSignIn();
    return;
  }
  try {
    showApp(decodeToken(token));
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn();
    toastError(err.message);
  }
}

function signIn(event) {
  event?.preventDefault();
  const input = $("#token-input");
  const token = input.value.trim().replace(/^Bearer\s+/i, "");
  if (!token) {
    toastError("Paste a JWT to sign in.");
    input.focus();
    return;
  }
  let claims;
  try {
    claims = decodeToken(token);
  } catch (err) {
    toastError(err.message);
    input.focus();
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  input.value = "";
  showApp(claims);
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  showSignIn();
  $("#token-input").focus();
}

// -----------------------------------------------------------------------------------
// Exports (shared)

function describeJob(job) {
  const rows = job.rows ?? job.rows_done;
  const parts = [job.status ?? "working"];
  if (typeof rows === "number") parts.push(rowCount(rows));
  return parts.join(" · ");
}

/**
 * Runs one export through the client: busy button, optional background job with a
 * progress toast, success or error toast, and a refresh of the exports list.
 */
async function runExport(button, { label, busyLabel, call }) {
  await withBusy(button, busyLabel, async () => {
    const asJob = $("#as-job").checked;
    let progress = null;
    const onProgress = (update) => {
      if (!update || typeof update !== "object") return;
      const text = `${label}: ${update.status ? describeJob(update) : "in progress"}`;
      if (!progress) progress = toast("info", text, { timeout: 0 });
      else progress.update(text);
      if (update.id && update.status) noteJob(update);
    };
    if (asJob) progress = toast("info", `${label}: starting a background job...`, { timeout: 0 });
    try {
      const client = await getClient();
      const result = await call(client, { async: asJob, onProgress });
      const job = result?.job;
      if (job?.id) noteJob(job);
      if (job && job.status && job.status !== "succeeded") {
        const reason = job.error?.message ? `: ${job.error.message}` : "";
        toastError(`${label} ${job.status}${reason}`);
        return;
      }
      const fileName = result?.fileName ?? job?.file_name;
      toastSuccess(fileName ? `Exported ${fileName}` : `${label} finished`);
    } catch (err) {
      if (err?.job?.id) noteJob(err.job);
      toastError(errorText(err, `${label} failed`));
    } finally {
      progress?.close();
      if (state.view === "exports") refreshJobs().catch(() => {});
    }
  });
}

// -----------------------------------------------------------------------------------
// Sessions

function exportSessions() {
  runExport($("#export-sessions"), {
    label: "Sessions export",
    busyLabel: null,
    call: (client, opts) => client.exportSessions({ format: "csv", ...opts }),
  });
}

// -----------------------------------------------------------------------------------
// Leads

function renderColumnChooser() {
  const grid = $("#lead-columns-grid");
  grid.replaceChildren(
    ...LEAD_COLUMNS.map((col) => {
      const id = `lead-col-${col.key}`;
      const box = el("input", { type: "checkbox", name: "column", value: col.key, id, checked: true });
      return el("label", { for: id }, [box, el("span", { text: col.header })]);
    }),
  );
  updateColumnCount();
}

function selectedColumns() {
  return $$('#lead-columns input[name="column"]')
    .filter((box) => box.checked)
    .map((box) => box.value);
}

function updateColumnCount() {
  const n = selectedColumns().length;
  $("#lead-columns-count").textContent = `(${n} of ${LEAD_COLUMNS.length})`;
}

function setAllColumns(checked) {
  for (const box of $$('#lead-columns input[name="column"]')) box.checked = checked;
  updateColumnCount();
  renderMockTable();
}

function updatePeriodInputs() {
  const custom = $("#lead-period").value === "custom";
  for (const id of ["#lead-start", "#lead-end"]) {
    const input = $(id);
    input.disabled = !custom;
  }
}

const trimmed = (selector) => $(selector).value.trim();

/** The leads parameters: exactly the filters on screen, empty ones left out. */
function leadParams() {
  const params = {};
  const set = (key, value) => {
    if (value !== "" && value !== null && value !== undefined) params[key] = value;
  };
  set("confidence", $("#lead-confidence").value);
  const period = $("#lead-period").value;
  if (period === "custom") {
    set("startDate", $("#lead-start").value);
    set("endDate", $("#lead-end").value);
  } else {
    set("period", period);
  }
  set("search", trimmed("#lead-search"));
  set("status", $("#lead-status").value);
  set("category", $("#lead-category").value);
  set("language", trimmed("#lead-language"));
  set("chatbotId", trimmed("#lead-chatbot"));
  if (isAdmin()) {
    const companies = trimmed("#lead-companies")
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    if (companies.length) params.companyId = companies;
  }
  const columns = selectedColumns();
  if (columns.length !== LEAD_COLUMNS.length) params.columns = columns;
  return params;
}

const FORMAT_NAMES = { csv: "CSV", xlsx: "Excel", json: "JSON", jsonl: "JSON Lines", parquet: "Parquet" };

function exportLeads(format, button) {
  if (selectedColumns().length === 0) {
    toastError("Choose at least one column to export.");
    return;
  }
  if (state.mock) {
    exportMockLeads(format, button);
    return;
  }
  const params = leadParams();
  runExport(button, {
    label: `Leads ${FORMAT_NAMES[format]} export`,
    busyLabel: "Exporting...",
    call: (client, opts) => client.exportLeads(params, { format, ...opts }),
  });
}

// Mock mode: sample leads made and exported in the browser.

function mockLeads() {
  if (!state.mockLeads) state.mockLeads = generateMockLeads(10);
  return state.mockLeads;
}

function downloadText(text, fileName, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: fileName, className: "visually-hidden" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/**
 * Formats only the server writes (no library here): in mock mode their buttons are
 * disabled with this text as their title, and a click that still gets through shows it.
 */
const SERVER_ONLY_FORMATS = {
  xlsx: "Excel is not available for mock data; use CSV, JSON or JSON Lines, or turn off Mock data.",
  parquet: "Parquet files are made by the server; turn off Mock data to download one from the API.",
};

function exportMockLeads(format, button) {
  if (SERVER_ONLY_FORMATS[format]) {
    toastError(SERVER_ONLY_FORMATS[format]);
    return;
  }
  withBusy(button, "Exporting...", async () => {
    try {
      const columns = selectedColumns();
      const fileName = mockFileName(format);
      if (format === "csv") {
        downloadText(leadsToCsv(mockLeads(), { columns }), fileName, "text/csv;charset=utf-8");
      } else if (format === "jsonl") {
        downloadText(leadsToJsonLines(mockLeads(), { columns }), fileName, "application/x-ndjson;charset=utf-8");
      } else {
        downloadText(leadsToJson(mockLeads(), { columns }), fileName, "application/json;charset=utf-8");
      }
      toastSuccess(`Exported ${fileName}`);
    } catch (err) {
      toastError(errorText(err, "Mock export failed"));
    }
  });
}

function renderMockTable() {
  const table = $("#mock-leads");
  if (!state.mock) {
    table.replaceChildren();
    return;
  }
  const keys = new Set(selectedColumns());
  const cols = LEAD_COLUMNS.filter((c) => keys.has(c.key));
  const shown = cols.length ? cols : LEAD_COLUMNS;
  const head = el("thead", {}, el("tr", {}, shown.map((c) => el("th", { scope: "col", text: c.header }))));
  const body = el(
    "tbody",
    {},
    mockLeads().map((lead) =>
      el(
        "tr",
        { "data-lead-id": lead.lead_id },
        shown.map((c) => {
          const { text } = cellText(lead, c);
          return text === ""
            ? el("td", { className: "empty-cell", text: "—", title: "empty" })
            : el("td", { text });
        }),
      ),
    ),
  );
  table.replaceChildren(el("caption", { className: "visually-hidden", text: "Sample leads (mock data)" }), head, body);
}

/** Excel and Parquet are not offered for mock data; everything else follows the busy state. */
function refreshMockControls() {
  for (const [format, message] of Object.entries(SERVER_ONLY_FORMATS)) {
    const button = $(`#export-leads-${format}`);
    if (button.getAttribute("aria-busy") !== "true") button.disabled = state.mock;
    button.title = state.mock ? message : "";
  }
}

function setMockMode(on) {
  state.mock = on;
  $("#mock-panel").hidden = !on;
  $("#mock-hint").hidden = !on;
  renderMockTable();
  refreshMockControls();
}

// -----------------------------------------------------------------------------------
// Chats and conversations

function chatParams() {
  const params = {};
  const from = $("#chat-from").value;
  const to = $("#chat-to").value;
  if (from) params.date_from = from;
  if (to) params.date_to = to;
  if (isAdmin() && trimmed("#chat-client")) params.client_id = trimmed("#chat-client");
  if (trimmed("#chat-conversation")) params.conversation_id = trimmed("#chat-conversation");
  const limit = trimmed("#chat-limit");
  if (limit !== "") params.limit = Number(limit);
  params.include_geo = $("#chat-geo").checked;
  params.include_meta = $("#chat-meta").checked;
  return params;
}

function exportChats() {
  const format = $("#chat-format").value;
  const params = chatParams();
  runExport($("#export-chats"), {
    label: "Chat export",
    busyLabel: "Exporting...",
    call: (client, opts) => client.exportChats(params, { format, ...opts }),
  });
}

const CONVERSATION_FORMATS = { csv: "csv", json: "json", jsonl: "jsonl", parquet: "parquet", excel: "xlsx", xlsx: "xlsx" };

function exportConversations() {
  const chosen = $("#chat-format").value;
  const format = CONVERSATION_FORMATS[chosen];
  if (!format) {
    toastError("Conversations cannot be exported as “Both”; choose CSV, JSON, JSON Lines, Parquet or Excel.");
    return;
  }
  const params = chatParams();
  runExport($("#export-conversations"), {
    label: "Conversations export",
    busyLabel: "Exporting...",
    call: (client, opts) => client.exportConversations(params, { format, ...opts }),
  });
}

// -----------------------------------------------------------------------------------
// Exports: the caller's jobs and history

const PAGE_SIZE = 20;
const POLL_MS = 2000;
const ACTIVE = new Set(["queued", "running"]);

const jobs = {
  items: [],
  nextCursor: null,
  pages: 0,
  generation: 0,
  timer: null,
  pollFailed: false,
  rows: new Map(),
};

function resetJobs() {
  jobs.items = [];
  jobs.nextCursor = null;
  jobs.pages = 0;
  jobs.generation += 1;
  jobs.rows.clear();
  $("#jobs tbody").replaceChildren();
  $("#jobs-more").hidden = true;
  $("#jobs-empty").hidden = true;
  $("#jobs-live").textContent = "";
}

function jobFilters() {
  const filters = {};
  const status = $("#jobs-status").value;
  const kind = $("#jobs-kind").value;
  if (status) filters.status = status;
  if (kind) filters.kind = kind;
  return filters;
}

function byNewest(a, b) {
  return String(b.created_at ?? "").localeCompare(String(a.created_at ?? ""));
}

function matchesFilters(job) {
  const { status, kind } = jobFilters();
  return (!status || job.status === status) && (!kind || job.kind === kind);
}

/** A job seen elsewhere (an export's progress, a cancel): update or add its row. */
function noteJob(job) {
  if (!job?.id || jobs.pages === 0) return;
  const i = jobs.items.findIndex((j) => j.id === job.id);
  if (i >= 0) jobs.items[i] = { ...jobs.items[i], ...job };
  else if (matchesFilters(job)) jobs.items.unshift(job);
  else return;
  renderJobs();
  schedulePoll();
}

/** Loads the first page again (a new filter, or opening the view). */
async function loadJobs() {
  const generation = ++jobs.generation;
  stopPolling();
  try {
    const client = await getClient();
    const page = await client.listExports({ limit: PAGE_SIZE, ...jobFilters() });
    if (generation !== jobs.generation) return;
    jobs.items = (page?.exports ?? []).slice();
    jobs.nextCursor = page?.next_cursor ?? null;
    jobs.pages = 1;
    jobs.pollFailed = false;
    renderJobs();
  } catch (err) {
    if (generation !== jobs.generation) return;
    toastError(errorText(err, "Could not load your exports"));
  }
  schedulePoll();
}

/** Refreshes the first page and keeps the older pages already loaded. */
async function refreshJobs() {
  if (jobs.pages === 0) return loadJobs();
  const generation = jobs.generation;
  const client = await getClient();
  const page = await client.listExports({ limit: PAGE_SIZE, ...jobFilters() });
  if (generation !== jobs.generation) return undefined;
  const fresh = page?.exports ?? [];
  const ids = new Set(fresh.map((j) => j.id));
  if (jobs.pages <= 1) {
    jobs.items = fresh.slice();
    jobs.nextCursor = page?.next_cursor ?? null;
  } else {
    jobs.items = fresh.concat(jobs.items.filter((j) => !ids.has(j.id))).sort(byNewest);
  }
  renderJobs();
  return undefined;
}

async function loadOlder(button) {
  if (!jobs.nextCursor) return;
  await withBusy(button, "Loading...", async () => {
    const generation = jobs.generation;
    try {
      const client = await getClient();
      const page = await client.listExports({ limit: PAGE_SIZE, cursor: jobs.nextCursor, ...jobFilters() });
      if (generation !== jobs.generation) return;
      const known = new Set(jobs.items.map((j) => j.id));
      jobs.items = jobs.items.concat((page?.exports ?? []).filter((j) => !known.has(j.id)));
      jobs.nextCursor = page?.next_cursor ?? null;
      jobs.pages += 1;
      renderJobs();
    } catch (err) {
      toastError(errorText(err, "Could not load older exports"));
    }
  });
  // withBusy re-enabled the button; hide it when there is nothing older.
  button.hidden = !jobs.nextCursor;
}

function anyActive() {
  return jobs.items.some((j) => ACTIVE.has(j.status));
}

function shouldPoll() {
  return Boolean(state.claims) && state.view === "exports" && document.visibilityState === "visible" && anyActive();
}

function stopPolling() {
  clearTimeout(jobs.timer);
  jobs.timer = null;
}

function schedulePoll() {
  stopPolling();
  updateLiveNote();
  if (!shouldPoll()) return;
  jobs.timer = setTimeout(async () => {
    jobs.timer = null;
    if (!shouldPoll()) return;
    try {
      await refreshJobs();
      jobs.pollFailed = false;
    } catch (err) {
      // One toast per run of failures, not one every 2 seconds.
      if (!jobs.pollFailed) toastError(errorText(err, "Could not refresh your exports"));
      jobs.pollFailed = true;
    }
    schedulePoll();
  }, POLL_MS);
}

function updateLiveNote() {
  const active = jobs.items.filter((j) => ACTIVE.has(j.status)).length;
  $("#jobs-live").textContent = active
    ? `${active} active ${active === 1 ? "export" : "exports"}; refreshing every 2 seconds.`
    : "";
}

function formatTime(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

function formatBytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function jobRow(id) {
  let row = jobs.rows.get(id);
  if (row) return row;
  row = el("tr", { "data-job-id": id }, [
    el("td", { className: "kind" }),
    el("td", { className: "format" }),
    el("td", { className: "status" }),
    el("td", { className: "progress-cell" }, [el("progress"), el("span", { className: "rows" })]),
    el("td", { className: "created" }, el("time")),
    el("td", { className: "file" }),
    el("td", { className: "actions-cell" }),
  ]);
  jobs.rows.set(id, row);
  return row;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * One webhook's delivery, for the job's row: "webhook hooks.example.com: delivered, 1
 * attempt, last 200" (the host only: a URL's path or query may hold the receiver's token).
 */
function webhookText(hook) {
  const attempts = Number(hook?.attempts) || 0;
  const outcome = hook?.delivered ? "delivered" : attempts === 0 && !hook?.last_status ? "pending" : "not delivered";
  const parts = [outcome, `${attempts} ${attempts === 1 ? "attempt" : "attempts"}`];
  if (hook?.last_status) parts.push(`last ${safeText(hook.last_status)}`);
  return `webhook ${webhookHost(hook?.url)}: ${parts.join(", ")}`;
}

function updateJobRow(row, job) {
  const cells = row.cells;
  setText(cells[0], job.kind ?? "");
  setText(cells[1], job.format ?? "");

  const status = job.status ?? "unknown";
  // A synchronous export answered inline was never stored (its download is 410): no button.
  const inlineOnly = job.trigger === "sync" && job.download_url === null;
  const pill = cells[2].firstElementChild;
  if (!pill || pill.textContent !== status) {
    cells[2].replaceChildren(el("span", { className: `pill pill-${status}`, text: status }));
  }

  const progress = cells[3].querySelector("progress");
  const rowsDone = typeof job.rows_done === "number" ? job.rows_done : 0;
  const rows = typeof job.rows === "number" ? job.rows : null;
  progress.setAttribute("aria-label", `Progress of the ${job.kind ?? ""} export`);
  if (rows !== null) {
    progress.max = Math.max(rows, 1);
    progress.value = status === "succeeded" ? Math.max(rowsDone, rows) : Math.min(rowsDone, Math.max(rows, 1));
  } else if (ACTIVE.has(status)) {
    // Total unknown while it runs: indeterminate.
    progress.removeAttribute("value");
    progress.removeAttribute("max");
  } else {
    progress.max = Math.max(rowsDone, 1);
    progress.value = rowsDone;
  }
  setText(cells[3].querySelector(".rows"), rowCount(rows ?? rowsDone));

  const time = cells[4].firstElementChild;
  if (time.getAttribute("datetime") !== (job.created_at ?? "")) {
    time.setAttribute("datetime", job.created_at ?? "");
    time.textContent = formatTime(job.created_at);
    time.title = job.created_at ?? "";
  }

  const fileParts = [];
  if (job.file_name) fileParts.push(job.file_name);
  const size = formatBytes(job.size_bytes);
  let fileText = [fileParts.join(""), size && `(${size})`].filter(Boolean).join(" ");
  if (status === "succeeded" && inlineOnly) fileText += " (downloaded at once, not kept)";
  const errorMessage = job.error?.message ? safeText(job.error.message) : "";
  const hooks = (Array.isArray(job.webhooks) ? job.webhooks : []).map(webhookText);
  const fileKey = `${fileText}|${errorMessage}|${hooks.join("|")}`;
  if (cells[5].dataset.key !== fileKey) {
    cells[5].dataset.key = fileKey;
    const parts = [el("span", { text: fileText || "—" })];
    if (errorMessage) parts.push(el("span", { className: "job-error", text: errorMessage }));
    if (hooks.length) {
      parts.push(el("ul", { className: "webhook-deliveries", "aria-label": "Webhooks" },
        hooks.map((text) => el("li", { text }))));
    }
    cells[5].replaceChildren(...parts);
  }

  const actions = cells[6];
  // While the row asks "Delete this export?", its buttons stay as they are.
  if (actions.dataset.confirming === "true") return;
  const wantCancel = ACTIVE.has(status);
  const wantDownload = status === "succeeded" && !inlineOnly;
  const wantDelete = !ACTIVE.has(status);
  const cancel = actions.querySelector("button.cancel");
  const download = actions.querySelector("button.download");
  if (wantCancel && !cancel) {
    actions.append(el("button", { type: "button", className: "btn btn-danger-outline btn-small cancel", text: "Cancel" }));
  } else if (!wantCancel && cancel) {
    cancel.remove();
  }
  if (wantDownload && !download) {
    actions.append(el("button", { type: "button", className: "btn btn-secondary btn-small download", text: "Download" }));
  } else if (!wantDownload && download) {
    download.remove();
  }
  const remove = actions.querySelector("button.delete");
  if (wantDelete && !remove) {
    actions.append(el("button", { type: "button", className: "btn btn-danger-outline btn-small delete", text: "Delete" }));
  } else if (!wantDelete && remove) {
    remove.remove();
  }
}

/** Delete asks first, in the row: "Delete this export and its file?" with Delete and Keep. */
function askDeleteJob(cell, id) {
  cell.dataset.confirming = "true";
  const promptId = `job-confirm-${id}`;
  const keep = el("button", { type: "button", className: "btn btn-secondary btn-small keep-job", text: "Keep" });
  const confirm = el("button", { type: "button", className: "btn btn-danger btn-small confirm-delete-job", text: "Delete" });
  cell.replaceChildren(
    el("div", { className: "confirm", role: "group", "aria-labelledby": promptId }, [
      el("span", { className: "confirm-text", id: promptId, text: "Delete this export, its file and its links?" }),
      confirm,
      keep,
    ]),
  );
  keep.focus();
}

function endDeleteJob(cell, id) {
  delete cell.dataset.confirming;
  cell.replaceChildren();
  const job = jobs.items.find((j) => j.id === id);
  const row = cell.closest("tr");
  if (job && row) updateJobRow(row, job);
  cell.querySelector("button.delete")?.focus();
}

async function confirmDeleteJob(button, cell, id) {
  const job = jobs.items.find((j) => j.id === id);
  await withBusy(button, "Deleting...", async () => {
    try {
      const client = await getClient();
      await client.deleteJob(id);
      toastSuccess(job?.kind ? `Deleted the ${job.kind} export` : "Deleted the export");
      jobs.items = jobs.items.filter((j) => j.id !== id);
      renderJobs();
    } catch (err) {
      toastError(errorText(err, "Delete failed"));
      if (err?.status === 404) {
        jobs.items = jobs.items.filter((j) => j.id !== id);
        renderJobs();
      }
    }
  });
  if (cell.isConnected && cell.dataset.confirming === "true") endDeleteJob(cell, id);
}

function renderJobs() {
  const tbody = $("#jobs tbody");
  const seen = new Set();
  jobs.items.forEach((job) => {
    if (!job?.id || seen.has(job.id)) return;
    seen.add(job.id);
    const row = jobRow(job.id);
    updateJobRow(row, job);
    // Move only what is out of place, so focus inside a row survives a refresh.
    const at = tbody.children[seen.size - 1];
    if (at !== row) tbody.insertBefore(row, at ?? null);
  });
  for (const [id, row] of jobs.rows) {
    if (!seen.has(id)) {
      row.remove();
      jobs.rows.delete(id);
    }
  }
  $("#jobs-empty").hidden = seen.size > 0;
  $("#jobs-empty").textContent = Object.keys(jobFilters()).length ? "No exports match these filters." : "No exports yet.";
  $("#jobs-more").hidden = !jobs.nextCursor;
  updateLiveNote();
}

async function onJobsClick(event) {
  const button = event.target.closest("button");
  if (!button) return;
  const row = button.closest("tr[data-job-id]");
  if (!row) return;
  const id = row.dataset.jobId;
  const job = jobs.items.find((j) => j.id === id);
  if (button.classList.contains("download")) {
    await withBusy(button, null, async () => {
      try {
        const client = await getClient();
        await client.downloadJob(id);
      } catch (err) {
        toastError(errorText(err, "Download failed"));
      }
    });
  } else if (button.classList.contains("delete")) {
    askDeleteJob(button.closest("td"), id);
  } else if (button.classList.contains("keep-job")) {
    endDeleteJob(button.closest("td"), id);
  } else if (button.classList.contains("confirm-delete-job")) {
    await confirmDeleteJob(button, button.closest("td"), id);
  } else if (button.classList.contains("cancel")) {
    await withBusy(button, null, async () => {
      try {
        const client = await getClient();
        const updated = await client.cancelJob(id);
        if (updated?.id) noteJob(updated);
        toastSuccess(job?.kind ? `Cancelled the ${job.kind} export` : "Cancelled the export");
      } catch (err) {
        toastError(errorText(err, "Cancel failed"));
      }
    });
    refreshJobs().catch(() => {});
  }
}

// -----------------------------------------------------------------------------------
// Wiring

function wire() {
  $("#signin-form").addEventListener("submit", signIn);
  $("#token-input").addEventListener("keydown", (event) => {
    // Ctrl/Cmd+Enter signs in; Enter alone is a line break.
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) signIn(event);
  });
  $("#sign-out").addEventListener("click", signOut);

  for (const tab of $$(".nav-tab")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }

  // No form is ever submitted: every action is a button.
  for (const form of $$("#leads-form, #chats-form")) {
    form.addEventListener("submit", (event) => event.preventDefault());
  }

  $("#export-sessions").addEventListener("click", exportSessions);

  $("#lead-period").addEventListener("change", updatePeriodInputs);
  $("#lead-columns").addEventListener("change", (event) => {
    if (event.target.name === "column") {
      updateColumnCount();
      renderMockTable();
    }
  });
  $("#lead-columns-all").addEventListener("click", () => setAllColumns(true));
  $("#lead-columns-none").addEventListener("click", () => setAllColumns(false));
  $("#mock-mode").addEventListener("change", (event) => setMockMode(event.target.checked));
  $("#export-leads-csv").addEventListener("click", (e) => exportLeads("csv", e.currentTarget));
  $("#export-leads-xlsx").addEventListener("click", (e) => exportLeads("xlsx", e.currentTarget));
  $("#export-leads-json").addEventListener("click", (e) => exportLeads("json", e.currentTarget));
  $("#export-leads-jsonl").addEventListener("click", (e) => exportLeads("jsonl", e.currentTarget));
  $("#export-leads-parquet").addEventListener("click", (e) => exportLeads("parquet", e.currentTarget));

  $("#export-chats").addEventListener("click", exportChats);
  $("#export-conversations").addEventListener("click", exportConversations);

  $("#jobs tbody").addEventListener("click", onJobsClick);
  // Escape keeps an export whose deletion the row is asking about.
  $("#jobs tbody").addEventListener("keydown", (event) => {
    const cell = event.key === "Escape" && event.target.closest?.("td[data-confirming]");
    const row = cell && cell.closest("tr[data-job-id]");
    if (row) endDeleteJob(cell, row.dataset.jobId);
  });
  $("#jobs-more").addEventListener("click", (e) => loadOlder(e.currentTarget));
  $("#jobs-refresh").addEventListener("click", (e) =>
    withBusy(e.currentTarget, null, async () => {
      try {
        await refreshJobs();
      } catch (err) {
        toastError(errorText(err, "Could not refresh your exports"));
      }
      schedulePoll();
    }),
  );
  for (const id of ["#jobs-status", "#jobs-kind"]) {
    $(id).addEventListener("change", () => {
      resetJobs();
      loadJobs();
    });
  }

  // A `#token=` link opened in this tab while the page is already loaded.
  window.addEventListener("hashchange", () => {
    if (takeTokenFromFragment()) startFromStorage();
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.view === "exports") {
      refreshJobs()
        .catch(() => {})
        .finally(schedulePoll);
    } else {
      stopPolling();
    }
  });

  // Another tab signing out (or in) changes nothing here: sessionStorage is per tab.
}

renderColumnChooser();
updatePeriodInputs();
setMockMode($("#mock-mode").checked);
wire();
schedulesPage = createSchedulesPage({
  $,
  $$,
  el,
  getClient,
  toastSuccess,
  toastError,
  errorText,
  withBusy,
  isAdmin,
  safeText,
  formatBytes,
  rowCount,
});
startFromStorage();
