// Types of export-client.js (the chat-export API's browser client). docs/api.md and
// openapi.yaml describe the server.

export type ExportKind = "sessions" | "leads" | "chats" | "conversations";
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
/** Formats of sessions, leads and conversations (`parquet`: Apache Parquet, typed columns,
 * `application/vnd.apache.parquet`, `.parquet`; a binary file, like `xlsx`). */
export type TableFormat = "csv" | "json" | "jsonl" | "xlsx" | "parquet";
/** Formats of the chat export (`both`: a ZIP of the JSON and the Excel file; `xlsx` is `excel`;
 * `jsonl`: one message per line, without the JSON document's summary; `parquet`: one message
 * per row, typed columns). */
export type ChatFormat = "json" | "excel" | "xlsx" | "both" | "csv" | "jsonl" | "parquet";
/**
 * `gzip` / `zip` wrap the whole file (every format but `parquet`); `none`, `snappy` and
 * `zstd` are a Parquet file's codec (`zstd` when left out). `gzip`/`zip` with `parquet`, and
 * `snappy`/`zstd` with another format, are 400.
 */
export type Compression = "none" | "gzip" | "zip" | "snappy" | "zstd";
/** A boolean; in a query string `true`/`false`, `1`/`0`, `yes`/`no` (any case) are read too. */
export type Flag = boolean | "true" | "false" | "1" | "0" | "yes" | "no";
/** `YYYY-MM-DD` (a whole day in `time_zone`) or RFC 3339 with any offset. */
export type DateBound = string;
/** A parameter left out: null, undefined and "" are dropped before sending. */
type Opt<T> = T | null | undefined;

/** Options of every export. */
export interface FileOptions {
  compression?: Opt<Compression>;
  /** A UTF-8 BOM before a CSV (400 with another format, `parquet` included). */
  bom?: Opt<Flag>;
  /** An IANA zone, e.g. `Europe/Berlin`; default UTC. */
  time_zone?: Opt<string>;
  /** The CSV (and Excel) formula guard; default true. Leave it out with `parquet` (400). */
  spreadsheet_safe?: Opt<Flag>;
}

/** Query parameters of `GET /api/admin/sessions/export` (admins). */
export interface SessionsParams extends FileOptions {
  format?: Opt<TableFormat>;
}

export type Confidence = "high" | "medium" | "low";
export type LeadStatus = "new" | "contacted" | "qualified" | "converted" | "lost";
export type LeadCategory = "buying_intent" | "pricing_inquiry" | "demo_request" | "general_inquiry";
export type LeadLanguage = "en" | "es" | "fr" | "hi_transliterated";

/** Query parameters of `GET /api/hybrid-leads/export`. */
export interface LeadsParams extends FileOptions {
  format?: Opt<TableFormat>;
  confidence?: Opt<Confidence>;
  /**
   * The last 7, 30 or 90 days. The API has no such parameter: the client sends it as
   * `startDate` = now minus that many days (so it cannot be combined with `startDate`).
   */
  period?: Opt<7 | 30 | 90 | "7" | "30" | "90">;
  startDate?: Opt<DateBound>;
  endDate?: Opt<DateBound>;
  /** At most 200 characters. */
  search?: Opt<string>;
  status?: Opt<LeadStatus>;
  category?: Opt<LeadCategory>;
  language?: Opt<LeadLanguage>;
  chatbotId?: Opt<string>;
  /** A company id; admins: several (an array, or a comma-separated list), or none for all. */
  companyId?: Opt<string | string[]>;
  /** Header names (`Lead ID`) or JSON keys (`lead_id`), each once, in output order. */
  columns?: Opt<string | string[]>;
}

