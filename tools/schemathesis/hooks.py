"""Schemathesis hooks of `make api-check` (scripts/api-conformance.sh).

openapi.yaml states every rule it can in JSON Schema. A few rules join fields in ways
JSON Schema cannot (OpenAPI gives query parameters no shared schema, and no schema
compares two dates): the document names them under `x-cross-field-rules`, each
operation lists the ones it checks, and breaking one is 400 naming the field.

So a schema-valid request may be refused. This hook drops such a failure only when the
request does break one of its operation's listed rules (checked here, independently of
the server) AND the answer is that rule's documented 400 naming its field. Anything else
(a refusal for another reason, a rule the operation does not list, another status) stays
a failure.

Two rules are about what a value names rather than about other fields: a webhook's
`secret_id` must name a secret of the caller's (`webhook-secret-yours`: this run's own
`POST /api/webhook-secrets` answers, less those it deleted, are the caller's secrets), and
its URL must be `https` to a public address (`webhook-url-public`: the URL is read here,
and its host resolved with this machine's resolver, the server's). A URL this check cannot
read as a plain one counts as refused: the rule's 400 is then accepted, never required.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import schemathesis
import yaml
from hypothesis import strategies as st

# `format: iana-time-zone`: the names openapi.yaml lists in the TimeZone schema's `x-enum`.
with open(__file__.rsplit("/", 3)[0] + "/openapi.yaml", encoding="utf-8") as _doc:
    ZONES = yaml.safe_load(_doc)["components"]["schemas"]["TimeZone"]["x-enum"]
schemathesis.openapi.format("iana-time-zone", st.sampled_from(ZONES))

TRUE = {"true", "1", "yes"}
DEFAULT_FORMAT = {"sessions": "csv", "leads": "csv", "conversations": "csv", "chats": "json"}
RANGE_NAMES = {"leads": ("startDate", "endDate"), "chats": ("date_from", "date_to"), "conversations": ("date_from", "date_to")}
# What the 400's message says for each rule (the server's own words; a tuple: any of them).
MESSAGE = {
    "bom-needs-csv": "bom applies to the csv format only",
    "compression-fits-format": ("does not apply to the parquet format", "applies to the parquet format only"),
    "spreadsheet-safe-not-parquet": "spreadsheet_safe applies to csv and Excel files only",
    "range-in-order": "must not be after",
    "columns-distinct": "listed twice",
    "start-at-within-a-year": "start_at",
    # `notify.webhooks[0].url must use https`, `notify.webhooks[0].url: x does not resolve (...)`
    "webhook-url-public": "].url",
    "webhook-secret-yours": "names no webhook secret of yours",
}
KIND_OF_OPERATION = {
    "exportSessions": "sessions",
    "exportLeads": "leads",
    "exportChats": "chats",
    "downloadChats": "chats",
    "exportConversations": "conversations",
}


def given(value) -> bool:
    """A value the server reads: null and "" are absent."""
    return value is not None and value != ""


def wanted_format(kind: str | None, fmt) -> str:
    """The format asked for (any case), or the kind's default when none is."""
    if isinstance(fmt, str) and fmt.strip():
        return fmt.strip().lower()
    return DEFAULT_FORMAT.get(kind or "", "csv")


def truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in TRUE


def export_of(operation_id: str, case) -> tuple[str | None, dict, str | None, dict]:
    """(kind, params, format asked for, the whole body) of a request."""
    body = case.body if isinstance(case.body, dict) else {}
    if operation_id in KIND_OF_OPERATION:
        params = dict(case.query or {}) if operation_id != "exportChats" else dict(body)
        return KIND_OF_OPERATION[operation_id], params, params.get("format"), body
    export = body if operation_id == "startExportJob" else body.get("export")
    if not isinstance(export, dict):
        return None, {}, None, body
    kind = export.get("kind")
    params = export.get("params") if isinstance(export.get("params"), dict) else {}
    fmt = export.get("format") if export.get("format") is not None else params.get("format")
    return (kind.lower() if isinstance(kind, str) else None), params, fmt, body


def bound(value, zone: str | None, end: bool) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        tz = ZoneInfo(zone) if zone and zone.upper() != "UTC" else timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        tz = timezone.utc
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is not None:
        t = datetime.combine(day, time.max if end else time.min).replace(tzinfo=tz)
        return t
    try:
        return datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None


# --- webhooks (common/src/values/webhook.rs, common/src/webhooks/guard.rs) -------------

