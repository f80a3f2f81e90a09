// export-client.js: a dependency-free ES module that exports data from the chat-export API.
//
//   import { createExportClient } from "./export-client.js";
//   const client = createExportClient({ baseUrl: "https://api.example.com", getToken: () => auth.token() });
//   await client.exportLeads({ confidence: "high", columns: ["Lead ID", "Email"] }, { format: "xlsx" });
//
// Browser rule: presigned S3 URLs live on another origin without CORS, so this module never
// fetch()es one. File routes are asked for the JSON link answer (`Accept: application/json`), and
// the link is handed to `download`, which navigates to it (S3's Content-Disposition names the
// file). Every request uses `redirect: "manual"`, so a 303 to S3 is never followed by fetch.
// The token is read from `getToken()` for every request, never stored, logged or put in an error.
// Types: export-client.d.ts. docs/api.md documents the server.

/** Why an export failed. `status` is the HTTP status (0: network, abort, no answer). */
export class ExportError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: string, retryAfter?: number|null, job?: object}} [info]
   */
  constructor(message, { status = 0, code = "error", retryAfter = null, job } = {}) {
    super(message);
    this.name = code === "aborted" ? "AbortError" : "ExportError";
    /** @type {number} */ this.status = status;
    /** @type {string} */ this.code = code;
    /** @type {number|null} */ this.retryAfter = retryAfter;
    if (job) /** @type {object} */ this.job = job;
  }
}

/** The `error_code` of each status, for answers that carry none (the leads shape, gateways). */
const CODES = {
  400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
  410: "file_gone", 413: "request_too_large", 414: "request_too_large", 429: "rate_limited",
  431: "request_too_large", 500: "export_failed", 502: "bad_gateway", 503: "unavailable", 504: "timeout",
};
/** Messages for answers without one of their own. */
const MESSAGES = {
  0: "The export service could not be reached", 400: "The export request is invalid",
  401: "Authentication required", 403: "You are not allowed to run this export",
  404: "Not found", 409: "The export is not in a state that allows this", 410: "The file is no longer available",
  413: "The request is too large", 414: "The request is too large", 429: "Too many exports; try again later",
  431: "The request is too large",
};
const genericMessage = (status) =>
  MESSAGES[status] ?? (status >= 500 ? "The export service failed; try again later" : `Export failed (HTTP ${status})`);
const codeFor = (status) => CODES[status] ?? (status >= 500 ? "server_error" : "error");

/** Routes of the synchronous exports. */
const ROUTES = {
  sessions: "/api/admin/sessions/export",
  leads: "/api/hybrid-leads/export",
  chats: "/client/export/chats",
  conversations: "/client/export/conversations",
};
const FINAL = new Set(["succeeded", "failed", "cancelled"]);
const CHAT_FLAGS = new Set(["include_geo", "include_meta", "bom", "spreadsheet_safe"]);
const PERIODS = new Set([7, 30, 90]);
const DAY_MS = 86_400_000;

/**
 * Downloads a file in the browser: an `<a download>` pointing at `url`, or at an object URL of
 * `blob` (revoked a minute later), clicked once. For a cross-origin `url` the browser ignores the
 * `download` attribute and the server's Content-Disposition names the file.
 * @param {{url?: string, blob?: Blob, fileName?: string}} file
 */
export function browserDownload({ url, blob, fileName }) {
  if (typeof document === "undefined") throw new Error("browserDownload needs a DOM; pass a `download` callback");
  const href = blob ? URL.createObjectURL(blob) : url;
  const a = document.createElement("a");
  a.href = href;
  a.download = fileName ?? "";
  a.rel = "noopener";
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  if (blob) setTimeout(() => URL.revokeObjectURL(href), 60_000)?.unref?.(); // unref: no wait in Node tests
}

/**
 * The file name of a Content-Disposition value (RFC 6266): `filename*=UTF-8''...` wins over
 * `filename="..."` (quoted, with backslash escapes) or a bare `filename=token`.
 * @param {string|null|undefined} header
 * @returns {string|null}
 */
