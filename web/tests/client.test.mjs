// Tests of web/export-client.js, with Node's own runner (no npm):
//
//   BASE_URL=http://127.0.0.1:3000 ADMIN_TOKEN=... USER_TOKEN=... node --test web/tests/
//
// Two groups: answers the server cannot be made to give (inline files named with
// `filename*=`, 303s, 429, 504, network failures) through a fake `fetch`; everything else
// against a real `exportctl serve` (which also runs the export worker) with seeded data.
// ADMIN_TOKEN: role admin. USER_TOKEN: role user with a client_id and a company_id that
// have data (e.g. client-alpha / comp-acme of `exportctl seed`). Without BASE_URL and both
// tokens the server tests are skipped.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { browserDownload, createExportClient, ExportError, fileNameFromDisposition } from "../export-client.js";

const { BASE_URL, ADMIN_TOKEN, USER_TOKEN } = process.env;
const live = Boolean(BASE_URL && ADMIN_TOKEN && USER_TOKEN);
const SECRET = "eyJhbGciOiJIUzI1NiJ9.fake-token-SECRET.sig"; // the fake tests' token
const TIMEOUT = 180_000; // generous: covers a wait for the chat rate limit's next minute

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A `download` callback that records its calls and reads the file (Node may fetch S3 URLs). */
function recorder() {
  const calls = [];
  async function download({ url, blob, fileName }) {
    let bytes;
    if (blob) {
      bytes = Buffer.from(await blob.arrayBuffer());
    } else {
      const res = await fetch(url);
      assert.equal(res.status, 200, `the link answers 200 (${res.status})`);
      bytes = Buffer.from(await res.arrayBuffer());
    }
    calls.push({ url, blob: Boolean(blob), fileName, bytes });
  }
  return { calls, download, last: () => calls.at(-1) };
}

/** Asserts that nothing reachable from an error mentions the token. */
function assertNoToken(err, token) {
  assert.ok(err instanceof ExportError, `an ExportError, got ${err}`);
  const texts = [String(err), err.message, err.stack ?? "", JSON.stringify(err), JSON.stringify(Object.entries(err))];
  for (const t of texts) assert.ok(!t.includes(token), "the token leaked into the error");
}

/** Expects `promise` to reject with an ExportError matching `expected`; returns it. */
async function rejects(promise, expected, token) {
  let err;
  await assert.rejects(promise, (e) => {
    err = e;
    return true;
  });
  assert.ok(err instanceof ExportError, `an ExportError, got ${err?.stack ?? err}`);
  for (const [k, v] of Object.entries(expected)) {
    if (v instanceof RegExp) assert.match(String(err[k]), v, k);
    else assert.equal(err[k], v, k);
  }
  if (token) assertNoToken(err, token);
  return err;
}

// ------------------------------------------------------------------------- fake fetch

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

/** A fetch that records its calls and answers from `handler(url, init, n)`. */
function fakeFetch(handler) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url: new URL(url), init });
    return handler(new URL(url), init, calls.length);
  };
  f.calls = calls;
  return f;
}

const JOB = {
  id: "0123456789abcdef0123456789abcdef", kind: "leads", format: "csv", status: "queued", trigger: "api",
  owner: "u", created_at: "2024-01-15T10:30:00.000Z", started_at: null, finished_at: null,
  as_of: "2024-01-15T10:30:00.000Z", rows_done: 0, bytes_done: 0, rows: null, size_bytes: null,
  file_name: "leads-export-2024-01-15.csv", error: null, download_url: null, expires_at: null,
  file_expires_at: null, cached: false,
};
const S3 = "https://bucket.s3.example.com/exports/x/leads-export-2024-01-15.csv?X-Amz-Signature=abc";

function fakeClient(fetch, extra = {}) {
  const rec = recorder();
  const download = async (d) => rec.calls.push({ ...d, bytes: d.blob ? Buffer.from(await d.blob.arrayBuffer()) : null });
  return { rec, client: createExportClient({ baseUrl: "https://api.example.com/", getToken: () => SECRET, fetch, download, pollMs: 1, maxPollMs: 5, ...extra }) };
}

