"""Reads an export back with readers no one here wrote, and compares every value.

    check.py EXPECTED.json FILE

EXPECTED.json (written by tests/tests/round_trip.rs from the loaded records, not from
the export code) is {"id": <key of the row id>, "rows": [{key: value}], "schema": ...}
where a key may be dotted (`geo_data.country`: a nested object) and each value is typed:
["null"], ["text", s], ["int", "digits"], ["float", f], ["bool", b],
["time", "RFC 3339 with milliseconds", epoch milliseconds] or ["list", [s, ...]].

FILE is read twice, as its extension says:
- `.jsonl`: with pyarrow (`pyarrow.json.read_json`; integer columns given their type,
  since its inference reads any number as a double past 2^53) and with DuckDB
  (`read_json_auto`, every type inferred by DuckDB);
- `.parquet`: with pyarrow (`pyarrow.parquet.read_table`) and DuckDB (`read_parquet`).
  "schema" ({leaf path: "PHYSICAL LOGICAL"}, `tags.list.element` for a list's items)
  must then be the file's schema exactly, every leaf nullable but a list's items.

Every row must be there once, with every value exact. Prints one line per mismatch;
exits 1 if there is any.
"""

import datetime
import decimal
import json
import math
import sys

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def at(row, key):
    if key in row:  # a flattened table's column
        return row[key]
    for part in key.split("."):
        if row is None:
            return None
        row = row.get(part) if isinstance(row, dict) else None
    return row


def same(want, got):
    kind = want[0]
    if kind == "null":
        return got is None
    if got is None:
        return False
    if kind == "text":
        return isinstance(got, str) and got == want[1]
    if kind == "int":
        if isinstance(got, decimal.Decimal):  # DECIMAL(38, 0)
            return got == got.to_integral_value() and got == int(want[1])
        return isinstance(got, int) and not isinstance(got, bool) and got == int(want[1])
    if kind == "float":
        return isinstance(got, float) and got == want[1] and math.copysign(1, got) == math.copysign(1, want[1])
    if kind == "bool":
        return got is want[1]
    if kind == "time":
        if isinstance(got, str):
            return got == want[1]
        if isinstance(got, int):  # epoch milliseconds (DuckDB's epoch_ms)
            return got == want[2]
        if isinstance(got, datetime.datetime):
            return (got - EPOCH) // datetime.timedelta(milliseconds=1) == want[2]
        return False
    if kind == "list":
        return isinstance(got, list) and got == want[1]
    raise ValueError(f"unknown kind {kind}")


def compare(reader, expected, rows):
    id_key = expected["id"]
    problems = []
    by_id = {}
    for row in rows:
        by_id.setdefault(at(row, id_key), []).append(row)
    if len(rows) != len(expected["rows"]):
        problems.append(f"{reader}: {len(rows)} rows, expected {len(expected['rows'])}")
    for want in expected["rows"]:
        row_id = want[id_key][1]
        found = by_id.get(row_id, [])
        if len(found) != 1:
            problems.append(f"{reader}: row {row_id[:40]!r} found {len(found)} times")
            continue
        for key, value in want.items():
            got = at(found[0], key)
            if not same(value, got):
                problems.append(f"{reader}: row {row_id[:40]!r} {key}: got {str(got)[:80]!r}, expected {str(value)[:80]!r}")
    return problems


def int_keys(expected):
    kinds = {}
    for row in expected["rows"]:
        for key, value in row.items():
            if value[0] == "int" and "." not in key:
                kinds.setdefault(key, []).append(int(value[1]))
    return {k: (pa.uint64() if min(v) >= 0 else pa.int64()) for k, v in kinds.items()}


def with_pyarrow(path, expected):
    schema = pa.schema(list(int_keys(expected).items()))
    options = pj.ParseOptions(explicit_schema=schema, newlines_in_values=False)
    table = pj.read_json(path, read_options=pj.ReadOptions(block_size=1 << 24), parse_options=options)
    return table.to_pylist()


