// Mock leads for the console's "Mock data" mode: a deterministic generator and a CSV
// (and JSON) writer that mirror the real leads export byte for byte.
//
// What is mirrored (common/src/kinds/leads.rs, common/src/export/csv.rs, docs/api.md,
// "Values in files"):
// - the 32 columns, with the seed's header names in the seed's order, and their JSON keys;
// - RFC 4180 as the Rust `csv` crate writes it: CRLF after every record (the header
//   too), a field is quoted only when it holds `,`, `"`, CR or LF, quotes are doubled;
//   a record whose only field is empty is written as `""`; UTF-8 without a BOM;
// - absent values are empty cells; booleans are `Yes`/`No`; Detected Languages and AI
//   Verification Reasons are joined with `;`, Tags with `,` (so that cell is quoted);
// - timestamps are RFC 3339 UTC with milliseconds (`2024-01-15T10:30:00.000Z`);
// - integers are plain digits; decimals are the shortest form that reads back as the
//   same value, never in exponent notation (Rust's `{}` for f64);
// - the formula guard (`spreadsheet_safe`, on by default): a text or list cell that
//   starts with `=`, `@`, tab or CR, or with `+`/`-` when it is not a plain number,
//   gets a leading `'`. Numbers, booleans and timestamps are never guarded.
//
// Everything here is pure (no DOM), so tests can import it directly.

/** Every leads column: header, JSON key, type (and list separator for lists). */
export const LEAD_COLUMNS = Object.freeze(
  [
    ["Lead ID", "lead_id", "text"],
    ["Chatbot Name", "chatbot_name", "text"],
    ["Company Name", "company_name", "text"],
    ["Session ID", "session_id", "text"],
    ["Email", "email", "text"],
    ["Phone", "phone", "text"],
    ["Lead Score", "lead_score", "int"],
    ["Interest Level", "interest_level", "text"],
    ["Confidence", "confidence", "text"],
    ["Category", "category", "text"],
    ["Primary Language", "primary_language", "text"],
    ["Detected Languages", "detected_languages", "list", ";"],
    ["AI Legitimate", "ai_legitimate", "bool"],
    ["AI Confidence Score", "ai_confidence_score", "float"],
    ["AI Verification Reasons", "ai_verification_reasons", "list", ";"],
    ["Status", "status", "text"],
    ["Created At", "created_at", "time"],
    ["Updated At", "updated_at", "time"],
    ["User Agent", "user_agent", "text"],
    ["IP Address", "ip_address", "text"],
    ["Location Country", "location_country", "text"],
    ["Location City", "location_city", "text"],
    ["Message Count", "message_count", "int"],
    ["Session Duration", "session_duration", "int"],
    ["First Interest Detected", "first_interest_detected", "time"],
    ["Last Interest Detected", "last_interest_detected", "time"],
    ["Conversation Summary", "conversation_summary", "text"],
    ["Tags", "tags", "list", ","],
    ["Notes Count", "notes_count", "int"],
    ["Converted At", "converted_at", "time"],
    ["Conversion Value", "conversion_value", "float"],
    ["Conversion Source", "conversion_source", "text"],
  ].map(([header, key, type, sep]) => Object.freeze({ header, key, type, sep: sep ?? null })),
);

/** The JSON keys of every column, in order. */
export const LEAD_COLUMN_KEYS = Object.freeze(LEAD_COLUMNS.map((c) => c.key));

const BY_KEY = new Map(LEAD_COLUMNS.map((c) => [c.key, c]));

/** The column of a JSON key or header name (any case), or undefined. */
export function leadColumn(name) {
  const wanted = String(name).trim().toLowerCase();
  return BY_KEY.get(wanted) ?? LEAD_COLUMNS.find((c) => c.header.toLowerCase() === wanted);
}

function resolveColumns(columns) {
  const list = columns == null ? LEAD_COLUMN_KEYS : columns;
  const seen = new Set();
  return list.map((name) => {
    const col = leadColumn(name);
    if (!col) throw new Error(`unknown column '${name}'`);
    if (seen.has(col.key)) throw new Error(`column '${col.header}' is repeated`);
    seen.add(col.key);
    return col;
  });
}

// ---------------------------------------------------------------------------------
// Value formatting

/** Rust's f64 `Display`: shortest round-trip digits, never exponent notation. */
export function formatFloat(x) {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (Object.is(x, -0)) return "-0";
  const s = String(x);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, lead, frac = "", expText] = m;
  const digits = lead + frac;
  const exp = Number(expText);
  // The decimal point sits after `lead`, i.e. after 1 + exp digits.
  const point = 1 + exp;
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return sign + digits + "0".repeat(point - digits.length);
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** A timestamp as the export writes it in UTC: `2024-01-15T10:30:00.000Z`. */
export function formatTime(value) {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) throw new Error(`invalid timestamp '${value}'`);
  return d.toISOString();
}