/** Body fields of `POST /client/export/chats` (strings of numbers and flags are converted). */
export interface ChatsParams extends FileOptions {
  format?: Opt<ChatFormat>;
  date_from?: Opt<DateBound>;
  date_to?: Opt<DateBound>;
  /** Admins: any client, or none for every client; users: their own. */
  client_id?: Opt<string>;
  conversation_id?: Opt<string>;
  /** 1 to 1,000,000; default 10,000. Above `asyncAboveRows` the export runs as a job. */
  limit?: Opt<number | string>;
  include_geo?: Opt<Flag>;
  include_meta?: Opt<Flag>;
}

/** Query parameters of `GET /client/export/conversations` (`limit` counts conversations). */
export interface ConversationsParams extends Omit<ChatsParams, "format"> {
  format?: Opt<TableFormat>;
}

/** An export job, or a synchronous export recorded in the history. Every key is present. */
export interface ExportJob {
  /** 32 lowercase hex characters. */
  id: string;
  kind: ExportKind;
  /** The format as the spec names it (a chat `xlsx` is `excel`). */
  format: string;
  status: JobStatus;
  /** `api`: a job; `sync`: a synchronous export; `schedule`: a run of a schedule. */
  trigger: "api" | "sync" | "schedule";
  /** The `sub` of the caller who started it. */
  owner: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** The snapshot time: records written later are not exported. */
  as_of: string;
  rows_done: number;
  bytes_done: number;
  rows: number | null;
  size_bytes: number | null;
  file_name: string;
  error: { error_code: string; message: string } | null;
  /** A presigned URL minted on every read; null unless succeeded and stored. */
  download_url: string | null;
  expires_at: string | null;
  file_expires_at: string | null;
  /** True when a start returned an existing job from the cache. */
  cached: boolean;
  /** Who is emailed, and which webhooks are sent the event, when the job finishes. */
  notify: { emails: string[]; on_empty: boolean; webhooks: WebhookTarget[] };
  /** Each webhook's delivery so far, in the order of `notify.webhooks` (empty without webhooks). */
  webhooks: WebhookDelivery[];
}

// --- webhooks (docs/api.md, "Webhooks") -----------------------------------------------------

/** A receiver of a finished job's signed event (`notify.webhooks` of a job or schedule). */
export interface WebhookTarget {
  /**
   * `https`, at most 2048 bytes, no credentials or fragment; its host must be, or resolve only
   * to, public addresses (no loopback, private, link-local, ... nor `localhost`). 400 otherwise.
   */
  url: string;
  /** The `id` of one of the owner's secrets (`createWebhookSecret`); 400 "names no webhook secret of yours" otherwise. */
  secret_id: string;
}

/** How the delivery of a job's event to one webhook went (written after every attempt). */
export interface WebhookDelivery {
  url: string;
  /** Attempts so far (at most WEBHOOK_MAX_ATTEMPTS, default 5). */
  attempts: number;
  /**
   * The last attempt's outcome; null before the first: an HTTP status (`"200"`), `"timeout"`,
   * `"connection failed"`, or why nothing was sent (`"refused: ..."`, `"skipped: ..."`).
   */
  last_status: string | null;
  /** A 2xx answered it. */
  delivered: boolean;
}

/** The answer of `createWebhookSecret` (`201`): the only time `secret` is shown. */
export interface WebhookSecretCreated {
  /** 32 lowercase hex characters: what `notify.webhooks[].secret_id` names. */
  id: string;
  /** `whsec_<base64 of 32 bytes>`, the Standard Webhooks form: the key that verifies `webhook-signature`. */
  secret: string;
  created_at: string;
  note: string;
}

/** `notify` of a job or schedule request. */
export interface Notify {
  /** At most 10; a non-admin may only name the `email` claim of their own token. Default none. */
  emails?: string[];
  /** Whether a run with 0 rows sends its email; default true. */
  on_empty?: boolean;
  /** At most 5 receivers of the finished job's signed event (`export.succeeded` / `export.failed`). */
  webhooks?: WebhookTarget[];
}

export interface ExportJobList {
  exports: ExportJob[];
  next_cursor: string | null;
}