describe("without a server (fake fetch)", () => {
  test("Content-Disposition file names (RFC 6266)", () => {
    assert.equal(fileNameFromDisposition('attachment; filename="leads-export-2024-01-15.csv"'), "leads-export-2024-01-15.csv");
    assert.equal(fileNameFromDisposition("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%9C%93.csv; filename=\"fallback.csv\""), "résumé ✓.csv");
    assert.equal(fileNameFromDisposition("attachment; filename=\"fallback.csv\"; filename*=utf-8''na%C3%AFve.csv"), "naïve.csv");
    assert.equal(fileNameFromDisposition("attachment; filename*=ISO-8859-1'en'caf%E9.csv"), "café.csv");
    assert.equal(fileNameFromDisposition('attachment; filename="a \\"quoted\\" name.csv"'), 'a "quoted" name.csv');
    assert.equal(fileNameFromDisposition("attachment; filename=plain.csv"), "plain.csv");
    assert.equal(fileNameFromDisposition("attachment"), null);
    assert.equal(fileNameFromDisposition(null), null);
  });

  test("browserDownload clicks an <a download>, with an object URL for a blob", async () => {
    const clicked = [];
    const body = { children: [], appendChild(el) { this.children.push(el); el.remove = () => body.children.splice(body.children.indexOf(el), 1); } };
    globalThis.document = { body, createElement: (tag) => ({ tag, click() { clicked.push({ tag, href: this.href, download: this.download, hidden: this.hidden }); } }) };
    try {
      browserDownload({ url: S3, fileName: "leads.csv" });
      browserDownload({ blob: new Blob(["a,b\r\n"]), fileName: "inline.csv" });
    } finally {
      delete globalThis.document;
    }
    assert.deepEqual(clicked[0], { tag: "a", href: S3, download: "leads.csv", hidden: true });
    assert.match(clicked[1].href, /^blob:/);
    assert.equal(clicked[1].download, "inline.csv");
    assert.equal(body.children.length, 0, "the link is removed again");
    assert.throws(() => browserDownload({ url: S3, fileName: "x" }), /needs a DOM/);
  });

  test("an inline file is read as a Blob and named from filename*; the request is as documented", async () => {
    const fetch = fakeFetch(() => new Response("Lead ID,Email\r\nL1,a@b.c\r\n", {
      status: 200,
      headers: {
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": "attachment; filename=\"leads.csv\"; filename*=UTF-8''leads%20%C3%A9t%C3%A9.csv",
        "x-export-rows": "1",
      },
    }));
    const { client, rec } = fakeClient(fetch);
    const before = Date.now();
    const out = await client.exportLeads(
      { columns: ["Lead ID", "Email"], companyId: ["comp-a", "comp-b"], search: "a b+c", status: null, category: undefined,
        language: "", spreadsheet_safe: false, period: 7 },
      { format: "csv" },
    );
    assert.deepEqual(out, { fileName: "leads été.csv", via: "inline", rows: 1 });
    assert.equal(rec.calls.length, 1);
    assert.equal(rec.last().fileName, "leads été.csv");
    assert.equal(rec.last().url, undefined);
    assert.equal(rec.last().bytes.toString(), "Lead ID,Email\r\nL1,a@b.c\r\n");

    const [{ url, init }] = fetch.calls;
    assert.equal(init.method, "GET");
    assert.equal(init.redirect, "manual");
    assert.equal(init.headers.Accept, "application/json");
    assert.equal(init.headers.Authorization, `Bearer ${SECRET}`);
    assert.equal(url.origin + url.pathname, "https://api.example.com/api/hybrid-leads/export");
    const q = Object.fromEntries(url.searchParams);
    const start = Date.parse(q.startDate);
    assert.ok(Math.abs(start - (before - 7 * 86_400_000)) < 60_000, "period 7 is sent as startDate 7 days ago");
    delete q.startDate;
    assert.deepEqual(q, { columns: "Lead ID,Email", companyId: "comp-a,comp-b", search: "a b+c", spreadsheet_safe: "false", format: "csv" });
    assert.match(url.search, /search=a%20b%2Bc/, "spaces and plus signs are percent-encoded");
  });

  test("an inline Parquet file is binary: its bytes reach download unchanged, named .parquet", async () => {
    // "PAR1", bytes that are not UTF-8 (a text decode would replace them), "PAR1".
    const bytes = Uint8Array.from([0x50, 0x41, 0x52, 0x31, 0x15, 0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28, 0x00, 0x50, 0x41, 0x52, 0x31]);
    const fetch = fakeFetch(() => new Response(bytes, {
      status: 200,
      headers: {
        "content-type": "application/vnd.apache.parquet",
        "content-disposition": 'attachment; filename="leads-export-2024-01-15.parquet"',
        "x-export-rows": "2",
      },
    }));
    const { client, rec } = fakeClient(fetch);
    const out = await client.exportLeads({ compression: "snappy", bom: null, spreadsheet_safe: "" }, { format: "parquet" });
    assert.deepEqual(out, { fileName: "leads-export-2024-01-15.parquet", via: "inline", rows: 2 });
    assert.ok(rec.last().bytes.equals(Buffer.from(bytes)), "the bytes, unchanged");
    const q = Object.fromEntries(fetch.calls[0].url.searchParams);
    assert.deepEqual(q, { compression: "snappy", format: "parquet" }, "null and empty options are not sent (a Parquet file refuses spreadsheet_safe)");

    // As a job: the format at the top, the codec in params.
    const jobs = fakeFetch((url) => url.pathname === "/api/exports"
      ? json(202, { ...JOB, format: "parquet" })
      : json(200, { ...JOB, format: "parquet", status: "succeeded", rows: 2, download_url: S3, file_name: "leads-export-2024-01-15.parquet" }));
    const job = await fakeClient(jobs).client.exportLeads({ compression: "zstd" }, { format: "parquet", async: true });
    assert.equal(job.fileName, "leads-export-2024-01-15.parquet");
    assert.deepEqual(JSON.parse(jobs.calls[0].init.body), { kind: "leads", format: "parquet", params: { compression: "zstd" } });
  });

  test("a 303 is handed to download, never fetched", async () => {
    const fetch = fakeFetch(() => json(303, { download_url: S3, file_name: "leads-export-2024-01-15.csv", rows: 5 }, { location: S3 }));
    const { client, rec } = fakeClient(fetch);
    const out = await client.exportLeads({});
    assert.deepEqual(out, { fileName: "leads-export-2024-01-15.csv", via: "link", rows: 5 });
    assert.deepEqual(rec.calls.map((c) => [c.url, c.fileName]), [[S3, "leads-export-2024-01-15.csv"]]);
    assert.ok(fetch.calls.every((c) => c.url.origin === "https://api.example.com"), "only the API is fetched");
  });

  test("429: status, code, the server's message and retryAfter", async () => {
    const fetch = fakeFetch(() => json(429, { error_code: "rate_limited", message: "Rate limit exceeded: 10 exports per minute" }, { "retry-after": "42" }));
    const { client } = fakeClient(fetch);
    await rejects(client.exportChats({}), { status: 429, code: "rate_limited", retryAfter: 42, message: "Rate limit exceeded: 10 exports per minute" }, SECRET);
    const fetch2 = fakeFetch(() => json(429, { error_code: "too_many_jobs", message: "Too many active jobs" }, { "retry-after": "10" }));
    await rejects(fakeClient(fetch2).client.startJob({ kind: "leads" }), { status: 429, code: "too_many_jobs", retryAfter: 10 }, SECRET);
    const fetch3 = fakeFetch(() => new Response("<html>busy</html>", { status: 502, headers: { "content-type": "text/html" } }));
    await rejects(fakeClient(fetch3).client.exportLeads({}), { status: 502, code: "bad_gateway", retryAfter: null, message: /try again later/ }, SECRET);
  });

  for (const [name, first] of [
    ["a 504 from the gateway", () => json(504, { message: "Service Unavailable" })],
    ["a 503", () => json(503, { message: "Service Unavailable" })],
    ["an opaque redirect (browser)", () => ({ type: "opaqueredirect", status: 0, headers: new Headers() })],
  ]) {
    test(`${name} is retried once as a job`, async () => {
      const fetch = fakeFetch((url, init, n) => {
        if (n === 1) return first();
        if (url.pathname === "/api/exports") return json(202, JOB);
        if (n <= 3) return json(200, { ...JOB, status: "running", rows_done: n * 10 });
        return json(200, { ...JOB, status: "succeeded", rows_done: 40, rows: 40, size_bytes: 100, download_url: `${S3}&n=${n}` });
      });
      const { client, rec } = fakeClient(fetch);
      const progress = [];
      const out = await client.exportConversations({ limit: 40, include_geo: true }, { format: "json", onProgress: (j) => progress.push(j.status) });
      assert.equal(out.via, "job");
      assert.equal(out.rows, 40);
      assert.equal(out.fileName, JOB.file_name);
      assert.deepEqual(progress, ["running", "succeeded"]);
      const post = fetch.calls[1];
      assert.equal(post.init.method, "POST");
      assert.deepEqual(JSON.parse(post.init.body), { kind: "conversations", format: "json", params: { limit: "40", include_geo: "true" } });
      // downloadJob read the job again for a fresh link
      assert.equal(rec.calls.length, 1);
      assert.equal(rec.last().url, `${S3}&n=${fetch.calls.length}`);
    });
  }

  test("chats: the POST body has JSON types; a large limit runs as a job with JSON params", async () => {
    const fetch = fakeFetch((url) => {
      if (url.pathname === "/client/export/chats") {
        return json(200, { success: true, message: "Export generated successfully", file_size: 10, record_count: 3, format: "csv", file_name: "chat-export-2024-01-15.csv", download_url: S3, expires_at: "2024-01-15T10:45:00Z" });
      }
      if (url.pathname === "/api/exports") return json(202, { ...JOB, kind: "chats" });
      return json(200, { ...JOB, kind: "chats", status: "succeeded", rows: 7, download_url: S3, file_name: "chat-export-2024-01-15.xlsx" });
    });
    const { client, rec } = fakeClient(fetch, { asyncAboveRows: 100 });
    const out = await client.exportChats({ limit: "50", include_geo: "true", include_meta: false, client_id: "", date_from: null, format: "json" }, { format: "csv" });
    assert.deepEqual(out, { fileName: "chat-export-2024-01-15.csv", via: "link", rows: 3 });
    assert.equal(fetch.calls[0].init.method, "POST");
    assert.equal(fetch.calls[0].init.headers["Content-Type"], "application/json");
    assert.deepEqual(JSON.parse(fetch.calls[0].init.body), { limit: 50, include_geo: true, include_meta: false, format: "csv" });
    assert.equal(fetch.calls[0].url.search, "");

    const job = await client.exportChats({ limit: 500, include_geo: true }, { format: "excel" });
    assert.equal(job.via, "job");
    assert.equal(job.fileName, "chat-export-2024-01-15.xlsx");
    assert.deepEqual(JSON.parse(fetch.calls[1].init.body), { kind: "chats", format: "excel", params: { limit: 500, include_geo: true } });
    assert.equal(rec.calls.length, 2);
  });

  test("a network failure is status 0 and never quotes the underlying error (which may hold the token)", async () => {
    const fetch = fakeFetch((url, init) => {
      throw new TypeError(`Headers.append: "${init.headers.Authorization}" is an invalid header value.`);
    });
    await rejects(fakeClient(fetch).client.listExports(), { status: 0, code: "network_error" }, SECRET);
  });

  test("getToken failing is a 401 without its message", async () => {
    const client = createExportClient({ getToken: () => { throw new Error(`refresh failed for ${SECRET}`); }, fetch: fakeFetch(() => json(200, {})) });
    await rejects(client.listExports(), { status: 401, code: "unauthorized" }, SECRET);
  });

  test("watchJob: progress, failed and cancelled jobs, abort", async () => {
    let state = "failed";
    const fetch = fakeFetch((url, init, n) => {
      if (n === 1) return json(200, { ...JOB, status: "running" });
      if (state === "failed") return json(200, { ...JOB, status: "failed", error: { error_code: "export_too_large", message: "The export is too large; narrow it" } });
      if (state === "cancelled") return json(200, { ...JOB, status: "cancelled" });
      return json(200, { ...JOB, status: "running" });
    });
    const { client } = fakeClient(fetch);
    const seen = [];
    const failed = await rejects(client.watchJob(JOB.id, (j) => seen.push(j.status)), { status: 409, code: "export_too_large", message: "The export is too large; narrow it" }, SECRET);
    assert.equal(failed.job.status, "failed");
    assert.deepEqual(seen, ["running", "failed"]);
    state = "cancelled";
    await rejects(client.watchJob(JOB.id), { status: 409, code: "cancelled" });

    state = "running forever";
    const ctl = new AbortController();
    let polls = 0;
    const err = await rejects(client.watchJob(JOB.id, () => { if (++polls === 3) ctl.abort(); }, { signal: ctl.signal }), { status: 0, code: "aborted" });
    assert.equal(err.name, "AbortError");
    assert.equal(polls, 3);
    await rejects(client.exportLeads({}, { signal: AbortSignal.abort() }), { code: "aborted" });
  });

  test("downloadJob of a job that is not downloadable", async () => {
    let job = { ...JOB, status: "running" };
    const { client, rec } = fakeClient(fakeFetch(() => json(200, job)));
    await rejects(client.downloadJob(JOB.id), { status: 409, code: "job_not_ready" });
    job = { ...JOB, status: "failed", error: { error_code: "export_failed", message: "x" } };
    await rejects(client.downloadJob(JOB.id), { status: 409, code: "job_not_succeeded" });
    job = { ...JOB, status: "succeeded", download_url: null };
    await rejects(client.downloadJob(JOB.id), { status: 410, code: "file_gone" });
    assert.equal(rec.calls.length, 0);
  });
});