function isPlainNumber(s) {
  const body = s.startsWith("+") || s.startsWith("-") ? s.slice(1) : s;
  // Rust's f64 grammar without inf/nan (the character check excludes them):
  // digits, an optional point and fraction, an optional exponent; or a point and digits.
  return /^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/.test(body);
}

/**
 * True when a spreadsheet would evaluate the text as a formula: it starts with `=`, `@`,
 * tab or CR, or with `+`/`-` and is not a plain number (`-42`, `+3.5e2` are data).
 */
export function isFormulaLike(s) {
  const first = s.charAt(0);
  if (first === "=" || first === "@" || first === "\t" || first === "\r") return true;
  if (first === "+" || first === "-") return !isPlainNumber(s);
  return false;
}

/**
 * The text of one cell as the export renders it (before CSV quoting), and whether it is
 * a text cell (the only kind the formula guard applies to). Absent values are "".
 */
export function cellText(lead, column) {
  const col = typeof column === "string" ? leadColumn(column) : column;
  const v = lead[col.key];
  if (v === null || v === undefined) return { text: "", guardable: false };
  switch (col.type) {
    case "int":
      return { text: typeof v === "bigint" ? v.toString() : String(Math.trunc(Number(v))), guardable: false };
    case "float":
      return { text: formatFloat(Number(v)), guardable: false };
    case "bool":
      return { text: v ? "Yes" : "No", guardable: false };
    case "time":
      return { text: formatTime(v), guardable: false };
    case "list":
      return { text: (Array.isArray(v) ? v : [v]).map(String).join(col.sep), guardable: true };
    default:
      return { text: String(v), guardable: true };
  }
}

/** The value of a CSV field (formula guard applied when asked), not yet quoted. */
export function csvValue(lead, column, { spreadsheetSafe = true } = {}) {
  const { text, guardable } = cellText(lead, column);
  return spreadsheetSafe && guardable && isFormulaLike(text) ? `'${text}` : text;
}