interface JobSpecBase {
  /** Emails and webhooks told when the job finishes (sent as given). */
  notify?: Notify;
  /** Same key, same request, same caller: the same job (200) for 24 hours. */
  idempotencyKey?: string;
  /** Bypass the cache (`Cache-Control: no-cache`). */
  noCache?: boolean;
}
/** `POST /api/exports`: params are those of the kind's synchronous route. */
export type JobSpec = JobSpecBase &
  (
    | { kind: "sessions"; format?: TableFormat; params?: Record<string, string | number | boolean> }
    | { kind: "leads"; format?: TableFormat; params?: Record<string, string | number | boolean> }
    | { kind: "chats"; format?: ChatFormat; params?: ChatsParams }
    | { kind: "conversations"; format?: TableFormat; params?: Record<string, string | number | boolean> }
  );

/** What `download` is handed: a link to navigate to, or an inline file. */
export interface DownloadRequest {
  url?: string;
  blob?: Blob;
  fileName: string;
}

export interface ExportOptions<F extends string = string> {
  /** Overrides `params.format`. */
  format?: F;
  /** Run as a job (start, poll, download). */
  async?: boolean;
  /** Called with the job after every poll when the export runs as a job. */
  onProgress?: (job: ExportJob) => void;
  /** Aborts requests and polling (ExportError code "aborted", name "AbortError"). */
  signal?: AbortSignal;
}

export interface SessionsExportOptions extends ExportOptions<TableFormat> {
  params?: SessionsParams;
}

export interface ExportResult {
  fileName: string;
  /** `inline`: the file came in the answer; `link`: a stored file; `job`: it ran as a job. */
  via: "inline" | "link" | "job";
  rows?: number;
  /** The succeeded job (via "job"). */
  job?: ExportJob;
}

export interface ExportClientOptions {
  /** API origin, e.g. "" (same origin) or "https://api.example.com". */
  baseUrl?: string;
  /** Called for every request; never stored, logged or put in an error. */
  getToken: () => string | Promise<string>;
  fetch?: typeof globalThis.fetch;
  /** Default: browserDownload. */
  download?: (file: DownloadRequest) => void | Promise<void>;
  /** First poll interval of a job (ms), growing x1.5 up to maxPollMs. Default 500. */
  pollMs?: number;
  /** Default 5000. */
  maxPollMs?: number;
  /** An export whose params.limit is above this runs as a job. Default 100000. */
  asyncAboveRows?: number;
}

export interface ListExportsQuery {
  /** 1 to 100; default 20. */
  limit?: number;
  cursor?: string | null;
  status?: JobStatus;
  kind?: ExportKind;
  /** Admins only: another user's sub. */
  owner?: string;
}

// --- schedules (docs/schedules.md) ---------------------------------------------------------

/** `none`: the export as it stands at each run; `previous_period`: the period that just ended; `incremental`: since the last succeeded window. */
export type ScheduleWindow = "none" | "previous_period" | "incremental";

/** What a schedule exports: exactly the body of `POST /api/exports`. */
export type ScheduleExport =
  | { kind: "sessions"; format?: TableFormat; params?: Record<string, string | number | boolean> }
  | { kind: "leads"; format?: TableFormat; params?: Record<string, string | number | boolean> }
  | { kind: "chats"; format?: ChatFormat; params?: ChatsParams }
  | { kind: "conversations"; format?: TableFormat; params?: Record<string, string | number | boolean> };

/**
 * A schedule's `notify`, copied onto every run's job. In a PATCH it replaces the whole
 * `notify` (one without `webhooks` removes them); each `secret_id` must be the schedule owner's.
 */
export type ScheduleNotify = Notify;