// ------------------------------------------------------------------------- schedules (fake fetch)

const SCHEDULE = {
  id: "5f0c0123456789abcdef0123456789ab", name: "Nightly leads", owner: "u",
  export: { kind: "leads", format: "csv", params: { status: "new" } },
  cron: "0 2 * * *", rate: null, time_zone: "Europe/Berlin", window: "previous_period", lag_seconds: 120,
  notify: { emails: [], on_empty: true }, enabled: true, description: "at 02:00, every day (Europe/Berlin)",
  next_run_at: "2026-12-01T01:00:00.000Z",
  next_runs: [{ run_at: "2026-12-01T01:00:00.000Z", window_start: "2026-11-29T23:00:00.000Z", window_end: "2026-11-30T23:00:00.000Z" }],
  cursor: null, created_at: "2026-11-30T10:00:00.000Z", updated_at: "2026-11-30T10:00:00.000Z",
};
const SCHEDULE_BODY = {
  name: "Nightly leads", export: { kind: "leads", format: "csv", params: { status: "new" } },
  cron: "0 2 * * *", time_zone: "Europe/Berlin", window: "previous_period", notify: { emails: [], on_empty: true }, enabled: true,
};

describe("schedules (fake fetch)", () => {
  /** A fake API of one schedule; records every call. */
  function scheduleApi() {
    let current = { ...SCHEDULE };
    return fakeFetch((url, init) => {
      const m = init.method;
      const p = url.pathname;
      if (p === "/api/schedules" && m === "GET") return json(200, { schedules: [current] });
      if (p === "/api/schedules" && m === "POST") return json(201, current, { location: `/api/schedules/${current.id}` });
      if (p === "/api/schedules/preview" && m === "POST") {
        return json(200, { description: current.description, next_runs: current.next_runs });
      }
      if (p === `/api/schedules/${current.id}`) {
        if (m === "GET") return json(200, { ...current, runs: [] });
        if (m === "PATCH") {
          const patch = JSON.parse(init.body);
          current = { ...current, ...patch, next_run_at: patch.enabled === false ? null : current.next_run_at };
          return json(200, current);
        }
        if (m === "DELETE") return new Response(null, { status: 204 });
      }
      return json(404, { error_code: "not_found", message: "Schedule not found" });
    });
  }

  test("every call: route, method, JSON body, headers and answer", async () => {
    const fetch = scheduleApi();
    const { client } = fakeClient(fetch);

    const list = await client.listSchedules({ owner: "user-1", limit: 50 });
    assert.deepEqual(list, { schedules: [SCHEDULE] });
    const created = await client.createSchedule(SCHEDULE_BODY);
    assert.equal(created.id, SCHEDULE.id);
    const preview = await client.previewSchedule(SCHEDULE_BODY);
    assert.deepEqual(preview, { description: SCHEDULE.description, next_runs: SCHEDULE.next_runs });
    const one = await client.getSchedule(SCHEDULE.id);
    assert.deepEqual(one.runs, []);
    const paused = await client.updateSchedule(SCHEDULE.id, { enabled: false });
    assert.equal(paused.enabled, false);
    assert.equal(paused.next_run_at, null);
    assert.equal(await client.deleteSchedule(SCHEDULE.id), undefined);

    const seen = fetch.calls.map((c) => [c.init.method, c.url.pathname + c.url.search]);
    assert.deepEqual(seen, [
      ["GET", "/api/schedules?limit=50&owner=user-1"],
      ["POST", "/api/schedules"],
      ["POST", "/api/schedules/preview"],
      ["GET", `/api/schedules/${SCHEDULE.id}`],
      ["PATCH", `/api/schedules/${SCHEDULE.id}`],
      ["DELETE", `/api/schedules/${SCHEDULE.id}`],
    ]);
    for (const { init } of fetch.calls) {
      assert.equal(init.redirect, "manual");
      assert.equal(init.headers.Accept, "application/json");
      assert.equal(init.headers.Authorization, `Bearer ${SECRET}`);
    }
    for (const i of [1, 2]) {
      assert.equal(fetch.calls[i].init.headers["Content-Type"], "application/json");
      assert.deepEqual(JSON.parse(fetch.calls[i].init.body), SCHEDULE_BODY, "the body is sent as given");
    }
    assert.deepEqual(JSON.parse(fetch.calls[4].init.body), { enabled: false });
    assert.equal(fetch.calls[0].init.body, undefined);
    assert.equal(fetch.calls[5].init.body, undefined);
  });

  test("an empty query sends none; ids are path-encoded", async () => {
    const fetch = fakeFetch(() => json(200, { schedules: [] }));
    const { client } = fakeClient(fetch);
    await client.listSchedules();
    await client.listSchedules({ owner: "", limit: null });
    assert.deepEqual(fetch.calls.map((c) => c.url.search), ["", ""]);
    const fetch2 = fakeFetch(() => json(404, { error_code: "not_found", message: "Schedule not found" }));
    await rejects(fakeClient(fetch2).client.getSchedule("a/b?c"), { status: 404, code: "not_found", message: "Schedule not found" }, SECRET);
    assert.equal(fetch2.calls[0].url.pathname, "/api/schedules/a%2Fb%3Fc");
  });

  test("a 400 keeps the server's message naming the field; errors never hold the token", async () => {
    const bad = (message) => fakeFetch(() => json(400, { error_code: "invalid_request", message }));
    const cron = "cron: expected 5 fields, got 2";
    await rejects(fakeClient(bad(cron)).client.previewSchedule({ ...SCHEDULE_BODY, cron: "0 2" }), { status: 400, code: "invalid_request", message: cron }, SECRET);
    const tz = "time_zone: unknown time zone 'Mars/Olympus'";
    await rejects(fakeClient(bad(tz)).client.createSchedule({ ...SCHEDULE_BODY, time_zone: "Mars/Olympus" }), { status: 400, code: "invalid_request", message: tz }, SECRET);
    const echo = `notify.emails[0]: not allowed (token ${SECRET})`;
    const err = await rejects(fakeClient(bad(echo)).client.updateSchedule(SCHEDULE.id, { notify: { emails: ["x@y.z"] } }), { status: 400, code: "invalid_request" }, SECRET);
    assert.equal(err.message, "notify.emails[0]: not allowed (token [redacted])");
    const gone = fakeFetch(() => json(404, { error_code: "not_found", message: "Schedule not found" }));
    await rejects(fakeClient(gone).client.deleteSchedule(SCHEDULE.id), { status: 404, code: "not_found" }, SECRET);
    const plain = fakeFetch(() => new Response("nope", { status: 403, headers: { "content-type": "text/plain" } }));
    await rejects(fakeClient(plain).client.listSchedules(), { status: 403, code: "forbidden" }, SECRET);
    const down = fakeFetch((url, init) => { throw new TypeError(`bad header ${init.headers.Authorization}`); });
    await rejects(fakeClient(down).client.createSchedule(SCHEDULE_BODY), { status: 0, code: "network_error" }, SECRET);
  });

  test("a 200 where 201 or 204 is due is accepted; any other success status is an error", async () => {
    const ok = fakeFetch(() => json(200, SCHEDULE));
    assert.equal((await fakeClient(ok).client.createSchedule(SCHEDULE_BODY)).id, SCHEDULE.id);
    assert.equal(await fakeClient(ok).client.deleteSchedule(SCHEDULE.id), undefined);
    const odd = fakeFetch(() => json(202, SCHEDULE));
    await rejects(fakeClient(odd).client.previewSchedule(SCHEDULE_BODY), { status: 202 }, SECRET);
  });

  test("a preview can be aborted (a newer edit replaces it)", async () => {
    // Like fetch: rejects an AbortError when the signal is (or becomes) aborted.
    const fetch = fakeFetch((url, init) => new Promise((resolve, reject) => {
      const abort = () => reject(new DOMException("aborted", "AbortError"));
      if (init.signal?.aborted) abort();
      init.signal?.addEventListener("abort", abort);
    }));
    const { client } = fakeClient(fetch);
    const ctl = new AbortController();
    const pending = client.previewSchedule(SCHEDULE_BODY, { signal: ctl.signal });
    ctl.abort();
    const err = await rejects(pending, { status: 0, code: "aborted" }, SECRET);
    assert.equal(err.name, "AbortError");
    await rejects(client.listSchedules({ signal: AbortSignal.abort() }), { code: "aborted" });
    assert.equal(fetch.calls.length, 1, "an aborted signal sends nothing");
  });

  test("a schedule run downloads through the job API", async () => {
    const fetch = fakeFetch(() => json(200, { ...JOB, trigger: "schedule", status: "succeeded", rows: 3, download_url: S3 }));
    const { client, rec } = fakeClient(fetch);
    const out = await client.downloadJob(JOB.id);
    assert.equal(out.fileName, JOB.file_name);
    assert.equal(fetch.calls[0].url.pathname, `/api/exports/${JOB.id}`);
    assert.deepEqual(rec.calls.map((c) => c.url), [S3]);
  });
});