/** One field quoted as the `csv` crate does with QuoteStyle::Necessary. */
export function quoteField(field) {
  return /[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

function csvRecord(fields) {
  const line = fields.map(quoteField).join(",");
  // The csv crate writes a record that would otherwise be empty as `""`.
  return (line === "" ? '""' : line) + "\r\n";
}

/**
 * The leads as the real CSV export writes them.
 * @param {object[]} leads  records keyed by the columns' JSON keys
 * @param {{columns?: string[], spreadsheetSafe?: boolean}} [options]
 *   columns: keys or header names, in output order (default: all 32)
 */
export function leadsToCsv(leads, { columns, spreadsheetSafe = true } = {}) {
  const cols = resolveColumns(columns);
  let out = csvRecord(cols.map((c) => c.header));
  for (const lead of leads) {
    out += csvRecord(cols.map((c) => csvValue(lead, c, { spreadsheetSafe })));
  }
  return out;
}

/** The leads as the real JSON export: an array of objects keyed by the columns' keys. */
export function leadsToJson(leads, { columns } = {}) {
  return JSON.stringify(leadObjects(leads, columns));
}

/** The leads as the real JSON Lines export: the same objects, one per `\n`-terminated line. */
export function leadsToJsonLines(leads, { columns } = {}) {
  return leadObjects(leads, columns)
    .map((row) => `${JSON.stringify(row)}\n`)
    .join("");
}

function leadObjects(leads, columns) {
  const cols = resolveColumns(columns);
  return leads.map((lead) => {
    const row = {};
    for (const c of cols) {
      const v = lead[c.key];
      if (v === null || v === undefined) row[c.key] = null;
      else if (c.type === "time") row[c.key] = formatTime(v);
      else if (c.type === "list") row[c.key] = (Array.isArray(v) ? v : [v]).map(String);
      else row[c.key] = v;
    }
    return row;
  });
}

/** `YYYY-MM-DD` of a date in the browser's local time zone. */
export function localDate(date = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${String(date.getFullYear()).padStart(4, "0")}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** `mock-leads-export-YYYY-MM-DD.<ext>` for today's local date. */
export function mockFileName(ext = "csv", date = new Date()) {
  return `mock-leads-export-${localDate(date)}.${ext}`;
}

// ---------------------------------------------------------------------------------
// The generator

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COMPANIES = [
  ["comp-acme", "Acme, Inc."],
  ["comp-globex", 'Globex "Global" Corp'],
  ["comp-umbrella", "Umbrella Ünited 🌂"],
  ["comp-0042", "0042 Holdings"],
];
const PLACES = [
  ["United States", "San Francisco"],
  ["Canada", "Montréal"],
  ["United Kingdom", "London"],
  ["India", "Bengaluru"],
  ["Spain", "Madrid"],
];
const AGENTS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
  "curl/8.5.0",
];
const LANGS = ["en", "es", "fr", "hi_transliterated"];
const CONFIDENCE = ["high", "medium", "low"];
const CATEGORIES = ["buying_intent", "pricing_inquiry", "demo_request", "general_inquiry"];
const STATUSES = ["new", "contacted", "qualified", "converted", "lost"];
const INTEREST = ["hot", "high", "medium", "low"];

// Summaries that exercise the CSV rules: commas, quotes, line breaks, emoji, and text a
// spreadsheet would run as a formula.
const SUMMARIES = [
  "Asked about pricing for 50 seats",
  'Wants a demo, "ASAP" – prefers Tuesday',
  "Line one\r\nline two\nline three 😀",
  '=HYPERLINK("http://example.com","click me")',
  "@support please call back",
  "-5% discount requested (pending)",
  "Compared plans; chose Pro, then Enterprise",
  "+1 for the annual plan",
  "Ünïcödé test: naïve café, 日本語",
  "\tTabbed note",
];

const BASE_TIME = Date.UTC(2024, 4, 1, 9, 0, 0); // 2024-05-01T09:00:00.000Z

/**
 * `count` sample leads (default 10), the same for the same seed. Their values are shaped
 * like stored leads: keys are the columns' JSON keys, absent optional values are null,
 * lists are arrays, timestamps ISO strings. Index 5 is a sparse lead (every optional
 * value absent).
 */
export function generateMockLeads(count = 10, seed = 42) {
  const rnd = mulberry32(seed);
  const below = (n) => Math.floor(rnd() * n);
  const pick = (list) => list[below(list.length)];
  const iso = (ms) => new Date(ms).toISOString();
  const leads = [];
  for (let i = 0; i < count; i += 1) {
    const [companyId, companyName] = COMPANIES[i % COMPANIES.length];
    const bot = below(2);
    const created = BASE_TIME + i * 53 * 60_000 + below(1000);
    const status = STATUSES[i % STATUSES.length];
    const converted = status === "converted";
    const sparse = i === 5;
    const primary = pick(LANGS);
    const detected = [primary];
    const other = LANGS[(LANGS.indexOf(primary) + 1 + below(3)) % LANGS.length];
    if (i % 3 === 1) detected.push(other);
    const [country, city] = pick(PLACES);
    const phone =
      i % 4 === 0 ? `+44 020 7946 ${String(below(10_000)).padStart(4, "0")}` : `0${String(7_000_000_000 + below(1_000_000_000))}`;
    leads.push({
      lead_id: `mock-${String(i + 1).padStart(4, "0")}`,
      company_id: companyId,
      chatbot_id: `${companyId}-bot-${bot}`,
      chatbot_name: i === 7 ? "Sales, EMEA Bot" : `${companyName.split(" ")[0]} Bot ${bot + 1}`,
      company_name: companyName,
      session_id: sparse ? null : `sess-${String(below(100_000)).padStart(6, "0")}`,
      email: sparse ? null : `lead${i + 1}+test@example.com`,
      phone: sparse ? null : phone,
      lead_score: below(101),
      interest_level: sparse ? null : pick(INTEREST),
      confidence: CONFIDENCE[i % CONFIDENCE.length],
      category: CATEGORIES[i % CATEGORIES.length],
      primary_language: primary,
      detected_languages: detected,
      ai_legitimate: sparse ? null : i % 4 !== 3,
      ai_confidence_score: sparse ? null : i === 2 ? 0.1 + 0.2 : below(10_001) / 100,
      ai_verification_reasons: sparse ? [] : ["valid email domain", "consistent intent; repeated questions"],
      status,
      created_at: iso(created),
      updated_at: iso(created + below(72) * 3_600_000),
      user_agent: sparse ? null : pick(AGENTS),
      ip_address: sparse ? null : i % 5 === 4 ? `2001:db8:${below(0xffff).toString(16)}::${(1 + below(0xfffe)).toString(16)}` : `203.0.113.${1 + below(254)}`,
      location_country: sparse ? null : country,
      location_city: sparse ? null : city,
      message_count: 1 + below(40),
      session_duration: below(3600),
      first_interest_detected: sparse ? null : iso(created + 5_000),
      last_interest_detected: sparse ? null : iso(created + 95_000),
      conversation_summary: sparse ? null : SUMMARIES[i % SUMMARIES.length],
      tags: sparse ? [] : i === 8 ? ["-vip", "follow-up"] : ["vip", "follow-up, urgent"],
      notes_count: below(5),
      converted_at: converted ? iso(created + 3 * 86_400_000) : null,
      conversion_value: converted ? below(1_000_000) / 100 : null,
      conversion_source: converted ? "chatbot" : null,
    });
  }
  return leads;
}