/** Body of `POST /api/schedules` and `POST /api/schedules/preview` (unknown fields are refused). */
export interface ScheduleBody {
  /** 1 to 100 characters. */
  name: string;
  export: ScheduleExport;
  /** Five fields, evaluated in `time_zone`; exactly one of `cron` and `rate`. */
  cron?: string;
  /** `"N minute(s)|hour(s)|day(s)"`, or `rate(1 hour)`. */
  rate?: string;
  /** An IANA name; default `UTC`. */
  time_zone?: string;
  window?: ScheduleWindow;
  /** Incremental only: 0 to 86400; default SCHEDULE_LAG_SECONDS (120). */
  lag_seconds?: number;
  /** Incremental only (RFC 3339): the first window's start. */
  start_at?: string;
  notify?: ScheduleNotify;
  enabled?: boolean;
}

/** Body of `PATCH /api/schedules/{id}`. */
export interface SchedulePatch {
  name?: string;
  enabled?: boolean;
  cron?: string | null;
  rate?: string | null;
  time_zone?: string;
  notify?: ScheduleNotify;
  lag_seconds?: number;
}

/** One upcoming run and its window (RFC 3339, UTC). */
export interface ScheduleNextRun {
  run_at: string;
  window_start: string | null;
  window_end: string | null;
}

/** One run of a schedule: its job (download it with `downloadJob(job_id)`). */
export interface ScheduleRun {
  job_id: string;
  run_at: string;
  window_start: string | null;
  window_end: string | null;
  status: JobStatus;
  rows: number | null;
  size_bytes: number | null;
  file_name: string | null;
  finished_at: string | null;
  error: { error_code: string; message: string } | null;
}

export interface Schedule {
  /** 32 lowercase hex characters. */
  id: string;
  name: string;
  /** The `sub` of its creator. */
  owner: string;
  /**
   * "revoked" in what an owner whose token no longer grants the schedule sees: its
   * export, notify, description, next_run_at and cursor are null, its lists empty.
   */
  access: "full" | "revoked";
  export: ScheduleExport | null;
  cron: string | null;
  rate: string | null;
  time_zone: string;
  window: ScheduleWindow;
  lag_seconds: number;
  notify: { emails: string[]; on_empty: boolean; webhooks: WebhookTarget[] } | null;
  enabled: boolean;
  /** Set while the system paused it: its owner's token no longer grants it. */
  paused_reason: "owner_access_changed" | null;
  status: "active" | "paused" | "paused: the owner's access changed" | "paused: your access changed";
  /** The last 10 due runs that made no job (their window was exported before), newest first. */
  skipped_runs: { run_at: string; window_start: string | null; window_end: string | null; reason: "window_exported_before" }[];
  /** For people, e.g. "at 02:00, every day (Europe/Berlin)". */
  description: string | null;
  /** Null while paused. */
  next_run_at: string | null;
  /** The next five runs while enabled. */
  next_runs: ScheduleNextRun[];
  /** Incremental: the end of the last window that succeeded. */
  cursor: string | null;
  created_at: string;
  updated_at: string;
  /** Only from `getSchedule`: the last 20 runs, newest first. */
  runs?: ScheduleRun[];
}

export interface ScheduleList {
  schedules: Schedule[];
}

export interface SchedulePreview {
  description: string;
  next_runs: ScheduleNextRun[];
}

export interface ListSchedulesQuery {
  /** Admins only: one user's sub. */
  owner?: string;
  limit?: number;
  /** Admins only: the schedules paused because their owner's access changed. */
  orphaned?: boolean;
  signal?: AbortSignal;
}