export function fileNameFromDisposition(header) {
  if (!header) return null;
  const star = /filename\*\s*=\s*([^']*)'[^']*'([^;]+)/i.exec(header);
  if (star) {
    try {
      const raw = star[2].trim().replace(/^"(.*)"$/, "$1");
      if (/^utf-8$/i.test(star[1].trim())) return decodeURIComponent(raw);
      return raw.replace(/%([0-9a-f]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16))); // ISO-8859-1
    } catch { /* malformed: fall back to filename= */ }
  }
  const quoted = /(?:^|;)\s*filename\s*=\s*"((?:[^"\\]|\\.)*)"/i.exec(header);
  if (quoted) return quoted[1].replace(/\\(.)/g, "$1");
  const bare = /(?:^|;)\s*filename\s*=\s*([^;\s]+)/i.exec(header);
  return bare ? bare[1] : null;
}

/** The file name of a presigned URL: its `response-content-disposition`, else its last path segment. */
function fileNameFromUrl(url) {
  try {
    const u = new URL(url, "http://base.invalid");
    const named = fileNameFromDisposition(u.searchParams.get("response-content-disposition"));
    return named || decodeURIComponent(u.pathname.split("/").pop() || "") || "export";
  } catch {
    return "export";
  }
}

/** Seconds of a Retry-After header (delta-seconds or an HTTP date); null when absent. */
function retryAfterOf(res) {
  const v = res.headers?.get?.("retry-after");
  if (!v) return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/** Drops null, undefined and "" values; joins arrays with ",". */
function clean(params = {}) {
  const out = {};
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === null || v === undefined || v === "") continue;
    const value = Array.isArray(v) ? v.filter((x) => x !== null && x !== undefined && x !== "").join(",") : v;
    if (value !== "") out[k] = value;
  }
  return out;
}

/** Every value as a string (query strings, and job params of every kind but chats). */
const asStrings = (params) => Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)]));

/** JSON types for the chats body: `limit` a number, flags booleans (form values are strings). */
function asChatBody(params) {
  const out = { ...params };
  if (typeof out.limit === "string" && /^\d+$/.test(out.limit.trim())) out.limit = Number(out.limit);
  for (const k of CHAT_FLAGS) {
    if (typeof out[k] === "string" && /^(true|false|1|0|yes|no)$/i.test(out[k].trim())) {
      out[k] = /^(true|1|yes)$/i.test(out[k].trim());
    }
  }
  return out;
}

/**
 * The leads export's `period` (7, 30 or 90: the last N days) is resolved here into `startDate`,
 * because the API takes dates only.
 */
function resolvePeriod(params) {
  if (params.period === undefined) return params;
  const { period, ...rest } = params;
  const days = Number(period);
  if (!PERIODS.has(days)) {
    throw new ExportError(`period must be one of 7, 30, 90; got '${period}'`, { status: 400, code: "invalid_request" });
  }
  if (rest.startDate !== undefined) {
    throw new ExportError("period and startDate cannot be combined", { status: 400, code: "invalid_request" });
  }
  return { ...rest, startDate: new Date(Date.now() - days * DAY_MS).toISOString() };
}

const queryString = (params) =>
  Object.entries(asStrings(params)).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");

const isJson = (res) => /\bjson\b/i.test(res.headers.get("content-type") ?? "");

/** The parsed JSON body of an answer, or null. */
async function jsonOf(res) {
  try {
    return await res.json();
  } catch {
    return null;
  }
}

/** Waits `ms`, or rejects with an "aborted" ExportError when `signal` aborts. */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    const timer = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
    function onAbort() { clearTimeout(timer); reject(aborted()); }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
const aborted = () => new ExportError("The export was aborted", { status: 0, code: "aborted" });

/**
 * Creates a client of the export API.
 * @param {import("./export-client.d.ts").ExportClientOptions} [options]
 * @returns {import("./export-client.d.ts").ExportClient}
 */
