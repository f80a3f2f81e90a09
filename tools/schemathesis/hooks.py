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
"""

from __future__ import annotations

import json
import os
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


def breaks(rule: str, operation_id: str, case) -> bool:
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