def parquet_with_pyarrow(path):
    """The table flattened (`geo_data.country`), timestamps as epoch milliseconds."""
    table = pq.read_table(path).flatten()
    columns = []
    for column, field in zip(table.columns, table.schema):
        if pa.types.is_timestamp(field.type):
            column = pc.cast(column, pa.int64())
        columns.append(column)
    return pa.table(columns, names=table.column_names).to_pylist()


def logical(column):
    lt = json.loads(column.logical_type.to_json())
    kind = lt["Type"]
    if kind == "Int":
        return f"INT({lt['bitWidth']},{'signed' if lt['isSigned'] else 'unsigned'})"
    if kind == "Timestamp":
        unit = {"milliseconds": "MILLIS", "microseconds": "MICROS", "nanoseconds": "NANOS"}[lt["timeUnit"]]
        return f"TIMESTAMP({unit},{'UTC' if lt['isAdjustedToUTC'] else 'local'})"
    if kind == "Decimal":
        return f"DECIMAL({lt['precision']},{lt['scale']})"
    if kind == "None":
        return ""
    return kind.upper()


def schema_problems(path, expected):
    want = expected.get("schema")
    if want is None:
        return ["parquet: the expectation has no schema"]
    got = {}
    problems = []
    for column in pq.ParquetFile(path).schema:
        got[column.path] = f"{column.physical_type} {logical(column)}".strip()
        # Nullable: an optional leaf (1), or an optional list of required items (2).
        # The groups of dotted keys are required and add no level.
        nullable = 2 if column.max_repetition_level > 0 else 1
        if column.max_definition_level != nullable:
            problems.append(f"parquet schema: {column.path} has definition level {column.max_definition_level}")
    if got != want:
        for path_ in sorted(set(got) | set(want)):
            if got.get(path_) != want.get(path_):
                problems.append(f"parquet schema: {path_}: got {got.get(path_)!r}, expected {want.get(path_)!r}")
    return problems


def duck_column(name, kind):
    """A select item that DuckDB can hand to Python exactly: timestamps as epoch
    milliseconds (years before 1 or after 9999 have no Python datetime)."""
    quoted = '"' + name.replace('"', '""') + '"'
    if kind.startswith("TIMESTAMP"):
        return f"epoch_ms({quoted}) AS {quoted}"
    if kind.startswith("STRUCT") and "TIMESTAMP" in kind:
        return None  # expanded below
    return quoted


def with_duckdb(path, expected):
    con = duckdb.connect()
    if path.endswith(".parquet"):
        source = f"read_parquet('{path}')"
    else:
        source = f"read_json_auto('{path}', maximum_object_size=1073741824)"
    described = con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()
    items = []
    for name, kind, *_ in described:
        item = duck_column(name, kind)
        if item is None:
            # A struct with a timestamp inside: rebuild it field by field.
            fields = con.sql(f'DESCRIBE SELECT UNNEST("{name}") FROM {source}').fetchall()
            parts = []
            for field, field_kind, *_ in fields:
                value = f'"{name}"."{field}"'
                if field_kind.startswith("TIMESTAMP"):
                    value = f"epoch_ms({value})"
                parts.append(f"'{field}': {value}")
            item = f'{{{", ".join(parts)}}} AS "{name}"'
        items.append(item)
    cursor = con.sql(f"SELECT {', '.join(items)} FROM {source}")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()], {n: k for n, k, *_ in described}


def main():
    expected_path, path = sys.argv[1], sys.argv[2]
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    if path.endswith(".parquet"):
        problems = schema_problems(path, expected)
        problems += compare("pyarrow", expected, parquet_with_pyarrow(path))
    else:
        problems = compare("pyarrow", expected, with_pyarrow(path, expected))
    rows, types = with_duckdb(path, expected)
    problems += compare("duckdb", expected, rows)
    for p in problems:
        print(p)
    print(f"{path}: {len(expected['rows'])} rows; duckdb types {types}" if not problems else f"{len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