export function createExportClient({
  baseUrl = "",
  getToken,
  fetch = globalThis.fetch,
  download = browserDownload,
  pollMs = 500,
  maxPollMs = 5000,
  asyncAboveRows = 100000,
} = {}) {
  if (typeof getToken !== "function") throw new TypeError("createExportClient: getToken is required");
  if (typeof fetch !== "function") throw new TypeError("createExportClient: no fetch available");
  const base = String(baseUrl).replace(/\/+$/, "");

  /** Replaces the token anywhere in a text (defence in depth: the server never echoes it). */
  const scrub = (text, token) => (token && text ? String(text).split(token).join("[redacted]") : text);

  /**
   * One request to the API, with a fresh token, `redirect: "manual"` and JSON asked for.
   * Network failures and aborts become ExportErrors (whose message never includes the
   * underlying error's, which may quote header values).
   */
  async function request(method, path, { query, body, headers = {}, signal } = {}) {
    if (signal?.aborted) throw aborted();
    let token;
    try {
      token = await getToken();
    } catch {
      token = null;
    }
    if (typeof token !== "string" || !token) {
      throw new ExportError("Could not get an access token", { status: 401, code: "unauthorized" });
    }
    const qs = query ? queryString(query) : "";
    const init = {
      method,
      redirect: "manual",
      signal,
      headers: { Accept: "application/json", ...headers, Authorization: `Bearer ${token}` },
    };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    try {
      const res = await fetch(`${base}${path}${qs ? `?${qs}` : ""}`, init);
      return { res, token };
    } catch (e) {
      if (signal?.aborted || e?.name === "AbortError") throw aborted();
      throw new ExportError(MESSAGES[0], { status: 0, code: "network_error" });
    }
  }

  /** The ExportError of an error answer: `{error_code, message}`, the leads shape, or neither. */
  async function errorOf(res, token) {
    const body = isJson(res) ? await jsonOf(res) : null;
    let message = genericMessage(res.status);
    let code = codeFor(res.status);
    if (body && typeof body === "object") {
      if (typeof body.error_code === "string") code = body.error_code;
      if (body.success === false && typeof body.error === "string") {
        message = body.message ? `${body.message}: ${body.error}` : body.error;
      } else if (typeof body.message === "string" && body.message) {
        message = body.message;
      }
    }
    return new ExportError(scrub(message, token), { status: res.status, code, retryAfter: retryAfterOf(res) });
  }

  /** A JSON API call that must answer one of `ok` statuses; resolves the body. */
  async function call(method, path, { ok = [200], ...rest } = {}) {
    const { res, token } = await request(method, path, rest);
    if (!ok.includes(res.status)) throw await errorOf(res, token);
    return { body: await jsonOf(res), status: res.status };
  }

  /**
   * Starts an export job (`POST /api/exports`); the job has `cached: true` when it is an existing
   * one. `notify` (`{emails, on_empty, webhooks}`) is sent as given; a job with recipients or
   * webhooks is never answered from the cache.
   */
  async function startJob({ kind, format, params, notify, idempotencyKey, noCache } = {}) {
    const headers = {};
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    if (noCache) headers["Cache-Control"] = "no-cache";
    const payload = { kind };
    if (format) payload.format = format;
    if (params && Object.keys(params).length) payload.params = params;
    if (notify) payload.notify = notify;
    const { body, status } = await call("POST", "/api/exports", { ok: [200, 202], body: payload, headers });
    return { ...body, cached: status === 200 && body?.cached === true };
  }

  const getJob = (id, signal) => call("GET", `/api/exports/${encodeURIComponent(id)}`, { signal }).then((r) => r.body);

  /**
   * Polls a job until it is final (every `pollMs`, growing x1.5 up to `maxPollMs`), calling
   * `onProgress(job)` after every read. Resolves the succeeded job; rejects an ExportError
   * (status 409, with `.job`) for a failed job (code from `job.error`) or a cancelled one
   * (code "cancelled"), and code "aborted" when `signal` aborts.
   */
  async function watchJob(id, onProgress, { signal } = {}) {
    let delay = pollMs;
    for (;;) {
      const job = await getJob(id, signal);
      onProgress?.(job);
      if (job.status === "succeeded") return job;
      if (job.status === "failed") {
        throw new ExportError(job.error?.message || "The export failed", {
          status: 409, code: job.error?.error_code || "export_failed", job,
        });
      }
      if (job.status === "cancelled") throw new ExportError("The export was cancelled", { status: 409, code: "cancelled", job });
      await sleep(delay, signal);
      delay = Math.min(Math.round(delay * 1.5), maxPollMs);
    }
  }

  /**
   * `POST /api/exports/{id}/cancel`: cancels a queued or running job; resolves the job, now
   * cancelled (409 `job_finished` when it is final already).
   */
  const cancelJob = (id) =>
    call("POST", `/api/exports/${encodeURIComponent(id)}/cancel`, { ok: [202, 200] }).then((r) => r.body);

  /**
   * `DELETE /api/exports/{id}`: deletes the job, its file and every link to it (a queued or
   * running job is cancelled first); resolves undefined (204). The job is 404 afterwards.
   */
  const deleteJob = (id) =>
    call("DELETE", `/api/exports/${encodeURIComponent(id)}`, { ok: [204] }).then(() => undefined);

  /** A page of the caller's export history, newest first. */
  const listExports = ({ limit, cursor, status, kind, owner } = {}) =>
    call("GET", "/api/exports", { query: clean({ limit, cursor, status, kind, owner }) }).then((r) => r.body);

  /**
   * Downloads a succeeded job's file: reads the job (a freshly presigned link) and hands the
   * link to `download`. Rejects 409 `job_not_ready` / `job_not_succeeded`, 410 `file_gone`.
   */
  async function downloadJob(id, { signal } = {}) {
    const job = await getJob(id, signal);
    if (job.status !== "succeeded") {
      const [code, message] = FINAL.has(job.status)
        ? ["job_not_succeeded", `The export ${job.status === "failed" ? "failed" : "was cancelled"}; it has no file`]
        : ["job_not_ready", "The export is not finished yet"];
      throw new ExportError(message, { status: 409, code, job });
    }
    if (!job.download_url) {
      throw new ExportError("The file is no longer available", { status: 410, code: "file_gone", job });
    }
    await download({ url: job.download_url, fileName: job.file_name });
    return { fileName: job.file_name, job };
  }

  // --- schedules (docs/schedules.md) -------------------------------------------------

  const schedulePath = (id) => `/api/schedules/${encodeURIComponent(id)}`;

  /**
   * The caller's schedules, newest first (admins: every one; `owner` narrows;
   * `orphaned: true`, admins only: those paused because their owner's access changed).
   */
  const listSchedules = ({ owner, limit, orphaned, signal } = {}) =>
    call("GET", "/api/schedules", { query: clean({ limit, owner, orphaned }), signal }).then((r) => r.body);

  /** One schedule, with `runs` (its last 20, newest first). */
  const getSchedule = (id, { signal } = {}) => call("GET", schedulePath(id), { signal }).then((r) => r.body);

  /** Creates a schedule (`201`); resolves the schedule. A 400 names the bad field in its message. */
  const createSchedule = (body, { signal } = {}) =>
    call("POST", "/api/schedules", { ok: [201, 200], body, signal }).then((r) => r.body);

  /** What a schedule body would do (`{description, next_runs}`); nothing is stored. */
  const previewSchedule = (body, { signal } = {}) =>
    call("POST", "/api/schedules/preview", { body, signal }).then((r) => r.body);

  /** Changes any of name, enabled, cron, rate, time_zone, notify, lag_seconds; resolves the schedule. */
  const updateSchedule = (id, patch, { signal } = {}) =>
    call("PATCH", schedulePath(id), { body: patch ?? {}, signal }).then((r) => r.body);

  /** Deletes a schedule (`204`); its jobs and files stay until they expire. */
  const deleteSchedule = (id, { signal } = {}) =>
    call("DELETE", schedulePath(id), { ok: [204, 200], signal }).then(() => undefined);

  // --- webhook secrets (docs/api.md, "Webhooks") ------------------------------------

  /**
   * `POST /api/webhook-secrets` (`201`): a new signing secret of the caller's; resolves
   * `{id, secret, created_at, note}`. `secret` (`whsec_...`) is shown this once: store it, and
   * name the secret by `id` in `notify.webhooks[].secret_id`.
   */
  const createWebhookSecret = ({ signal } = {}) =>
    call("POST", "/api/webhook-secrets", { ok: [201, 200], signal }).then((r) => r.body);

  /**
   * `DELETE /api/webhook-secrets/{id}` (`204`); the webhooks that name it are no longer sent.
   * Another caller's secret is 404, as an unknown one is.
   */
  const deleteWebhookSecret = (id, { signal } = {}) =>
    call("DELETE", `/api/webhook-secrets/${encodeURIComponent(id)}`, { ok: [204, 200], signal }).then(() => undefined);

  /** Job params of a kind: JSON types for chats (the POST body's fields), strings otherwise. */
  const jobParams = (kind, params) => (kind === "chats" ? asChatBody(params) : asStrings(params));

  /** Follows a started job: watch (with `onProgress`), then download. */
  async function followJob(id, opts) {
    await watchJob(id, opts.onProgress, { signal: opts.signal });
    const { fileName, job } = await downloadJob(id, { signal: opts.signal });
    return { fileName, via: "job", rows: job.rows ?? undefined, job };
  }

  /** Runs an export as a job: start, watch, download. */
  async function viaJob(kind, params, opts) {
    const { format, ...rest } = params;
    const started = await startJob({ kind, format, params: jobParams(kind, rest) });
    return followJob(started.id, opts);
  }

  /** Hands a link answer (`{download_url, file_name, rows}`) to `download`. */
  async function viaLink(url, fileName, rows) {
    const name = fileName || fileNameFromUrl(url);
    await download({ url, fileName: name });
    return { fileName: name, via: "link", rows: typeof rows === "number" ? rows : undefined };
  }

  /**
   * One export of a kind: synchronously through its route, or as a job when asked
   * (`opts.async`), when `params.limit` is above `asyncAboveRows`, or when the route timed out
   * (503/504) or answered a redirect the browser hides.
   */
  async function runExport(kind, params, opts = {}) {
    let p = clean(params);
    if (opts.format) p.format = opts.format;
    if (kind === "leads") p = resolvePeriod(p);
    if (opts.signal?.aborted) throw aborted();
    if (opts.async || Number(p.limit) > asyncAboveRows) return viaJob(kind, p, opts);

    const post = kind === "chats";
    const { res, token } = await request(post ? "POST" : "GET", ROUTES[kind], post
      ? { body: asChatBody(p), signal: opts.signal }
      : { query: p, signal: opts.signal });

    if (res.status === 503 || res.status === 504 || res.type === "opaqueredirect") return viaJob(kind, p, opts);
    if (res.status === 303) {
      const body = isJson(res) ? await jsonOf(res) : null;
      const url = res.headers.get("location") || body?.download_url;
      if (!url) throw new ExportError("The export answered a redirect without a location", { status: 303, code: "bad_answer" });
      return viaLink(url, body?.file_name, body?.rows);
    }
    if (res.status === 202) {
      const job = await jsonOf(res); // a job, though none was asked for: follow it
      if (job?.id) return followJob(job.id, opts);
    }
    if (res.status !== 200) throw await errorOf(res, token);

    const disposition = res.headers.get("content-disposition");
    if (isJson(res) && !/attachment/i.test(disposition ?? "")) {
      const body = await jsonOf(res);
      if (!body?.download_url) throw new ExportError("The export answered without a file", { status: 200, code: "bad_answer" });
      return viaLink(body.download_url, body.file_name, body.rows ?? body.record_count);
    }
    // An inline file: read it, and hand it to `download` under its Content-Disposition name.
    const blob = await res.blob();
    const fileName = fileNameFromDisposition(disposition) || `${kind}-export`;
    await download({ blob, fileName });
    const rows = Number(res.headers.get("x-export-rows"));
    return { fileName, via: "inline", rows: res.headers.has("x-export-rows") && Number.isFinite(rows) ? rows : undefined };
  }

  return {
    /** Every chat session with its messages (admins). `opts.params`: compression, bom, time_zone, spreadsheet_safe. */
    exportSessions: (opts = {}) => runExport("sessions", opts.params, opts),
    /** Leads of the caller's company (admins: any, several or all). */
    exportLeads: (params, opts) => runExport("leads", params, opts),
    /** Chat messages with analytics (`POST /client/export/chats`; as a job, kind "chats"). */
    exportChats: (params, opts) => runExport("chats", params, opts),
    /** One row per conversation. */
    exportConversations: (params, opts) => runExport("conversations", params, opts),
    startJob,
    watchJob,
    cancelJob,
    deleteJob,
    listExports,
    downloadJob,
    listSchedules,
    getSchedule,
    createSchedule,
    previewSchedule,
    updateSchedule,
    deleteSchedule,
    createWebhookSecret,
    deleteWebhookSecret,
  };
}