// ------------------------------------------------------------------------- webhook secrets (fake fetch)

const WEBHOOK_SECRET = {
  id: "9a1c3e5f7b2d4a6c8e0f1a3b5c7d9e2f", secret: "whsec_BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSY=",
  created_at: "2026-12-06T17:00:00.000Z", note: "the secret is shown once: store it now; webhooks name it by id",
};

describe("webhook secrets (fake fetch)", () => {
  test("createWebhookSecret and deleteWebhookSecret: route, method, no body, headers and answer", async () => {
    const fetch = fakeFetch((url, init) => {
      if (url.pathname === "/api/webhook-secrets" && init.method === "POST") {
        return json(201, WEBHOOK_SECRET, { location: `/api/webhook-secrets/${WEBHOOK_SECRET.id}` });
      }
      if (url.pathname === `/api/webhook-secrets/${WEBHOOK_SECRET.id}` && init.method === "DELETE") {
        return new Response(null, { status: 204 });
      }
      return json(404, { error_code: "not_found", message: "no such webhook secret" });
    });
    const { client } = fakeClient(fetch);
    assert.deepEqual(await client.createWebhookSecret(), WEBHOOK_SECRET);
    assert.equal(await client.deleteWebhookSecret(WEBHOOK_SECRET.id), undefined);
    assert.deepEqual(fetch.calls.map((c) => [c.init.method, c.url.href]), [
      ["POST", "https://api.example.com/api/webhook-secrets"],
      ["DELETE", `https://api.example.com/api/webhook-secrets/${WEBHOOK_SECRET.id}`],
    ]);
    for (const { init } of fetch.calls) {
      assert.equal(init.redirect, "manual");
      assert.equal(init.headers.Accept, "application/json");
      assert.equal(init.headers.Authorization, `Bearer ${SECRET}`);
      assert.equal(init.body, undefined, "neither sends a body");
      assert.equal(init.headers["Content-Type"], undefined);
    }
  });

  test("a 404 (another caller's secret, or none) is an ExportError; ids are path-encoded; the token never leaks", async () => {
    const fetch = fakeFetch(() => json(404, { error_code: "not_found", message: "no such webhook secret" }));
    const { client } = fakeClient(fetch);
    await rejects(client.deleteWebhookSecret("a/b?c"), { status: 404, code: "not_found", message: "no such webhook secret" }, SECRET);
    assert.equal(fetch.calls[0].url.pathname, "/api/webhook-secrets/a%2Fb%3Fc");
    const unauthorized = fakeFetch(() => json(401, { error_code: "unauthorized", message: `bad token ${SECRET}` }));
    const err = await rejects(fakeClient(unauthorized).client.createWebhookSecret(), { status: 401, code: "unauthorized" }, SECRET);
    assert.equal(err.message, "bad token [redacted]");
    const ok200 = fakeFetch(() => json(200, WEBHOOK_SECRET));
    assert.equal((await fakeClient(ok200).client.createWebhookSecret()).id, WEBHOOK_SECRET.id, "a 200 where 201 is due is accepted");
    const odd = fakeFetch(() => json(202, WEBHOOK_SECRET));
    await rejects(fakeClient(odd).client.createWebhookSecret(), { status: 202 }, SECRET);
    await rejects(client.createWebhookSecret({ signal: AbortSignal.abort() }), { code: "aborted" });
    assert.equal(fetch.calls.length, 1, "an aborted signal sends nothing");
  });

  test("a job's and a schedule's notify.webhooks are sent as given; a 400 keeps the server's message", async () => {
    const notify = { emails: [], webhooks: [{ url: "https://hooks.example.com/x?token=t", secret_id: WEBHOOK_SECRET.id }] };
    const withHooks = {
      ...JOB, notify: { emails: [], on_empty: true, webhooks: notify.webhooks },
      webhooks: [{ url: notify.webhooks[0].url, attempts: 0, last_status: null, delivered: false }],
    };
    const fetch = fakeFetch(() => json(202, withHooks, { location: `/api/exports/${JOB.id}` }));
    const { client } = fakeClient(fetch);
    const job = await client.startJob({ kind: "leads", format: "csv", notify });
    assert.deepEqual(job.webhooks, withHooks.webhooks);
    assert.deepEqual(JSON.parse(fetch.calls[0].init.body), { kind: "leads", format: "csv", notify });
    const plain = await client.startJob({ kind: "leads" });
    assert.equal(plain.id, JOB.id);
    assert.deepEqual(JSON.parse(fetch.calls[1].init.body), { kind: "leads" }, "no notify unless given");

    const message = "notify.webhooks[0].secret_id names no webhook secret of yours (POST /api/webhook-secrets makes one)";
    const bad = fakeFetch(() => json(400, { error_code: "invalid_request", message }));
    await rejects(fakeClient(bad).client.createSchedule({ ...SCHEDULE_BODY, notify }), { status: 400, code: "invalid_request", message }, SECRET);
    assert.deepEqual(JSON.parse(bad.calls[0].init.body).notify, notify);
  });
});