export interface ExportClient {
  exportSessions(opts?: SessionsExportOptions): Promise<ExportResult>;
  exportLeads(params?: LeadsParams, opts?: ExportOptions<TableFormat>): Promise<ExportResult>;
  /** `POST /client/export/chats` (always a stored file: via "link"); as a job, kind "chats". */
  exportChats(params?: ChatsParams, opts?: ExportOptions<ChatFormat>): Promise<ExportResult>;
  exportConversations(params?: ConversationsParams, opts?: ExportOptions<TableFormat>): Promise<ExportResult>;
  /** Starts a job; `cached` is true when the cache returned an existing one. */
  startJob(spec: JobSpec): Promise<ExportJob>;
  /**
   * Polls until the job is final; resolves the succeeded job. Rejects an ExportError with
   * status 409 and `.job`: code from `job.error` when it failed, "cancelled" when cancelled.
   */
  watchJob(id: string, onProgress?: (job: ExportJob) => void, opts?: { signal?: AbortSignal }): Promise<ExportJob>;
  /** `POST /api/exports/{id}/cancel`. Rejects 409 `job_finished` when the job is already final. */
  cancelJob(id: string): Promise<ExportJob>;
  /**
   * `DELETE /api/exports/{id}` (204): the job, its file and every link to it (emailed ones
   * included) are gone; a queued or running job is cancelled first. 404 afterwards.
   */
  deleteJob(id: string): Promise<void>;
  listExports(query?: ListExportsQuery): Promise<ExportJobList>;
  /**
   * Reads the job (a fresh link) and hands it to `download`. Rejects 409 `job_not_ready` /
   * `job_not_succeeded`, 410 `file_gone`.
   */
  downloadJob(id: string, opts?: { signal?: AbortSignal }): Promise<{ fileName: string; job: ExportJob }>;
  /** `GET /api/schedules`: the caller's schedules (admins: every one, `owner` narrows), newest first. */
  listSchedules(query?: ListSchedulesQuery): Promise<ScheduleList>;
  /** `GET /api/schedules/{id}`: the schedule with its last runs. 404 for another caller's. */
  getSchedule(id: string, opts?: { signal?: AbortSignal }): Promise<Schedule & { runs: ScheduleRun[] }>;
  /** `POST /api/schedules`. A 400 (`invalid_request`) names the field in its message (`cron: ...`). */
  createSchedule(body: ScheduleBody, opts?: { signal?: AbortSignal }): Promise<Schedule>;
  /** `POST /api/schedules/preview`: the description and next runs of a body; nothing is stored. */
  previewSchedule(body: ScheduleBody, opts?: { signal?: AbortSignal }): Promise<SchedulePreview>;
  /** `PATCH /api/schedules/{id}`; `{enabled: false}` pauses, `{enabled: true}` resumes. */
  updateSchedule(id: string, patch: SchedulePatch, opts?: { signal?: AbortSignal }): Promise<Schedule>;
  /** `DELETE /api/schedules/{id}` (204); its jobs and files stay until they expire. */
  deleteSchedule(id: string, opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * `POST /api/webhook-secrets` (201): a new signing secret of the caller's. `secret` is shown
   * this once; jobs and schedules name it by `id` in `notify.webhooks[].secret_id`.
   */
  createWebhookSecret(opts?: { signal?: AbortSignal }): Promise<WebhookSecretCreated>;
  /**
   * `DELETE /api/webhook-secrets/{id}` (204): webhooks naming it are no longer sent. Another
   * caller's secret is 404 (admins too), as an unknown one is.
   */
  deleteWebhookSecret(id: string, opts?: { signal?: AbortSignal }): Promise<void>;
}

export declare class ExportError extends Error {
  /** "ExportError", or "AbortError" for code "aborted". */
  name: "ExportError" | "AbortError";
  /** HTTP status; 0 for a network failure or an abort. A failed or cancelled job is 409. */
  status: number;
  /** The server's `error_code` (or one derived from the status), "network_error", "aborted", "cancelled", ... */
  code: string;
  /** Seconds from `Retry-After` (429), else null. */
  retryAfter: number | null;
  /** The job, for errors about a job's state. */
  job?: ExportJob;
  constructor(message: string, info?: { status?: number; code?: string; retryAfter?: number | null; job?: ExportJob });
}

export declare function createExportClient(options: ExportClientOptions): ExportClient;

/** Clicks an `<a download>` for `url`, or for an object URL of `blob` (revoked later). */
export declare function browserDownload(file: DownloadRequest): void;

/** The file name of a Content-Disposition header (RFC 6266, `filename*` first); null when none. */
export declare function fileNameFromDisposition(header: string | null | undefined): string | null;