# The webhook secrets of the caller (the run's one token): made by this run, not deleted.
SECRETS: set[str] = set()
MAX_URL_BYTES = 2048
# `WEBHOOK_ALLOW_LOOPBACK=true` (local.env, which scripts/api-conformance.sh exports to the
# server and to this process alike): loopback hosts are allowed, with http too.
ALLOW_LOOPBACK = os.environ.get("WEBHOOK_ALLOW_LOOPBACK", "").strip() == "true"
# A URL as plain as this check reads: scheme, host (a name, a dotted number, or [IPv6]),
# port, and a path and query of URL characters only.
PLAIN_URL = re.compile(
    r"(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?)://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<rest>[/?][A-Za-z0-9._~!$&'()*+,;=:@/?%-]*)?"
)
HEX_PART = re.compile(r"0[xX][0-9A-Fa-f]*")


def webhooks_of(case) -> list:
    """The request's `notify.webhooks` (jobs and schedules alike), or []."""
    body = case.body if isinstance(case.body, dict) else {}
    notify = body.get("notify")
    hooks = notify.get("webhooks") if isinstance(notify, dict) else None
    return hooks if isinstance(hooks, list) else []


def refused_v4(ip: ipaddress.IPv4Address) -> bool:
    """Not a public unicast IPv4 address (refused_v4 of webhook.rs)."""
    a, b, c, _ = ip.packed
    if a == 127:
        return not ALLOW_LOOPBACK
    return (
        a in (0, 10)
        or (a == 172 and 16 <= b <= 31)
        or (a, b) in ((192, 168), (169, 254))
        or (a == 100 and 64 <= b <= 127)
        or (a, b, c) in ((192, 0, 0), (192, 0, 2), (198, 51, 100), (203, 0, 113))
        or (a == 198 and b in (18, 19))
        or a >= 224
    )


def refused_ip(ip) -> bool:
    """Not a public unicast address, IPv4 or IPv6 (refused_address of webhook.rs)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return refused_v4(ip)
    if ip.ipv4_mapped is not None:
        return refused_v4(ip.ipv4_mapped)
    if ip == ipaddress.IPv6Address("::1"):
        return not ALLOW_LOOPBACK
    s = [int.from_bytes(ip.packed[i : i + 2], "big") for i in range(0, 16, 2)]
    if s[:6] == [0x64, 0xFF9B, 0, 0, 0, 0]:  # NAT64: the IPv4 address in its last 32 bits
        return refused_v4(ipaddress.IPv4Address(ip.packed[12:]))
    return (
        ip.is_unspecified
        or s[0] & 0xFE00 == 0xFC00  # unique local
        or s[0] & 0xFFC0 == 0xFE80  # link-local
        or s[0] & 0xFF00 == 0xFF00  # multicast
        or s[:2] == [0x2001, 0xDB8]  # documentation
        or s[0] == 0x2002  # 6to4
        or s[:6] == [0, 0, 0, 0, 0, 0]  # IPv4-compatible
    )


def whatwg_ipv4(host: str):
    """The IPv4 address a URL host is (the WHATWG host parser: decimal, octal and hex parts,
    fewer than four parts too); None for a domain name; "invalid" for a host the parser
    refuses."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    last = parts[-1]
    if not (last.isascii() and last.isdigit()) and not HEX_PART.fullmatch(last):
        return None
    if len(parts) > 4:
        return "invalid"
    numbers = []
    for part in parts:
        if HEX_PART.fullmatch(part):
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0") and part.isdigit():
            if any(d in "89" for d in part):
                return "invalid"
            numbers.append(int(part[1:], 8))
        elif part.isascii() and part.isdigit():
            numbers.append(int(part))
        else:
            return "invalid"
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return "invalid"
    value = numbers[-1] + sum(n * 256 ** (3 - i) for i, n in enumerate(numbers[:-1]))
    return ipaddress.IPv4Address(value)


