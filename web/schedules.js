// The console's Schedules page (docs/schedules.md): the caller's schedules with pause,
// resume, delete (confirmed in place) and their last runs (each downloadable through the
// job API), and a form that creates one, previewing its cadence and windows as it is
// edited. Plain ES module; app.js hands it the console's helpers (client, toasts, busy
// buttons) so the two share one client and one toast area.
//
// Times are shown in the schedule's time zone with its UTC offset (`<time datetime>`), and
// spelt out in full for screen readers.

const PREVIEW_DELAY_MS = 300;
const POLL_MS = 2000;
const ACTIVE = new Set(["queued", "running"]);

const KIND_NAMES = { leads: "Leads", chats: "Chats", conversations: "Conversations", sessions: "Sessions" };
const FORMATS = {
  leads: [["csv", "CSV"], ["xlsx", "Excel"], ["json", "JSON"], ["jsonl", "JSON Lines"], ["parquet", "Parquet"]],
  conversations: [["csv", "CSV"], ["xlsx", "Excel"], ["json", "JSON"], ["jsonl", "JSON Lines"], ["parquet", "Parquet"]],
  sessions: [["csv", "CSV"], ["xlsx", "Excel"], ["json", "JSON"], ["jsonl", "JSON Lines"], ["parquet", "Parquet"]],
  chats: [
    ["csv", "CSV"],
    ["json", "JSON"],
    ["jsonl", "JSON Lines"],
    ["parquet", "Parquet"],
    ["excel", "Excel"],
    ["both", "Both (ZIP of JSON and Excel)"],
  ],
};
const FORMAT_NAMES = {
  csv: "CSV",
  xlsx: "Excel",
  excel: "Excel",
  json: "JSON",
  jsonl: "JSON Lines",
  parquet: "Parquet",
  both: "JSON + Excel",
};
const WINDOW_NAMES = { none: "None", previous_period: "Previous period", incremental: "Incremental" };
const WINDOW_HINTS = {
  none: "Each run exports everything as it stands at the run.",
  previous_period: "Each run exports the period that just ended (e.g. yesterday for a daily schedule), in the time zone.",
  incremental: "Each run exports what arrived since the last run that succeeded.",
};
/** Cadence presets: [value, label]; the value is `cron|...` or `rate|...`. */
const PRESETS = [
  ["rate|15 minutes", "Every 15 minutes"],
  ["rate|1 hour", "Every hour"],
  ["cron|0 2 * * *", "Every day at 02:00"],
  ["cron|0 8 * * 1-5", "Weekdays at 08:00"],
  ["cron|0 6 * * 1", "Every Monday at 06:00"],
  ["cron|0 3 1 * *", "The 1st of every month at 03:00"],
  ["rate|1 day", "Every day at midnight"],
];
const DEFAULT_PRESET = "cron|0 2 * * *";

/** Form controls a 400's field names point at (the first matching prefix wins: longest first). */
const FIELD_TARGETS = [
  ["export.params.status", "sched-lead-status"],
  ["export.params.category", "sched-lead-category"],
  ["export.params.chatbotId", "sched-lead-chatbot"],
  ["export.params.companyId", "sched-lead-companies"],
  ["export.params.client_id", "sched-client"],
  ["export.format", "sched-format"],
  ["export.kind", "sched-kind"],
  ["export", "sched-kind"],
  ["name", "sched-name"],
  ["cron", "sched-cron"],
  ["rate", "sched-rate"],
  ["time_zone", "sched-tz"],
  ["window", "sched-window"],
  ["lag_seconds", "sched-window"],
  ["start_at", "sched-window"],
  ["notify.webhooks.secret_id", "sched-webhook-secret"],
  ["notify.webhooks", "sched-webhook-url"],
  ["notify", "sched-emails"],
  ["enabled", "sched-enabled"],
];
const FIELD_PATTERN = /(?:^|[\s(`'"])((?:export|params|name|cron|rate|time_zone|window|lag_seconds|start_at|notify|enabled)(?:\.[A-Za-z_]+|\[\d+\])*)\s*:/;
/** A webhook's field, which the server may name without a colon (`notify.webhooks[0].url names ...`). */
const WEBHOOK_FIELD_PATTERN = /(?:^|[\s(`'"])(notify\.webhooks(?:\[\d+\])?(?:\.(?:url|secret_id))?)(?=[\s:,]|$)/;

/** A webhook URL's host (and port): what the console shows of it in a list. */
export function webhookHost(url) {
  try {
    return new URL(url).host || String(url ?? "");
  } catch {
    return String(url ?? "");
  }
}

/** The browser's IANA time zone (the form's default). */
export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** `GMT+01:00` as `UTC+01:00`, `GMT` as `UTC+00:00`. */
function offsetText(name) {
  const m = /^(?:GMT|UTC)([+-]\d{1,2}(?::?\d{2})?)?$/.exec(name ?? "");
  if (!m) return name ?? "";
  if (!m[1]) return "UTC+00:00";
  const sign = m[1][0];
  const [h, min = "00"] = m[1].slice(1).split(":");
  return `UTC${sign}${h.padStart(2, "0")}:${min}`;
}

/**
 * A time in a time zone: `text` (e.g. "Tue 2026-12-01 03:00 UTC+01:00"), `spoken` (e.g.
 * "Tuesday, December 1, 2026 at 3:00 AM Central European Standard Time") and the zone used
 * (UTC when `timeZone` is not one the browser knows).
 */
export function zonedTime(iso, timeZone) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return null;
  const zone = timeZone || "UTC";
  let parts;
  try {
    parts = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, weekday: "short", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "longOffset",
    }).formatToParts(d);
  } catch {
    return zone === "UTC" ? null : zonedTime(iso, "UTC"); // not a zone this browser knows
  }
  const p = Object.fromEntries(parts.map((x) => [x.type, x.value]));
  const seconds = p.second && p.second !== "00" ? `:${p.second}` : "";
  const text = `${p.weekday} ${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${seconds} ${offsetText(p.timeZoneName)}`;
  const spoken = new Intl.DateTimeFormat("en-US", {
    timeZone: zone, weekday: "long", year: "numeric", month: "long", day: "numeric",
    hour: "numeric", minute: "2-digit", ...(seconds ? { second: "2-digit" } : {}), timeZoneName: "long",
  }).format(d);
  return { text, spoken, zone };
}