// ------------------------------------------------------------------------- real server

/** A client of the real server with a recording download. */
function liveClient(token, extra = {}) {
  const rec = recorder();
  const client = createExportClient({ baseUrl: BASE_URL, getToken: () => token, fetch: globalThis.fetch, download: rec.download, pollMs: 100, maxPollMs: 1000, ...extra });
  return { client, rec };
}

/** Runs `fn`; over a chat rate limit (10 a minute per user) waits for the next window once. */
async function patient(fn) {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof ExportError) || e.code !== "rate_limited") throw e;
    await sleep(Math.min(e.retryAfter ?? 60, 65) * 1000 + 1000);
    return fn();
  }
}

/** The same export fetched directly, as curl would: the inline file, or the stored file. */
async function direct(token, method, path, params = {}) {
  const qs = method === "GET" ? `?${new URLSearchParams(params)}` : "";
  const init = { method, redirect: "manual", headers: { Authorization: `Bearer ${token}` } };
  if (method === "POST") {
    init.body = JSON.stringify(params);
    init.headers["Content-Type"] = "application/json";
  }
  let res = await fetch(`${BASE_URL}${path}${qs}`, init);
  if (res.status === 429) {
    await sleep(Number(res.headers.get("retry-after") ?? 60) * 1000 + 1000);
    res = await fetch(`${BASE_URL}${path}${qs}`, init);
  }
  if (res.status === 303) res = await fetch(res.headers.get("location"));
  else if (method === "POST") res = await fetch((await res.json()).download_url);
  assert.equal(res.status, 200, `direct ${path}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

const DAY = String.raw`\d{4}-\d{2}-\d{2}`;
const isZip = (bytes) => bytes.subarray(0, 2).toString() === "PK";
const isParquet = (bytes) => bytes.length > 8 && bytes.subarray(0, 4).toString() === "PAR1" && bytes.subarray(-4).toString() === "PAR1";

describe("against the server", { skip: !live && "set BASE_URL, ADMIN_TOKEN and USER_TOKEN", timeout: TIMEOUT }, () => {
  test("exportSessions: CSV and JSON by link, the same bytes as the direct export", async () => {
    const { client, rec } = liveClient(ADMIN_TOKEN);
    const csv = await client.exportSessions();
    assert.match(csv.fileName, new RegExp(`^chat-sessions-export-${DAY}\\.csv$`));
    assert.equal(csv.via, "link");
    assert.ok(rec.last().url.includes("X-Amz-Signature"), "the link is a presigned URL");
    assert.equal(rec.last().fileName, csv.fileName);
    const expected = await direct(ADMIN_TOKEN, "GET", "/api/admin/sessions/export");
    assert.ok(rec.last().bytes.equals(expected), "CSV bytes");
    assert.ok(rec.last().bytes.toString().startsWith("SessionID,UserID,MessageID,MessageContent,Sender,Timestamp\r\n"));
    assert.ok(csv.rows > 0);

    const js = await client.exportSessions({ format: "json", params: { format: "csv", time_zone: "Europe/Berlin", bom: null } });
    assert.match(js.fileName, new RegExp(`^chat-sessions-export-${DAY}\\.json$`));
    const rows = JSON.parse(rec.last().bytes);
    assert.equal(rows.length, js.rows);
    assert.ok(rec.last().bytes.equals(await direct(ADMIN_TOKEN, "GET", "/api/admin/sessions/export", { format: "json" })));

    const gz = await client.exportSessions({ params: { compression: "gzip" } });
    assert.match(gz.fileName, /\.csv\.gz$/);
    assert.equal(rec.last().bytes[0], 0x1f);

    // JSON Lines: the JSON export's objects, one per line.
    const lines = await client.exportSessions({ format: "jsonl" });
    assert.match(lines.fileName, new RegExp(`^chat-sessions-export-${DAY}\\.jsonl$`));
    const text = rec.last().bytes.toString();
    assert.ok(text.endsWith("}\n"));
    const objects = text.split("\n").slice(0, -1).map((line) => JSON.parse(line));
    assert.deepEqual(objects, rows);
    assert.ok(rec.last().bytes.equals(await direct(ADMIN_TOKEN, "GET", "/api/admin/sessions/export", { format: "jsonl" })));
  });

  test("exportLeads: CSV of 32 columns, JSON with chosen columns, Excel, Parquet", async () => {
    const { client, rec } = liveClient(USER_TOKEN);
    const csv = await client.exportLeads();
    assert.match(csv.fileName, new RegExp(`^leads-export-${DAY}\\.csv$`));
    const text = rec.last().bytes.toString();
    assert.equal(text.split("\r\n")[0].split(",").length, 32);
    assert.ok(text.startsWith("Lead ID,Chatbot Name,Company Name,"));
    assert.ok(rec.last().bytes.equals(await direct(USER_TOKEN, "GET", "/api/hybrid-leads/export")));
    assert.ok(csv.rows > 0, "the user's company has leads");

    const admin = liveClient(ADMIN_TOKEN);
    const js = await admin.client.exportLeads({ columns: ["Lead ID", "email", "Company Name"], companyId: ["comp-acme", "comp-globex"], confidence: null, search: "" }, { format: "json" });
    assert.match(js.fileName, /\.json$/);
    const rows = JSON.parse(admin.rec.last().bytes);
    assert.ok(rows.length > 0);
    assert.deepEqual(Object.keys(rows[0]), ["lead_id", "email", "company_name"]);
    assert.ok(rows.every((r) => typeof r.lead_id === "string"));
    const expected = await direct(ADMIN_TOKEN, "GET", "/api/hybrid-leads/export", { columns: "Lead ID,email,Company Name", companyId: "comp-acme,comp-globex", format: "json" });
    assert.ok(admin.rec.last().bytes.equals(expected), "JSON bytes");

    const xlsx = await client.exportLeads({ format: "csv" }, { format: "xlsx" });
    assert.match(xlsx.fileName, /\.xlsx$/);
    assert.ok(isZip(rec.last().bytes), "a workbook");

    // Parquet (zstd inside by default; snappy when asked): binary, byte for byte the direct export.
    for (const compression of [undefined, "snappy", "none"]) {
      const pq = await client.exportLeads({ compression }, { format: "parquet" });
      assert.match(pq.fileName, new RegExp(`^leads-export-${DAY}\\.parquet$`));
      const bytes = rec.last().bytes;
      assert.ok(isParquet(bytes), `a Parquet file (${compression ?? "default"})`);
      const params = compression ? { format: "parquet", compression } : { format: "parquet" };
      assert.ok(bytes.equals(await direct(USER_TOKEN, "GET", "/api/hybrid-leads/export", params)), `Parquet bytes (${compression ?? "default"})`);
    }
  });

  test("exportChats: CSV like the direct POST; Excel for one client as admin", async () => {
    const { client, rec } = liveClient(USER_TOKEN);
    const csv = await patient(() => client.exportChats({ limit: 40, include_geo: true }, { format: "csv" }));
    assert.match(csv.fileName, new RegExp(`^chat-export-${DAY}\\.csv$`));
    assert.equal(csv.via, "link");
    assert.equal(csv.rows, 40);
    const expected = await direct(USER_TOKEN, "POST", "/client/export/chats", { format: "csv", limit: 40, include_geo: true });
    assert.ok(rec.last().bytes.equals(expected), "CSV bytes");

    const admin = liveClient(ADMIN_TOKEN);
    const x = await patient(() => admin.client.exportChats({ client_id: "client-beta", limit: "20", include_meta: "true" }, { format: "excel" }));
    assert.match(x.fileName, /^chat-export-.*\.xlsx$/);
    assert.ok(isZip(admin.rec.last().bytes));
    assert.ok(x.rows > 0 && x.rows <= 20);
  });

  test("exportConversations: CSV and JSON like the direct export", async () => {
    const { client, rec } = liveClient(USER_TOKEN);
    const csv = await patient(() => client.exportConversations({ limit: 25 }));
    assert.match(csv.fileName, new RegExp(`^conversations-export-${DAY}\\.csv$`));
    assert.ok(rec.last().bytes.toString().startsWith("Client ID,Conversation ID,"));
    assert.ok(rec.last().bytes.equals(await direct(USER_TOKEN, "GET", "/client/export/conversations", { limit: 25 })));

    const admin = liveClient(ADMIN_TOKEN);
    const js = await patient(() => admin.client.exportConversations({ client_id: "client-gamma", date_from: "2000-01-01" }, { format: "json" }));
    assert.match(js.fileName, /\.json$/);
    const rows = JSON.parse(admin.rec.last().bytes);
    assert.equal(rows.length, js.rows);
    assert.ok(rows.every((r) => r.client_id === "client-gamma"));
    assert.ok(admin.rec.last().bytes.equals(await direct(ADMIN_TOKEN, "GET", "/client/export/conversations", { client_id: "client-gamma", date_from: "2000-01-01", format: "json" })));
  });

  test("jobs: startJob, watchJob with progress, downloadJob; the cache", async () => {
    const { client, rec } = liveClient(ADMIN_TOKEN);
    const job = await client.startJob({ kind: "sessions", format: "json", params: { time_zone: "UTC" }, noCache: true });
    assert.match(job.id, /^[0-9a-f]{32}$/);
    assert.equal(job.kind, "sessions");
    assert.equal(job.cached, false);
    const seen = [];
    const done = await client.watchJob(job.id, (j) => seen.push(j));
    assert.ok(seen.length >= 1, "onProgress was called");
    assert.ok(seen.every((j) => j.id === job.id && typeof j.rows_done === "number"));
    assert.equal(seen.at(-1).status, "succeeded");
    assert.equal(done.status, "succeeded");
    assert.ok(done.rows > 0);

    const out = await client.downloadJob(job.id);
    assert.equal(out.fileName, done.file_name);
    assert.equal(out.job.id, job.id);
    assert.equal(rec.calls.length, 1);
    assert.ok(rec.last().bytes.equals(await direct(ADMIN_TOKEN, "GET", "/api/admin/sessions/export", { format: "json", time_zone: "UTC" })));

    const again = await client.startJob({ kind: "sessions", format: "json", params: { time_zone: "UTC" } });
    assert.equal(again.cached, true, "an equal job that just succeeded comes from the cache");
    const key = `cl-test-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const k1 = await client.startJob({ kind: "sessions", format: "csv", idempotencyKey: key, noCache: true });
    const k2 = await client.startJob({ kind: "sessions", format: "csv", idempotencyKey: key, noCache: true });
    assert.equal(k2.id, k1.id, "the same idempotency key answers the same job");
    await client.watchJob(k1.id);
  });

  test("exportLeads with async: true runs as a job and gives the same file", async () => {
    const { client, rec } = liveClient(USER_TOKEN);
    const progress = [];
    const out = await client.exportLeads({ status: null }, { async: true, onProgress: (j) => progress.push(j.status) });
    assert.equal(out.via, "job");
    assert.match(out.fileName, /^leads-export-.*\.csv$/);
    assert.equal(out.job.status, "succeeded");
    assert.equal(out.job.kind, "leads");
    assert.equal(out.rows, out.job.rows);
    assert.ok(progress.length >= 1 && progress.at(-1) === "succeeded");
    assert.ok(rec.last().url.includes("X-Amz-Signature"));
    assert.ok(rec.last().bytes.equals(await direct(USER_TOKEN, "GET", "/api/hybrid-leads/export")));
  });

  test("a limit above asyncAboveRows runs as a job by itself", async () => {
    const { client, rec } = liveClient(ADMIN_TOKEN, { asyncAboveRows: 5 });
    const out = await patient(() => client.exportConversations({ limit: 6, client_id: "client-alpha" }, { format: "json" }));
    assert.equal(out.via, "job");
    assert.equal(out.job.kind, "conversations");
    assert.equal(JSON.parse(rec.last().bytes).length, out.rows);
    assert.ok(out.rows <= 6);
  });

  test("cancelJob", async () => {
    const { client } = liveClient(ADMIN_TOKEN);
    // The worker may finish a small job before the cancel arrives: try a few times.
    let cancelled;
    for (let attempt = 0; attempt < 8 && !cancelled; attempt++) {
      const job = await client.startJob({ kind: "sessions", format: "xlsx", noCache: true });
      try {
        cancelled = await client.cancelJob(job.id);
      } catch (e) {
        assert.equal(e.code, "job_finished", `cancel: ${e.message}`);
        assert.equal(e.status, 409);
      }
    }
    assert.ok(cancelled, "one of the jobs was cancelled before it finished");
    assert.equal(cancelled.status, "cancelled");
    await rejects(client.watchJob(cancelled.id), { status: 409, code: "cancelled" }, ADMIN_TOKEN);
    await rejects(client.downloadJob(cancelled.id), { status: 409, code: "job_not_succeeded" }, ADMIN_TOKEN);
    await rejects(client.cancelJob(cancelled.id), { status: 409, code: "job_finished" }, ADMIN_TOKEN);
  });

  test("deleteJob: the job and its file are gone, and so is every way to them", async () => {
    const { client } = liveClient(ADMIN_TOKEN);
    const job = await client.startJob({ kind: "leads", format: "csv", noCache: true });
    const done = await client.watchJob(job.id);
    const stored = await fetch(done.download_url);
    assert.equal(stored.status, 200);
    assert.equal(await client.deleteJob(job.id), undefined);
    await rejects(client.downloadJob(job.id), { status: 404, code: "not_found" }, ADMIN_TOKEN);
    await rejects(client.deleteJob(job.id), { status: 404, code: "not_found" }, ADMIN_TOKEN);
    await rejects(client.cancelJob(job.id), { status: 404, code: "not_found" }, ADMIN_TOKEN);
    assert.notEqual((await fetch(done.download_url)).status, 200, "the stored file is deleted");
  });

  test("listExports: pages with the cursor, filters", async () => {
    const { client } = liveClient(ADMIN_TOKEN);
    const p1 = await client.listExports({ limit: 2 });
    assert.equal(p1.exports.length, 2);
    assert.equal(typeof p1.next_cursor, "string");
    const p2 = await client.listExports({ limit: 2, cursor: p1.next_cursor });
    assert.ok(p2.exports.length >= 1);
    const ids = new Set(p1.exports.map((j) => j.id));
    assert.ok(p2.exports.every((j) => !ids.has(j.id)), "page 2 does not repeat page 1");
    assert.ok(p2.exports[0].created_at <= p1.exports[1].created_at, "newest first");

    const cancelled = await client.listExports({ status: "cancelled", kind: "sessions", limit: 100, cursor: null });
    assert.ok(cancelled.exports.length >= 1);
    assert.ok(cancelled.exports.every((j) => j.status === "cancelled" && j.kind === "sessions"));
    const theirs = await client.listExports({ owner: "nobody-has-this-sub" });
    assert.deepEqual(theirs, { exports: [], next_cursor: null });
    await rejects(client.listExports({ cursor: "not-a-cursor" }), { status: 400, code: "invalid_request" }, ADMIN_TOKEN);
    const user = liveClient(USER_TOKEN).client;
    await rejects(user.listExports({ owner: "someone-else" }), { status: 403, code: "forbidden" }, USER_TOKEN);
  });

  test("errors: 401, 403, 400 with the server's message, the leads shape, 404", async () => {
    const bad = "not.a.valid-jwt-" + "x".repeat(20);
    await rejects(liveClient(bad).client.exportSessions(), { status: 401, code: "unauthorized", message: /token|Authentication/i }, bad);
    await rejects(liveClient(bad).client.exportLeads({}), { status: 401, code: "unauthorized" }, bad);

    const user = liveClient(USER_TOKEN).client;
    await rejects(user.exportSessions(), { status: 403, code: "forbidden", message: "Admin role required" }, USER_TOKEN);
    await rejects(user.startJob({ kind: "sessions" }), { status: 403, code: "forbidden" }, USER_TOKEN);
    await rejects(user.exportLeads({ companyId: "comp-globex" }), { status: 403, code: "forbidden" }, USER_TOKEN);

    const admin = liveClient(ADMIN_TOKEN).client;
    const res = await fetch(`${BASE_URL}/api/admin/sessions/export?time_zone=Mars%2FOlympus`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } });
    const serverMessage = (await res.json()).message;
    await rejects(admin.exportSessions({ params: { time_zone: "Mars/Olympus" } }), { status: 400, code: "invalid_request", message: serverMessage }, ADMIN_TOKEN);
    await rejects(admin.exportSessions({ format: "pdf" }), { status: 400, code: "invalid_request", message: /format/ }, ADMIN_TOKEN);
    await rejects(admin.exportChats({ limit: 0 }), { status: 400, code: "invalid_request", message: /limit/ }, ADMIN_TOKEN);

    // The leads route's own shape: {"success": false, "message", "error"}
    const leads = await rejects(user.exportLeads({ confidence: "extreme" }, { format: "xlsx" }), { status: 400, code: "invalid_request" }, USER_TOKEN);
    assert.equal(leads.message, "Failed to export leads Excel: confidence must be one of: high, medium, low; got 'extreme'");
    await rejects(user.exportLeads({ period: 14 }), { status: 400, code: "invalid_request", message: /period/ });

    // Parquet's file options: its codec only, no BOM, no formula guard; the codecs are Parquet's only.
    await rejects(user.exportLeads({ compression: "gzip" }, { format: "parquet" }), { status: 400, code: "invalid_request", message: /does not apply to the parquet format/ }, USER_TOKEN);
    await rejects(user.exportLeads({ compression: "zstd" }, { format: "csv" }), { status: 400, code: "invalid_request", message: /applies to the parquet format only/ }, USER_TOKEN);
    await rejects(admin.exportSessions({ format: "parquet", params: { bom: true } }), { status: 400, code: "invalid_request", message: /bom applies to the csv format only/ }, ADMIN_TOKEN);
    await rejects(admin.exportSessions({ format: "parquet", params: { spreadsheet_safe: false } }), { status: 400, code: "invalid_request", message: /spreadsheet_safe applies to csv and Excel files only/ }, ADMIN_TOKEN);
    await rejects(admin.exportChats({ compression: "zip", limit: 5 }, { format: "parquet" }), { status: 400, code: "invalid_request", message: /parquet/ }, ADMIN_TOKEN);

    await rejects(admin.downloadJob("0".repeat(32)), { status: 404, code: "not_found" }, ADMIN_TOKEN);
    await rejects(admin.cancelJob("f".repeat(32)), { status: 404, code: "not_found" }, ADMIN_TOKEN);
  });

  test("getToken is called for every request", async () => {
    let tokens = 0;
    let requests = 0;
    const rec = recorder();
    const client = createExportClient({
      baseUrl: BASE_URL,
      getToken: async () => { tokens++; return USER_TOKEN; },
      fetch: (...args) => { requests++; return globalThis.fetch(...args); },
      download: rec.download,
      pollMs: 50,
    });
    await client.exportLeads({ status: "new" }, { async: true });
    await client.listExports({ limit: 1 });
    assert.ok(requests >= 4, `start, polls, read, list (${requests})`);
    assert.equal(tokens, requests);
  });
});