def url_refused(raw) -> bool:
    """Whether the server refuses this webhook URL (parse_url of webhook.rs, then the
    guard's DNS check); True too for a URL this check cannot read as a plain one."""
    if not isinstance(raw, str) or len(raw.encode("utf-8")) > MAX_URL_BYTES:
        return True
    m = PLAIN_URL.fullmatch(raw)
    if not m:
        return True
    port = int(m["port"]) if m["port"] else 443 if m["scheme"].lower() == "https" else 80
    if port > 65535:
        return True
    host = m["host"].lower()
    if host.startswith("["):
        try:
            ip = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return True
        loopback = ip == ipaddress.IPv6Address("::1") or (ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)
        addresses = [ip]
    else:
        v4 = whatwg_ipv4(host)
        if v4 == "invalid":
            return True
        if v4 is not None:
            loopback, addresses = v4.is_loopback, [v4]
        else:
            name = host.rstrip(".")
            if not name or any(label.startswith("xn--") for label in name.split(".")):
                return True  # not read here (IDNA)
            loopback = name == "localhost" or name.endswith(".localhost")
            if loopback and not ALLOW_LOOPBACK:
                return True
            try:
                found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                return True  # does not resolve (now)
            try:
                addresses = [ipaddress.ip_address(str(a[4][0]).split("%")[0]) for a in found]
            except ValueError:
                return True
            if not addresses:
                return True
    if m["scheme"].lower() == "http" and not (ALLOW_LOOPBACK and loopback):
        return True
    return any(refused_ip(ip) for ip in addresses)


@schemathesis.hook
def after_call(ctx, case, response) -> None:
    """Keeps SECRETS: the secrets this run made and has not deleted."""
    operation_id = case.operation.definition.raw.get("operationId", "")
    if operation_id == "createWebhookSecret" and response.status_code == 201:
        try:
            SECRETS.add(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            pass
    elif operation_id == "deleteWebhookSecret" and response.status_code == 204:
        SECRETS.discard(str((case.path_parameters or {}).get("id")))


def breaks(rule: str, operation_id: str, case) -> bool:
    if rule == "webhook-url-public":
        return any(not isinstance(h, dict) or url_refused(h.get("url")) for h in webhooks_of(case))
    if rule == "webhook-secret-yours":
        return any(not isinstance(h, dict) or h.get("secret_id") not in SECRETS for h in webhooks_of(case))
    kind, params, fmt, body = export_of(operation_id, case)
    if rule == "bom-needs-csv":
        return truthy(params.get("bom")) and wanted_format(kind, fmt) != "csv"
    if rule == "compression-fits-format":
        compression = params.get("compression")
        if not isinstance(compression, str) or not compression.strip():
            return False
        parquet_codec = compression.strip().lower() in {"none", "snappy", "zstd"}
        if wanted_format(kind, fmt) == "parquet":
            return not parquet_codec
        return compression.strip().lower() in {"snappy", "zstd"}
    if rule == "spreadsheet-safe-not-parquet":
        return given(params.get("spreadsheet_safe")) and wanted_format(kind, fmt) == "parquet"
    if rule == "range-in-order":
        names = RANGE_NAMES.get(kind or "")
        if not names:
            return False
        zone = params.get("time_zone") if isinstance(params.get("time_zone"), str) else None
        start, end = bound(params.get(names[0]), zone, False), bound(params.get(names[1]), zone, True)
        try:
            return start is not None and end is not None and start > end
        except TypeError:
            return False
    if rule == "columns-distinct":
        columns = params.get("columns")
        if not isinstance(columns, str):
            return False
        names = [c.strip().lower().replace(" ", "_") for c in columns.split(",")]
        return len(names) != len(set(names))
    if rule == "start-at-within-a-year":
        text = body.get("start_at")
        if not isinstance(text, str):
            return False
        try:
            at = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
        except ValueError:
            return False
        if at.tzinfo is None:
            return False
        return abs(at - datetime.now(timezone.utc)) > timedelta(days=366)
    return False


def rules_of(case) -> list[str]:
    return list(case.operation.definition.raw.get("x-cross-field-rules") or [])


def answer_text(response) -> str:
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    return " ".join(str(body.get(k, "")) for k in ("message", "error"))


@schemathesis.hook
def filter_failure(ctx, failure, case, response) -> bool:
    """Keep every failure but a documented cross-field rule's own 400."""
    if getattr(failure, "code", None) != "ST202" or response is None or response.status_code != 400:
        return True
    operation_id = case.operation.definition.raw.get("operationId", "")
    text = answer_text(response)
    for rule in rules_of(case):
        said = MESSAGE[rule] if isinstance(MESSAGE[rule], tuple) else (MESSAGE[rule],)
        if breaks(rule, operation_id, case) and any(m in text for m in said):
            _tally(rule, operation_id)
            return False
    return True


def _tally(rule: str, operation_id: str) -> None:
    """Counts the refusals each rule explained, for the run's report (SCHEMATHESIS_RULES_LOG)."""
    path = os.environ.get("SCHEMATHESIS_RULES_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{operation_id} {rule}\n")