/**
 * An answer that names a field of the form: any 400, the 403 of a recipient the caller
 * may not email (`notify.emails[0]: ...`) and the 409 of a change the schedule does not
 * take (`lag_seconds: ...`).
 */
function namesAField(err) {
  return err?.status === 400 || ([403, 409].includes(err?.status) && fieldOfMessage(err.message) !== null);
}

/** Parses a 400's message for the field it names: `cron: ...` -> "cron". */
export function fieldOfMessage(message) {
  const text = String(message ?? "");
  const m = FIELD_PATTERN.exec(text) ?? WEBHOOK_FIELD_PATTERN.exec(text);
  if (!m) return null;
  return m[1].startsWith("params") ? `export.${m[1]}` : m[1];
}

/** The form control (its id) for a field of a 400. */
function targetOf(field) {
  if (!field) return null;
  const plain = field.replace(/\[\d+\]/g, "");
  for (const [prefix, id] of FIELD_TARGETS) {
    if (plain === prefix || plain.startsWith(`${prefix}.`)) return id;
  }
  return null;
}

export function createSchedulesPage(ctx) {
  const { $, $$, el, getClient, toastSuccess, toastError, errorText, withBusy, isAdmin, safeText, formatBytes, rowCount } = ctx;

  const state = {
    items: [],
    rows: new Map(),
    generation: 0,
    loaded: false,
    visible: false,
    detailsId: null,
    details: null,
    detailsGeneration: 0,
    pollTimer: null,
    pollFailed: false,
    previewTimer: null,
    previewAbort: null,
    previewSeq: 0,
    serverErrorIds: new Set(),
    secretSeq: 0,
  };

  // ---------------------------------------------------------------------- time markup

  /** `<time>`: the short text for the eye, the long one for a screen reader. */
  function timeNode(iso, timeZone) {
    const t = zonedTime(iso, timeZone);
    if (!t) return el("span", { className: "muted", text: "—" });
    return el("time", { datetime: iso, title: `${iso} (UTC)` }, [
      el("span", { "aria-hidden": "true", text: t.text }),
      el("span", { className: "visually-hidden", text: t.spoken }),
    ]);
  }

  /** "from <start> up to <end>", or "everything up to <end>" for a window without a start. */
  function windowNodes(start, end, timeZone) {
    if (!start && !end) return [el("span", { className: "muted", text: "—" })];
    if (!start) return [el("span", { text: "everything up to " }), timeNode(end, timeZone)];
    return [el("span", { text: "from " }), timeNode(start, timeZone), el("span", { text: " up to " }), timeNode(end, timeZone)];
  }

  // ---------------------------------------------------------------------- describing

  function paramsSummary(params) {
    const entries = Object.entries(params ?? {}).filter(([, v]) => v !== null && v !== undefined && v !== "");
    return entries.map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(", ") : String(v)}`).join(", ");
  }

  function exportSummary(spec) {
    if (!spec) return "";
    const kind = KIND_NAMES[spec.kind] ?? spec.kind ?? "";
    const format = FORMAT_NAMES[spec.format] ?? (spec.format ? String(spec.format).toUpperCase() : "");
    const params = paramsSummary(spec.params);
    return [kind, format, params].filter(Boolean).join(" · ");
  }

  function cadenceText(s) {
    const raw = s.cron ? `cron ${s.cron}` : s.rate ? `rate ${s.rate}` : "";
    return { description: s.description || raw, raw };
  }

  // ---------------------------------------------------------------------- the list

  function resetAll() {
    state.generation += 1;
    state.detailsGeneration += 1;
    state.items = [];
    state.rows.clear();
    state.loaded = false;
    state.visible = false;
    state.detailsId = null;
    state.details = null;
    stopPolling();
    clearTimeout(state.previewTimer);
    state.previewAbort?.abort();
    $("#schedules tbody").replaceChildren();
    $("#schedules-empty").hidden = true;
    $("#schedule-details").hidden = true;
    resetForm();
  }

  async function loadSchedules() {
    const generation = ++state.generation;
    try {
      const client = await getClient();
      const owner = isAdmin() ? $("#schedules-owner").value.trim() : "";
      const page = await client.listSchedules(owner ? { owner } : {});
      if (generation !== state.generation) return;
      state.items = (page?.schedules ?? []).slice();
      state.loaded = true;
      renderList();
    } catch (err) {
      if (generation !== state.generation) return;
      toastError(errorText(err, "Could not load your schedules"));
    }
  }

  function scheduleRow(id) {
    let row = state.rows.get(id);
    if (row) return row;
    const nameId = `schedule-name-${id}`;
    row = el("tr", { "data-schedule-id": id }, [
      el("th", { scope: "row", className: "name", id: nameId }),
      el("td", { className: "export" }),
      el("td", { className: "cadence" }),
      el("td", { className: "window" }),
      el("td", { className: "tz" }),
      el("td", { className: "next" }),
      el("td", { className: "state" }),
      el("td", { className: "actions-cell" }),
    ]);
    state.rows.set(id, row);
    return row;
  }

  /** A button whose visible text is `label` and whose accessible name adds the schedule's name. */
  function namedButton(className, label, name) {
    return el("button", { type: "button", className }, [
      el("span", { className: "label", text: label }),
      el("span", { className: "visually-hidden", text: ` ${name}` }),
    ]);
  }

  /** The row's buttons, made once and relabelled in place (focus stays where it is). */
  function renderActions(cell, s) {
    if (cell.dataset.confirming === "true") return;
    let runs = cell.querySelector("button.runs");
    if (!runs) {
      runs = namedButton("btn btn-secondary btn-small runs", "Runs", s.name);
      cell.replaceChildren(
        runs,
        namedButton("btn btn-secondary btn-small toggle", "", s.name),
        namedButton("btn btn-danger-outline btn-small delete", "Delete", s.name),
      );
    }
    const toggleButton = cell.querySelector("button.toggle");
    if (toggleButton.getAttribute("aria-busy") === "true") return; // withBusy restores it; relabelled after
    setText(toggleButton.querySelector(".label"), s.enabled ? "Pause" : "Resume");
    // Only deleting is left to an owner whose token no longer grants the schedule.
    toggleButton.hidden = s.access === "revoked";
    runs.hidden = s.access === "revoked";
    for (const hidden of cell.querySelectorAll("button .visually-hidden")) setText(hidden, ` ${s.name}`);
  }

  /** "enabled", "paused", or why the system paused it (its owner's access changed). */
  function statusText(s) {
    if (s.access === "revoked") return "paused: your access changed";
    if (!s.enabled && s.paused_reason === "owner_access_changed") return "paused: owner's access changed";
    return s.enabled ? "enabled" : "paused";
  }

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  function updateRow(row, s) {
    const [name, exp, cadence, win, tz, next, st, actions] = row.cells;
    const nameParts = [el("span", { text: s.name })];
    if (isAdmin() && s.owner) nameParts.push(el("span", { className: "owner hint", text: `owner ${s.owner}` }));
    name.replaceChildren(...nameParts);
    const hooks = s.notify?.webhooks ?? [];
    exp.replaceChildren(
      el("span", { text: exportSummary(s.export) }),
      hooks.length
        ? el("span", { className: "webhooks hint", text: `webhook ${hooks.map((h) => webhookHost(h.url)).join(", ")}` })
        : null,
    );
    const c = cadenceText(s);
    cadence.replaceChildren(el("span", { text: c.description }), c.raw && c.raw !== c.description ? el("code", { className: "raw", text: c.raw }) : null);
    win.textContent = WINDOW_NAMES[s.window] ?? s.window ?? "";
    tz.textContent = s.time_zone ?? "UTC";
    next.replaceChildren(s.enabled && s.next_run_at ? timeNode(s.next_run_at, s.time_zone) : el("span", { className: "muted", text: s.enabled ? "—" : "— (paused)" }));
    const label = s.enabled ? "enabled" : "paused";
    st.replaceChildren(el("span", { className: `pill pill-${label}`, text: statusText(s) }));
    renderActions(actions, s);
  }

  function renderList() {
    const tbody = $("#schedules tbody");
    const seen = new Set();
    for (const s of state.items) {
      if (!s?.id || seen.has(s.id)) continue;
      seen.add(s.id);
      const row = scheduleRow(s.id);
      updateRow(row, s);
      const at = tbody.children[seen.size - 1];
      if (at !== row) tbody.insertBefore(row, at ?? null);
    }
    for (const [id, row] of state.rows) {
      if (!seen.has(id)) {
        row.remove();
        state.rows.delete(id);
      }
    }
    $("#schedules-empty").hidden = seen.size > 0 || !state.loaded;
  }

  function noteSchedule(s) {
    if (!s?.id) return;
    const i = state.items.findIndex((x) => x.id === s.id);
    if (i >= 0) state.items[i] = { ...state.items[i], ...s };
    else state.items.unshift(s);
    renderList();
    if (state.detailsId === s.id && state.details) {
      state.details = { ...state.details, ...s, runs: s.runs ?? state.details.runs };
      renderDetails();
    }
  }

  function removeSchedule(id) {
    state.items = state.items.filter((s) => s.id !== id);
    renderList();
    if (state.detailsId === id) closeDetails(false);
  }

  // ---------------------------------------------------------------------- row actions

  async function toggle(button, s) {
    const enabled = !s.enabled;
    let updated = null;
    await withBusy(button, null, async () => {
      try {
        const client = await getClient();
        updated = await client.updateSchedule(s.id, { enabled });
        toastSuccess(enabled ? `Resumed “${s.name}”` : `Paused “${s.name}”`);
      } catch (err) {
        toastError(errorText(err, enabled ? "Resume failed" : "Pause failed"));
        if (err?.status === 404) removeSchedule(s.id);
      }
    });
    // After withBusy has put the button's content back: relabel it (Pause <-> Resume).
    if (updated) noteSchedule(updated?.id ? updated : { ...s, enabled });
    if (button.isConnected) button.focus();
  }

  /** Delete asks first, in the row: "Delete “name”?" with Delete and Keep (Escape keeps). */
  function askDelete(cell, s) {
    cell.dataset.confirming = "true";
    const promptId = `schedule-confirm-${s.id}`;
    const keep = el("button", { type: "button", className: "btn btn-secondary btn-small cancel-delete", text: "Keep" });
    const confirm = el("button", { type: "button", className: "btn btn-danger btn-small confirm-delete", text: "Delete" });
    const group = el("div", { className: "confirm", role: "group", "aria-labelledby": promptId }, [
      el("span", { className: "confirm-text", id: promptId, text: `Delete “${s.name}”? Its past files stay until they expire.` }),
      confirm,
      keep,
    ]);
    cell.replaceChildren(group);
    keep.focus();
  }

  function endConfirm(cell, s, focusDelete = true) {
    delete cell.dataset.confirming;
    cell.replaceChildren();
    renderActions(cell, s);
    if (focusDelete) cell.querySelector("button.delete")?.focus();
  }

  async function confirmDelete(button, cell, s) {
    await withBusy(button, "Deleting...", async () => {
      try {
        const client = await getClient();
        await client.deleteSchedule(s.id);
        toastSuccess(`Deleted “${s.name}”`);
        const row = cell.closest("tr");
        const next = row?.nextElementSibling ?? row?.previousElementSibling;
        removeSchedule(s.id);
        (next?.querySelector("button.runs") ?? $("#schedules-title"))?.focus();
      } catch (err) {
        toastError(errorText(err, "Delete failed"));
        if (err?.status === 404) removeSchedule(s.id);
      }
    });
    if (cell.isConnected && cell.dataset.confirming === "true") endConfirm(cell, s);
  }

  function onListClick(event) {
    const button = event.target.closest("button");
    const row = button?.closest("tr[data-schedule-id]");
    if (!row) return;
    const s = state.items.find((x) => x.id === row.dataset.scheduleId);
    if (!s) return;
    const cell = button.closest("td");
    if (button.classList.contains("runs")) openDetails(s.id, button);
    else if (button.classList.contains("toggle")) toggle(button, s);
    else if (button.classList.contains("delete")) askDelete(cell, s);
    else if (button.classList.contains("cancel-delete")) endConfirm(cell, s);
    else if (button.classList.contains("confirm-delete")) confirmDelete(button, cell, s);
  }

  function onListKey(event) {
    if (event.key !== "Escape") return;
    const cell = event.target.closest?.("td[data-confirming]");
    if (!cell) return;
    const s = state.items.find((x) => x.id === cell.closest("tr")?.dataset.scheduleId);
    if (s) {
      event.preventDefault();
      endConfirm(cell, s);
    }
  }

  // ---------------------------------------------------------------------- details and runs

  async function openDetails(id, button) {
    state.detailsId = id;
    const s = state.items.find((x) => x.id === id);
    state.details = s ? { ...s, runs: null } : null;
    renderDetails();
    $("#schedule-details").hidden = false;
    $("#schedule-details-title").focus();
    const load = () => refreshDetails({ announceErrors: true });
    if (button) await withBusy(button, null, load);
    else await load();
  }

  async function refreshDetails({ announceErrors = false } = {}) {
    const id = state.detailsId;
    if (!id) return;
    const generation = ++state.detailsGeneration;
    try {
      const client = await getClient();
      const s = await client.getSchedule(id);
      if (generation !== state.detailsGeneration || state.detailsId !== id) return;
      state.details = s;
      state.pollFailed = false;
      noteSchedule(s);
      renderDetails();
    } catch (err) {
      if (generation !== state.detailsGeneration) return;
      if (err?.status === 404) {
        removeSchedule(id);
        toastError("That schedule no longer exists.");
        return;
      }
      if (announceErrors || !state.pollFailed) toastError(errorText(err, "Could not load the schedule's runs"));
      state.pollFailed = true;
    } finally {
      schedulePoll();
    }
  }

  function closeDetails(focusRow = true) {
    const id = state.detailsId;
    state.detailsId = null;
    state.details = null;
    state.detailsGeneration += 1;
    stopPolling();
    $("#schedule-details").hidden = true;
    if (focusRow && id) state.rows.get(id)?.querySelector("button.runs")?.focus();
  }

  function renderDetails() {
    const s = state.details;
    if (!s) return;
    $("#schedule-details-title").textContent = `Runs of “${s.name}”`;
    const c = cadenceText(s);
    $("#schedule-details-summary").textContent = [
      exportSummary(s.export),
      c.description,
      `window: ${(WINDOW_NAMES[s.window] ?? s.window ?? "").toLowerCase()}`,
      s.time_zone,
      statusText(s),
    ].filter(Boolean).join(" · ");
    const hooks = s.notify?.webhooks ?? [];
    const hooksNote = $("#schedule-details-webhooks");
    hooksNote.hidden = hooks.length === 0;
    hooksNote.textContent = hooks.length
      ? `${hooks.length === 1 ? "Webhook" : "Webhooks"}: ${hooks.map((h) => `${h.url} (secret ${h.secret_id})`).join(", ")}`
      : "";

    const next = $("#schedule-details-next");
    const upcoming = s.enabled ? s.next_runs ?? [] : [];
    next.replaceChildren(...upcoming.map((r) => nextRunItem(r, s.time_zone)));
    $("#schedule-details-next-empty").hidden = upcoming.length > 0;
    $("#schedule-details-next-empty").textContent = s.enabled ? "No upcoming runs." : "Paused: no runs until it is resumed.";

    const tbody = $("#schedule-runs tbody");
    const runs = s.runs;
    if (!Array.isArray(runs)) {
      tbody.replaceChildren();
      $("#schedule-runs-empty").hidden = false;
      $("#schedule-runs-empty").textContent = "Loading runs...";
      return;
    }
    const focusedJob = tbody.contains(document.activeElement) ? document.activeElement.closest("tr")?.dataset.jobId : null;
    tbody.replaceChildren(...runs.map((r) => runRow(r, s.time_zone)));
    if (focusedJob) tbody.querySelector(`tr[data-job-id="${CSS.escape(focusedJob)}"] button`)?.focus();
    $("#schedule-runs-empty").hidden = runs.length > 0;
    $("#schedule-runs-empty").textContent = "No runs yet.";
  }

  function nextRunItem(r, timeZone) {
    return el("li", {}, [
      timeNode(r.run_at, timeZone),
      r.window_end || r.window_start ? el("span", { className: "window-text" }, [el("span", { text: ": " }), ...windowNodes(r.window_start, r.window_end, timeZone)]) : null,
    ]);
  }

  function runRow(r, timeZone) {
    const status = r.status ?? "unknown";
    const actions = el("td", { className: "actions-cell" });
    if (status === "succeeded") {
      const label = `Download the run of ${zonedTime(r.run_at, timeZone)?.spoken ?? r.run_at}`;
      actions.append(el("button", { type: "button", className: "btn btn-secondary btn-small download", "aria-label": label, text: "Download" }));
    }
    const statusCell = el("td", { className: "status" }, el("span", { className: `pill pill-${status}`, text: status }));
    if (r.error?.message) statusCell.append(el("span", { className: "job-error", text: safeText(r.error.message) }));
    return el("tr", { "data-job-id": r.job_id ?? "" }, [
      el("td", { className: "run-at" }, timeNode(r.run_at, timeZone)),
      el("td", { className: "window-start" }, r.window_start ? timeNode(r.window_start, timeZone) : el("span", { className: "muted", text: "—" })),
      el("td", { className: "window-end" }, timeNode(r.window_end, timeZone)),
      statusCell,
      el("td", { className: "rows" }, typeof r.rows === "number" ? rowCount(r.rows) : "—"),
      el("td", { className: "size" }, formatBytes(r.size_bytes) || "—"),
      actions,
    ]);
  }

  async function onRunsClick(event) {
    const button = event.target.closest("button.download");
    const row = button?.closest("tr[data-job-id]");
    if (!row) return;
    await withBusy(button, null, async () => {
      try {
        const client = await getClient();
        const { fileName } = await client.downloadJob(row.dataset.jobId);
        toastSuccess(`Downloading ${fileName}`);
      } catch (err) {
        toastError(errorText(err, "Download failed"));
      }
    });
  }

  function shouldPoll() {
    return state.visible && Boolean(state.detailsId) && document.visibilityState === "visible" &&
      (state.details?.runs ?? []).some((r) => ACTIVE.has(r.status));
  }

  function stopPolling() {
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  function schedulePoll() {
    stopPolling();
    if (!shouldPoll()) return;
    state.pollTimer = setTimeout(() => {
      state.pollTimer = null;
      if (shouldPoll()) refreshDetails();
    }, POLL_MS);
  }

  // ---------------------------------------------------------------------- the form

  const cadenceType = () => ($("#sched-cadence-rate").checked ? "rate" : "cron");

  function fillFormats() {
    const kind = $("#sched-kind").value;
    const select = $("#sched-format");
    const before = select.value;
    const options = FORMATS[kind] ?? FORMATS.leads;
    select.replaceChildren(...options.map(([v, label]) => el("option", { value: v, text: label })));
    select.value = options.some(([v]) => v === before) ? before : options[0][0];
  }

  function updateKindFields() {
    const kind = $("#sched-kind").value;
    $("#sched-params-leads").hidden = kind !== "leads";
    $("#sched-params-chats").hidden = !((kind === "chats" || kind === "conversations") && isAdmin());
    // Sessions have no date field: only the window "none".
    const win = $("#sched-window");
    for (const opt of win.options) opt.disabled = kind === "sessions" && opt.value !== "none";
    if (kind === "sessions") win.value = "none";
    $("#sched-window-hint").textContent =
      (WINDOW_HINTS[win.value] ?? "") + (kind === "sessions" ? " Sessions have no date field, so only “None”." : "");
  }

  function updateCadenceFields() {
    const type = cadenceType();
    $("#sched-cron-field").hidden = type !== "cron";
    $("#sched-rate-field").hidden = type !== "rate";
  }

  function applyPreset() {
    const value = $("#sched-preset").value;
    if (!value) return;
    const [type, text] = value.split("|");
    $(`#sched-cadence-${type}`).checked = true;
    $(`#sched-${type}`).value = text;
    updateCadenceFields();
  }

  /** After a hand edit, the preset that matches it (or "Custom"). */
  function syncPreset() {
    const value = `${cadenceType()}|${$(`#sched-${cadenceType()}`).value.trim()}`;
    $("#sched-preset").value = PRESETS.some(([v]) => v === value) ? value : "";
  }

  function splitList(text) {
    return text.split(/[,;\s]+/).map((s) => s.trim()).filter(Boolean);
  }

  /** The request body of the form, as docs/schedules.md has it. */
  function formBody({ forPreview = false } = {}) {
    const kind = $("#sched-kind").value;
    const params = {};
    const set = (k, v) => {
      if (v !== "" && v !== null && v !== undefined) params[k] = v;
    };
    if (kind === "leads") {
      set("status", $("#sched-lead-status").value);
      set("category", $("#sched-lead-category").value);
      set("chatbotId", $("#sched-lead-chatbot").value.trim());
      if (isAdmin()) set("companyId", splitList($("#sched-lead-companies").value).join(","));
    } else if ((kind === "chats" || kind === "conversations") && isAdmin()) {
      set("client_id", $("#sched-client").value.trim());
    }
    const exp = { kind, format: $("#sched-format").value };
    if (Object.keys(params).length) exp.params = params;
    const name = $("#sched-name").value.trim();
    const body = { name: forPreview && !name ? "Preview" : name, export: exp };
    const type = cadenceType();
    body[type] = $(`#sched-${type}`).value.trim();
    body.time_zone = $("#sched-tz").value.trim() || "UTC";
    body.window = $("#sched-window").value;
    const emails = splitList($("#sched-emails").value);
    const webhookUrl = $("#sched-webhook-url").value.trim();
    if (emails.length || webhookUrl) {
      body.notify = emails.length ? { emails, on_empty: $("#sched-on-empty").checked } : {};
      // The server checks both: the URL (https, a public address) and that the secret is the caller's.
      if (webhookUrl) body.notify.webhooks = [{ url: webhookUrl, secret_id: $("#sched-webhook-secret").value.trim() }];
    }
    body.enabled = $("#sched-enabled").checked;
    return body;
  }

  /** Hides one error box (and un-marks its control). */
  function clearError(box) {
    if (!box || box.hidden) return;
    box.hidden = true;
    box.textContent = "";
    delete box.dataset.source;
    const input = box.id === "sched-form-error" ? null : document.getElementById(box.id.replace(/-error$/, ""));
    if (!input) return;
    input.removeAttribute("aria-invalid");
    const described = (input.getAttribute("aria-describedby") ?? "").split(/\s+/).filter((x) => x && x !== box.id);
    if (described.length) input.setAttribute("aria-describedby", described.join(" "));
    else input.removeAttribute("aria-describedby");
  }

  /**
   * Hides the errors shown by `source` ("preview" or "submit"; every one when omitted). A
   * preview that passes does not hide what a refused submit said (e.g. a missing name): that
   * goes when its control is edited, or at the next submit.
   */
  function clearFieldErrors(source) {
    for (const box of $$("#schedule-form .field-error, #sched-form-error")) {
      if (!source || box.dataset.source === source) clearError(box);
    }
  }

  /** Shows a 400's message next to the control its field names (else above the button). */
  function showFieldError(message, source) {
    clearFieldErrors(source);
    const text = safeText(message);
    const id = targetOf(fieldOfMessage(text));
    const input = id ? document.getElementById(id) : null;
    const box = (input && document.getElementById(`${id}-error`)) || $("#sched-form-error");
    box.textContent = text;
    box.hidden = false;
    box.dataset.source = source;
    if (box.id === "sched-form-error") return null;
    input.setAttribute("aria-invalid", "true");
    const described = (input.getAttribute("aria-describedby") ?? "").split(/\s+/).filter(Boolean);
    if (!described.includes(box.id)) input.setAttribute("aria-describedby", [box.id, ...described].join(" "));
    return input;
  }

  function setPreviewStatus(kind, text) {
    const status = $("#schedule-preview-status");
    status.className = `preview-status preview-${kind}`;
    status.textContent = text;
  }

  function renderPreview(preview, body) {
    const runs = preview?.next_runs ?? [];
    setPreviewStatus("ok", preview?.description ? endSentence(preview.description) : "");
    $("#schedule-preview-runs").replaceChildren(...runs.map((r) => nextRunItem(r, body.time_zone)));
    const note = $("#schedule-preview-note");
    note.textContent = runs.length
      ? `Next ${runs.length === 1 ? "run" : `${runs.length} runs`}, in ${body.time_zone}:`
      : body.enabled ? "No upcoming runs." : "It will be created paused: no runs until it is resumed.";
  }

  function endSentence(text) {
    return /[.!?)]$/.test(text) ? text : `${text}.`;
  }

  function queuePreview() {
    clearTimeout(state.previewTimer);
    state.previewTimer = setTimeout(runPreview, PREVIEW_DELAY_MS);
  }

  async function runPreview() {
    state.previewTimer = null;
    if (!state.visible) return;
    const body = formBody({ forPreview: true });
    const type = cadenceType();
    state.previewAbort?.abort();
    if (!body[type]) {
      state.previewSeq += 1;
      clearFieldErrors("preview");
      setPreviewStatus("idle", type === "cron" ? "Enter a cron expression to see its runs." : "Enter a rate to see its runs.");
      $("#schedule-preview-runs").replaceChildren();
      $("#schedule-preview-note").textContent = "";
      return;
    }
    const seq = ++state.previewSeq;
    const abort = new AbortController();
    state.previewAbort = abort;
    $("#schedule-preview").setAttribute("aria-busy", "true");
    try {
      const client = await getClient();
      const preview = await client.previewSchedule(body, { signal: abort.signal });
      if (seq !== state.previewSeq) return;
      clearFieldErrors("preview");
      renderPreview(preview, body);
    } catch (err) {
      if (seq !== state.previewSeq || err?.code === "aborted") return;
      $("#schedule-preview-runs").replaceChildren();
      $("#schedule-preview-note").textContent = "";
      if (namesAField(err)) {
        const message = safeText(err.message);
        // The preview always has a name; a name error is the form's to show, not the preview's.
        showFieldError(message, "preview");
        setPreviewStatus("error", message);
      } else {
        setPreviewStatus("error", errorText(err, "The preview failed"));
      }
    } finally {
      if (seq === state.previewSeq) $("#schedule-preview").removeAttribute("aria-busy");
    }
  }

  async function submit(event) {
    event.preventDefault();
    const button = $("#sched-create");
    await withBusy(button, "Creating...", async () => {
      const body = formBody();
      clearFieldErrors();
      try {
        const client = await getClient();
        const created = await client.createSchedule(body);
        toastSuccess(`Created the schedule “${created?.name ?? body.name}”`);
        $("#sched-name").value = "";
        await loadSchedules();
        if (created?.id && !state.items.some((s) => s.id === created.id)) noteSchedule(created);
      } catch (err) {
        if (namesAField(err)) {
          const input = showFieldError(err.message, "submit");
          setPreviewStatus("error", safeText(err.message));
          (input ?? $("#sched-form-error")).focus?.();
        }
        toastError(errorText(err, "Could not create the schedule"));
      }
    });
    queuePreview();
  }

  /** Hides (and empties) the box that shows a new secret. */
  function hideSecret() {
    state.secretSeq += 1; // a secret still being made is not shown after this (e.g. signed out)
    $("#sched-webhook-secret-value").value = "";
    $("#sched-webhook-reveal").hidden = true;
  }

  /**
   * "New secret": `POST /api/webhook-secrets`; its id goes into the form, and its value is
   * shown once, in a read-only box. The value is kept nowhere else (no storage, no log, no
   * toast): the box is emptied at the next secret, and when the form is reset.
   */
  async function newWebhookSecret(event) {
    const button = event.currentTarget;
    const input = $("#sched-webhook-secret");
    const errorBox = $("#sched-webhook-secret-error");
    await withBusy(button, "Making...", async () => {
      clearError(errorBox);
      hideSecret();
      const seq = state.secretSeq;
      try {
        const client = await getClient();
        const made = await client.createWebhookSecret();
        if (seq !== state.secretSeq) return;
        input.value = made?.id ?? "";
        const value = $("#sched-webhook-secret-value");
        value.value = made?.secret ?? "";
        $("#sched-webhook-reveal").hidden = false;
        toastSuccess("Made a webhook secret: copy it now, it is shown only once");
        value.focus();
        value.select();
      } catch (err) {
        if (seq !== state.secretSeq) return;
        const text = errorText(err, "Could not make a webhook secret");
        errorBox.textContent = text;
        errorBox.hidden = false;
        errorBox.dataset.source = "submit";
        toastError(text);
      }
    });
    queuePreview();
  }

  function resetForm() {
    const form = $("#schedule-form");
    form.reset();
    hideSecret();
    $("#sched-kind").value = "leads";
    fillFormats();
    $("#sched-preset").value = DEFAULT_PRESET;
    applyPreset();
    $("#sched-tz").value = browserTimeZone();
    updateKindFields();
    updateCadenceFields();
    clearFieldErrors();
    setPreviewStatus("idle", "");
    $("#schedule-preview-runs").replaceChildren();
    $("#schedule-preview-note").textContent = "";
  }

  // ---------------------------------------------------------------------- wiring

  function fillStatic() {
    $("#sched-preset").replaceChildren(
      el("option", { value: "", text: "Custom" }),
      ...PRESETS.map(([value, label]) => el("option", { value, text: label })),
    );
    let zones = [];
    try {
      zones = Intl.supportedValuesOf("timeZone");
    } catch {
      zones = [];
    }
    if (!zones.includes("UTC")) zones = ["UTC", ...zones];
    $("#sched-tz-options").replaceChildren(...zones.map((z) => el("option", { value: z })));
  }

  function wire() {
    fillStatic();
    resetForm();
    const form = $("#schedule-form");
    form.addEventListener("submit", submit);
    form.addEventListener("input", (event) => {
      clearError(document.getElementById(`${event.target.id}-error`));
      if (event.target.id === "sched-cron" || event.target.id === "sched-rate") syncPreset();
      queuePreview();
    });
    form.addEventListener("change", (event) => {
      const id = event.target.id;
      if (id === "sched-kind") {
        fillFormats();
        updateKindFields();
      } else if (id === "sched-window") {
        updateKindFields();
      } else if (id === "sched-preset") {
        applyPreset();
      } else if (event.target.name === "cadence-type") {
        updateCadenceFields();
        syncPreset();
      }
      queuePreview();
    });
    $("#sched-webhook-new").addEventListener("click", newWebhookSecret);
    $("#sched-webhook-secret-value").addEventListener("focus", (event) => event.target.select());
    $("#schedules tbody").addEventListener("click", onListClick);
    $("#schedules tbody").addEventListener("keydown", onListKey);
    $("#schedule-runs tbody").addEventListener("click", onRunsClick);
    $("#schedules-refresh").addEventListener("click", (e) => withBusy(e.currentTarget, null, loadSchedules));
    $("#schedules-owner").addEventListener("change", () => {
      state.rows.clear();
      $("#schedules tbody").replaceChildren();
      loadSchedules();
    });
    $("#schedule-details-refresh").addEventListener("click", (e) =>
      withBusy(e.currentTarget, null, () => refreshDetails({ announceErrors: true })));
    $("#schedule-details-close").addEventListener("click", () => closeDetails());
    $("#schedule-details").addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.target.closest("td[data-confirming]")) closeDetails();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && state.visible && state.detailsId) refreshDetails();
      else stopPolling();
    });
  }

  wire();

  return {
    /** The page became visible. */
    show() {
      state.visible = true;
      updateKindFields();
      loadSchedules();
      if (state.detailsId) refreshDetails();
      queuePreview();
    },
    /** Another page became visible. */
    hide() {
      state.visible = false;
      stopPolling();
      clearTimeout(state.previewTimer);
    },
    /** Signed out or in as someone else. */
    reset: resetAll,
  };
}
