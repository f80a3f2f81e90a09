#!/usr/bin/env python3
"""Checks template.yaml against the Cargo workspace, offline.

For every AWS::Serverless::Function:
  * Metadata.BuildMethod is rust-cargolambda and Metadata.BuildProperties.Binary names a
    binary of a workspace member (an explicit [[bin]], or the implicit one of src/main.rs),
    each binary used by at most one function; a binary of a functions/*/Cargo.toml crate
    that is not (yet) a workspace member is accepted with a warning;
  * its Runtime (own or from Globals) is provided.al2023, its Handler is bootstrap and its
    CodeUri is the workspace root (where cargo-lambda must run);
  * its S3 object statements stay under EXPORT_KEY_PREFIX (export-scale may also read
    DynamoDB's exports under dynamodb-exports/, read only, and write its scratch under
    scale/, the prefix of common/src/scale's keys).
And for the template as a whole:
  * every environment variable that common/src/config.rs reads is set (Globals or function),
    except the link variables (PUBLIC_API_URL): a function the HttpApi routes to cannot
    reference that API (circular dependency), so these are required exactly on the
    functions allowed to send email (ses:SendEmail), which build the links;
  * the bucket's expiry lifecycle rule covers EXPORT_KEY_PREFIX;
  * the functions' HttpApi events are exactly the operations of openapi.yaml (which
    tests/tests/openapi.rs keeps equal to exportctl's ROUTES), each served once, plus
    one ANY route per documented path to the function serving it (the 405 with Allow of
    every other method);
  * the HttpApi's CORS AllowMethods (when it lists any) admit every routed method;
  * exports at scale (docs/scale.md): the export-scale function and the state machine
    that drives it come together, and the state machine is what export-scale expects:
      - its inline Definition is valid ASL (cfn-lint's own rule E3601 on it), every
        Next/Default names a state of its scope and every state is reachable;
      - ExportTable exports a table to the exports bucket under dynamodb-exports/ as
        DYNAMODB_JSON; DescribeExport is polled and a Choice on ExportStatus has a
        COMPLETED and a FAILED branch;
      - every Lambda task invokes export-scale with one event of the interface (start,
        convert, assemble, fail, each where it belongs, with exactly the interface's
        fields), and reads exactly the fields the step answers;
      - the Distributed Map reads the item list written by start (ItemReader, JSON),
        hands each child {"convert": <item>}, runs STANDARD children when a conversion
        may outlast Express's 5 minutes, is bounded by the ScaleConcurrency parameter,
        tolerates no failure, retries throttling with backoff, and writes its results to
        S3 under scale/ (ResultWriter: a ResultPath of null would not keep thousands of
        results out of the 256 KiB state);
      - every Task and Map state catches States.ALL: before start (no job yet) into the
        Fail state, after it into the state that sends the `fail` event, which reads the
        error where the catches put it and ends in the Fail state;
      - its role exports only tables with point-in-time recovery, invokes export-scale,
        starts its own child executions, and touches S3 only under the two prefixes;
      - export-scale gets the variables it reads, and the bucket expires both prefixes.

Usage: .venv/bin/python scripts/check_template.py [TEMPLATE] [--workspace DIR]
Needs Python >= 3.11 (tomllib) and PyYAML (installed with cfn-lint).
Exits 1 listing every problem, else prints one OK line.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import sys
import tomllib
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("check_template: PyYAML is missing; run it with .venv/bin/python "
             "(python3 -m venv .venv && .venv/bin/pip install -r tools/requirements-lint.txt)")

RUNTIME = "provided.al2023"
BUILD_METHOD = "rust-cargolambda"
HANDLER = "bootstrap"
FUNCTION_TYPE = "AWS::Serverless::Function"
HTTP_API_TYPE = "AWS::Serverless::HttpApi"
# Read in config.rs but set only where emails are sent: their value names the HttpApi
# (the base of the emailed download links), which an API function cannot reference.
LINK_VARS = ("PUBLIC_API_URL",)
EMAIL_ACTIONS = ("ses:SendEmail", "ses:SendRawEmail", "ses:*")

# Exports at scale (docs/scale.md).
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
SCALE_BINARY = "export-scale"
SCALE_CONCURRENCY_PARAM = "ScaleConcurrency"
# Where the state machine has DynamoDB write its exports (export-scale only reads them),
# and export-scale's scratch: common/src/scale/layout.rs keys a job's objects under
# `scale/<job_id>/` (checked below when that file is there).
DYNAMODB_EXPORT_PREFIX = "dynamodb-exports/"
SCALE_KEY_PREFIX = "scale/"
SCALE_SOURCE = Path("common") / "src" / "scale" / "layout.rs"
# What export-scale reads (besides config.rs's checks): its tables, the bucket.
SCALE_FUNCTION_VARS = ("JOBS_TABLE", "AUDIT_TABLE", "LEADS_TABLE", "CHAT_MESSAGES_TABLE", "EXPORT_BUCKET",
                       "EXPORT_KEY_PREFIX", "EXPORT_RETENTION_DAYS")
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
EXPORT_TABLE = "arn:aws:states:::aws-sdk:dynamodb:exportTableToPointInTime"
DESCRIBE_EXPORT = "arn:aws:states:::aws-sdk:dynamodb:describeExport"
S3_GET_OBJECT = "arn:aws:states:::s3:getObject"
S3_PUT_OBJECT = "arn:aws:states:::s3:putObject"
# export-scale's events (externally tagged: one key) with their fields, and its answers.
SCALE_EVENTS = {
    "start": ({"name", "export", "manifest"}, {"job_id", "bucket", "items_key", "files"}),
    "convert": ({"job_id", "index", "data_file"}, {"index", "rows", "bytes"}),
    "assemble": ({"job_id", "files"}, {"job_id", "rows", "bytes", "s3_key"}),
    "fail": ({"job_id", "error", "cause"}, None),
}
# Express executions stop after 5 minutes.
EXPRESS_MAX_SECONDS = 300
LAMBDA_THROTTLED = "Lambda.TooManyRequestsException"


# --------------------------------------------------------------------------- YAML
class TemplateLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short-form tags (!Ref, !GetAtt, !Sub, ...) and
    any other unknown tag into their long form: {"Ref": x} or {"Fn::Name": value}."""


def _construct_tag(loader: TemplateLoader, tag_suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


TemplateLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        doc = yaml.load(f, Loader=TemplateLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(doc, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    return doc


# --------------------------------------------------------------------------- Cargo
def crate_binaries(member: Path, rel: str, bins: dict[str, str]) -> None:
    """Adds the binaries of the crate at `member` (relative path `rel`) to `bins`."""
    cargo = tomllib.loads((member / "Cargo.toml").read_text(encoding="utf-8"))
    package = cargo.get("package", {})
    for entry in cargo.get("bin", []):
        if "name" in entry:
            bins[entry["name"]] = rel
    # The implicit binary (src/main.rs, named after the package) unless autobins is off.
    if package.get("autobins", True) and (member / "src" / "main.rs").is_file():
        explicit_paths = {str(Path(b.get("path", ""))) for b in cargo.get("bin", [])}
        if "src/main.rs" not in explicit_paths and "name" in package:
            bins.setdefault(package["name"], rel)


def function_crate_binaries(root: Path, members: set[Path]) -> dict[str, str]:
    """Binaries of functions/*/Cargo.toml crates that are not workspace members (yet)."""
    bins: dict[str, str] = {}
    for manifest in sorted(root.glob("functions/*/Cargo.toml")):
        crate = manifest.parent.resolve()
        if crate not in members:
            crate_binaries(crate, str(crate.relative_to(root.resolve())), bins)
    return bins


def workspace_member_dirs(root: Path) -> list[Path]:
    """The directories of the workspace's members (the root too if it is a package)."""
    manifest = tomllib.loads((root / "Cargo.toml").read_text(encoding="utf-8"))
    workspace = manifest.get("workspace", {})
    excluded = {(root / e).resolve() for e in workspace.get("exclude", [])}
    member_dirs: list[Path] = []
    for pattern in workspace.get("members", []):
        for match in sorted(glob.glob(str(root / pattern))):
            path = Path(match).resolve()
            if path not in excluded and (path / "Cargo.toml").is_file():
                member_dirs.append(path)
    if "package" in manifest:  # a root package is a member too
        member_dirs.append(root.resolve())
    return member_dirs


def workspace_binaries(root: Path) -> dict[str, str]:
    """Maps every binary name of the workspace's members to the member that declares it."""
    bins: dict[str, str] = {}
    for member in workspace_member_dirs(root):
        crate_binaries(member, str(member.relative_to(root.resolve())) or ".", bins)
    return bins


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def openapi_operations(root: Path) -> set[tuple[str, str]] | None:
    """(METHOD, path) of every operation in openapi.yaml; None when there is none."""
    spec = root / "openapi.yaml"
    if not spec.is_file():
        return None
    doc = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
    return {
        (method.upper(), path)
        for path, item in (doc.get("paths") or {}).items()
        if isinstance(item, dict)
        for method in item
        if method in HTTP_METHODS
    }


def config_env_vars(root: Path) -> list[str] | None:
    """Variables read in common/src/config.rs through required()/number()/var()."""
    config = root / "common" / "src" / "config.rs"
    if not config.is_file():
        return None
    text = config.read_text(encoding="utf-8")
    return sorted(set(re.findall(r'\b(?:required|number|var)\(\s*"([A-Z][A-Z0-9_]*)"', text)))


# --------------------------------------------------------------------------- helpers
def get(mapping, *keys, default=None):
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return default
        mapping = mapping[key]
    return mapping


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def resource_texts(resource) -> list[str]:
    """A statement Resource as plain strings; !Sub templates keep their ${...} parts."""
    out = []
    for r in as_list(resource):
        if isinstance(r, str):
            out.append(r)
        elif isinstance(r, dict) and "Fn::Sub" in r:
            sub = r["Fn::Sub"]
            out.append(sub[0] if isinstance(sub, list) else sub)
    return out


def policy_statements(props: dict) -> list[dict]:
    """The inline policy statements of a function or state machine (SAM Policies)."""
    return [stmt for policy in as_list(props.get("Policies")) for stmt in as_list(get(policy, "Statement"))
            if isinstance(stmt, dict)]


def policy_actions(props: dict) -> set[str]:
    """Every Allow action of a function's inline policy statements."""
    actions: set[str] = set()
    for stmt in policy_statements(props):
        if get(stmt, "Effect") == "Allow":
            actions.update(a for a in as_list(get(stmt, "Action")) if isinstance(a, str))
    return actions


# --------------------------------------------------------------------------- checks
def check(
    template: dict, root: Path, template_path: Path
) -> tuple[list[str], list[str], dict[tuple[str, str], str] | None, list[str]]:
    """Problems, the function->binary summary, the checked routes (None: unchecked), and
    the checked state machines."""
    problems: list[str] = []
    summary: list[str] = []
    resources = template.get("Resources") or {}
    globals_fn = get(template, "Globals", "Function", default={}) or {}
    global_env = get(globals_fn, "Environment", "Variables", default={}) or {}

    try:
        bins = workspace_binaries(root)
        outside = function_crate_binaries(root, set(workspace_member_dirs(root)))
    except (OSError, tomllib.TOMLDecodeError) as e:
        return [f"cannot read the Cargo workspace at {root}: {e}"], [], None, []

    functions = {name: r for name, r in resources.items() if isinstance(r, dict) and r.get("Type") == FUNCTION_TYPE}
    if not functions:
        problems.append(f"no {FUNCTION_TYPE} resources in {template_path}")

    prefix = global_env.get("EXPORT_KEY_PREFIX")
    used_binaries: dict[str, str] = {}
    routes: dict[tuple[str, str], str] = {}
    any_routes: dict[str, str] = {}
    for name, res in functions.items():
        props = res.get("Properties") or {}
        meta = res.get("Metadata") or {}
        where = f"{name}:"

        method = meta.get("BuildMethod")
        if method != BUILD_METHOD:
            problems.append(f"{where} Metadata.BuildMethod is {method!r}, expected {BUILD_METHOD!r}")
        binary = get(meta, "BuildProperties", "Binary")
        if not isinstance(binary, str) or not binary:
            problems.append(f"{where} Metadata.BuildProperties.Binary is missing")
        elif binary not in bins and binary not in outside:
            known = ", ".join(sorted(bins)) or "none"
            problems.append(f"{where} Binary {binary!r} is not a [[bin]] of any workspace member "
                            f"nor of a functions/*/Cargo.toml crate (known: {known})")
        elif binary in used_binaries:
            problems.append(f"{where} Binary {binary!r} is already built for {used_binaries[binary]}")
        else:
            used_binaries[binary] = name
            if binary not in bins:
                print(f"check_template: warning: {where} Binary {binary!r} is declared by {outside[binary]}, "
                      "which is not a member of the Cargo workspace (yet); sam build needs it to be",
                      file=sys.stderr)

        runtime = props.get("Runtime", globals_fn.get("Runtime"))
        if runtime != RUNTIME:
            problems.append(f"{where} Runtime is {runtime!r} (function or Globals), expected {RUNTIME!r}")
        handler = props.get("Handler", globals_fn.get("Handler"))
        if handler != HANDLER:
            problems.append(f"{where} Handler is {handler!r}, expected {HANDLER!r}")

        code_uri = props.get("CodeUri", globals_fn.get("CodeUri"))
        if not isinstance(code_uri, str):
            problems.append(f"{where} CodeUri must be a local path to the workspace root, got {code_uri!r}")
        elif (template_path.parent / code_uri).resolve() != root.resolve():
            problems.append(f"{where} CodeUri {code_uri!r} is not the workspace root ({root})")

        if isinstance(prefix, str):
            # export-scale alone may also read DynamoDB's exports and write its scratch.
            allowed = {prefix: "EXPORT_KEY_PREFIX"}
            read_only: set[str] = set()
            if binary == SCALE_BINARY:
                allowed[SCALE_KEY_PREFIX] = "the scratch prefix"
                allowed[DYNAMODB_EXPORT_PREFIX] = "DynamoDB's exports"
                read_only.add(DYNAMODB_EXPORT_PREFIX)
            for stmt in policy_statements(props):
                actions = [a for a in as_list(get(stmt, "Action")) if isinstance(a, str)]
                if not any(a.startswith("s3:") and "Object" in a for a in actions):
                    continue
                for text in resource_texts(get(stmt, "Resource")):
                    matched = next((p for p in allowed if text.endswith(f"/{p}*")), None)
                    if matched is None:
                        names = " or ".join(f"{v} {p!r}" for p, v in allowed.items())
                        problems.append(
                            f"{where} S3 object statement {get(stmt, 'Sid') or ''} resource {text!r} "
                            f"is not limited to {names} (expected ...'/{prefix}*')"
                        )
                    elif matched in read_only and set(actions) - {"s3:GetObject"}:
                        problems.append(
                            f"{where} S3 statement {get(stmt, 'Sid') or ''} may {sorted(set(actions) - {'s3:GetObject'})} "
                            f"under {allowed[matched]} {matched!r}, which export-scale only reads"
                        )

        for event_name, event in (props.get("Events") or {}).items():
            if not isinstance(event, dict) or event.get("Type") != "HttpApi":
                continue
            method, path = get(event, "Properties", "Method"), get(event, "Properties", "Path")
            if not isinstance(method, str) or not isinstance(path, str):
                problems.append(f"{where} HttpApi event {event_name} needs a literal Method and Path")
                continue
            if method.upper() == "ANY":
                # The 405 of a path's other methods: once per path.
                if path in any_routes:
                    problems.append(f"{where} route ANY {path} is already served by {any_routes[path]}")
                any_routes[path] = name
                continue
            route = (method.upper(), path)
            if route in routes:
                problems.append(f"{where} route {method.upper()} {path} is already served by {routes[route]}")
            routes[route] = name

        summary.append(f"{name}->{binary}")

    # Environment: everything config.rs reads must be set.
    wanted = config_env_vars(root)
    if wanted is None:
        print("check_template: note: common/src/config.rs not found, environment not checked", file=sys.stderr)
    else:
        for name, res in functions.items():
            env = dict(global_env)
            env.update(get(res, "Properties", "Environment", "Variables", default={}) or {})
            sends_email = bool(policy_actions(res.get("Properties") or {}) & set(EMAIL_ACTIONS))
            missing = [v for v in wanted if v not in env and (sends_email or v not in LINK_VARS)]
            if missing:
                problems.append(f"{name}: environment lacks {', '.join(missing)} (read in common/src/config.rs)")

    # The API's CORS must admit every method it routes (a browser's preflight of a
    # PATCH is refused otherwise).
    for api_name, api in resources.items():
        if not isinstance(api, dict) or api.get("Type") != HTTP_API_TYPE:
            continue
        allowed = get(api, "Properties", "CorsConfiguration", "AllowMethods")
        if not isinstance(allowed, list):
            continue
        allowed_upper = {m.upper() for m in allowed if isinstance(m, str)}
        if "*" in allowed_upper:
            continue
        served = set()
        for name, res in functions.items():
            for event in (get(res, "Properties", "Events", default={}) or {}).values():
                if (isinstance(event, dict) and event.get("Type") == "HttpApi"
                        and get(event, "Properties", "ApiId") == {"Ref": api_name}):
                    method = get(event, "Properties", "Method")
                    if isinstance(method, str) and method.upper() != "ANY":
                        served.add(method.upper())
        for method in sorted(served - allowed_upper):
            problems.append(f"{api_name}: CorsConfiguration.AllowMethods lacks {method}, which a route uses")

    # Lifecycle expiry must cover the export prefix.
    if prefix is None:
        problems.append("Globals.Function.Environment.Variables.EXPORT_KEY_PREFIX is not set")
    else:
        buckets = [r for r in resources.values() if isinstance(r, dict) and r.get("Type") == "AWS::S3::Bucket"]
        rules = [rule for b in buckets for rule in as_list(get(b, "Properties", "LifecycleConfiguration", "Rules"))]
        expiring = [r for r in rules if isinstance(r, dict) and r.get("Status") == "Enabled" and "ExpirationInDays" in r]
        if not any(str(r.get("Prefix", "")) == prefix or not r.get("Prefix") for r in expiring):
            problems.append(f"no enabled bucket lifecycle rule expires objects under EXPORT_KEY_PREFIX {prefix!r}")

    # The deployed routes are the documented (and locally served) ones.
    try:
        documented = openapi_operations(root)
    except (OSError, yaml.YAMLError) as e:
        problems.append(f"cannot read {root / 'openapi.yaml'}: {e}")
        documented = None
    if documented is None:
        print("check_template: note: openapi.yaml not found, routes not checked", file=sys.stderr)
    else:
        for method, path in sorted(set(routes) - documented):
            problems.append(f"{routes[(method, path)]}: route {method} {path} is not an operation of openapi.yaml")
        for method, path in sorted(documented - set(routes)):
            problems.append(f"openapi.yaml operation {method} {path} is not an HttpApi event of any function")
        # Every documented path answers its other methods with 405 (an ANY route to the
        # function that serves the path), and nothing else has an ANY route.
        for path in sorted({p for _, p in documented}):
            owners = {routes[(m, p)] for m, p in routes if p == path}
            if path not in any_routes:
                problems.append(f"path {path} has no ANY route (its other methods would get API Gateway's 404, not 405)")
            elif any_routes[path] not in owners:
                problems.append(f"route ANY {path} goes to {any_routes[path]}, not to {', '.join(sorted(owners))}")
        for path in sorted(set(any_routes) - {p for _, p in documented}):
            problems.append(f"{any_routes[path]}: route ANY {path} is not a path of openapi.yaml")

    # Exports at scale: export-scale and the state machine that drives it.
    machines = check_scale(template, root, functions, global_env, problems)

    return problems, summary, routes if documented is not None else None, machines


# --------------------------------------------------------------------------- exports at scale
def logical_id(value) -> str | None:
    """The resource a !Ref or !GetAtt names (None for anything else)."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        att = value.get("Fn::GetAtt")
        if isinstance(att, list) and att and isinstance(att[0], str):
            return att[0]
    return None


def sub_text(value) -> str | None:
    """The template of a !Sub (or a plain string)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        sub = sub[0] if isinstance(sub, list) and sub else sub
        return sub if isinstance(sub, str) else None
    return None


def field(mapping, name: str):
    """A Parameters/Payload field given either literally (`name`) or as a path (`name.$`)."""
    if not isinstance(mapping, dict):
        return None
    return mapping[name] if name in mapping else mapping.get(f"{name}.$")


def field_names(mapping) -> set[str]:
    return {k[:-2] if k.endswith(".$") else k for k in mapping} if isinstance(mapping, dict) else set()


def placeholders(value):
    """The definition with every intrinsic function replaced by a string, as the SAM
    transform does (it turns each into a DefinitionSubstitutions placeholder)."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Sub", "Fn::Join", "Fn::If",
                                                      "Fn::Select", "Fn::ImportValue", "Fn::FindInMap"):
            return "${definition_substitution}"
        return {k: placeholders(v) for k, v in value.items()}
    if isinstance(value, list):
        return [placeholders(v) for v in value]
    return value


def asl_lint(definition: dict) -> list[str] | None:
    """cfn-lint's state machine rules (E36xx) on the definition; None when cfn-lint is
    not importable (run with the project venv)."""
    try:
        from cfnlint.api import lint  # noqa: PLC0415 - optional, heavy
    except ImportError:
        return None
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"StateMachine": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
            "RoleArn": "arn:aws:iam::123456789012:role/state-machine",
            "Definition": placeholders(definition),
            "DefinitionSubstitutions": {"definition_substitution": "x"},
        }}},
    }
    matches = lint(json.dumps(template))
    return [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith(("E36", "W36"))]


def walk_scope(states: dict, start_at, scope: str, problems: list[str]) -> None:
    """Every transition of one scope names one of its states; every state is reachable."""
    def targets(state: dict) -> list[str]:
        out = [state.get("Next"), state.get("Default")]
        out += [get(c, "Next") for c in as_list(state.get("Choices"))]
        out += [get(c, "Next") for c in as_list(state.get("Catch"))]
        return [t for t in out if t is not None]

    for name, state in states.items():
        if not isinstance(state, dict):
            problems.append(f"{scope}: state {name} is not a mapping")
            continue
        for target in targets(state):
            if target not in states:
                problems.append(f"{scope}: state {name} goes to {target!r}, which is not a state of its scope")
        if state.get("Type") not in ("Choice", "Fail", "Succeed") and not state.get("End") and "Next" not in state:
            problems.append(f"{scope}: state {name} has neither Next nor End")
    if start_at not in states:
        problems.append(f"{scope}: StartAt {start_at!r} is not a state")
        return
    seen, todo = set(), [start_at]
    while todo:
        name = todo.pop()
        if name in seen or not isinstance(states.get(name), dict):
            continue
        seen.add(name)
        todo.extend(targets(states[name]))
    for name in sorted(set(states) - seen):
        problems.append(f"{scope}: state {name} is never reached from {start_at}")


def reachable(states: dict, start: str, follow_catch: bool) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        state = states.get(name)
        if name in seen or not isinstance(state, dict):
            continue
        seen.add(name)
        todo += [t for t in (state.get("Next"), state.get("Default")) if t]
        todo += [get(c, "Next") for c in as_list(state.get("Choices")) if get(c, "Next")]
        if follow_catch:
            todo += [get(c, "Next") for c in as_list(state.get("Catch")) if get(c, "Next")]
    return seen


def catch_all(state: dict) -> dict | None:
    return next((c for c in as_list(state.get("Catch"))
                 if isinstance(c, dict) and "States.ALL" in as_list(c.get("ErrorEquals"))), None)


def retries(state: dict, error: str) -> dict | None:
    return next((r for r in as_list(state.get("Retry"))
                 if isinstance(r, dict) and error in as_list(r.get("ErrorEquals"))), None)


def scale_event(state: dict) -> tuple[str | None, object]:
    """The event key of a Lambda task's Payload (its one key) and the event's body;
    ("$", None) for a task that passes its whole input."""
    params = state.get("Parameters") or {}
    if params.get("Payload.$") == "$":
        return "$", None
    payload = params.get("Payload")
    if isinstance(payload, dict) and len(payload) == 1:
        key = next(iter(payload))
        return key, payload[key]
    return None, payload


def check_scale(template: dict, root: Path, functions: dict, global_env: dict, problems: list[str]) -> list[str]:
    """The exports-at-scale checks (see the module doc); returns a summary line part."""
    resources = template.get("Resources") or {}
    parameters = template.get("Parameters") or {}
    scale_fns = [n for n, r in functions.items() if get(r, "Metadata", "BuildProperties", "Binary") == SCALE_BINARY]
    machines = {n: r for n, r in resources.items() if isinstance(r, dict) and r.get("Type") in STATE_MACHINE_TYPES}
    if not scale_fns and not machines:
        return []
    if len(scale_fns) != 1:
        problems.append(f"exports at scale: expected one function building {SCALE_BINARY!r}, found {scale_fns or 'none'}")
        return []
    fn_name = scale_fns[0]
    fn = functions[fn_name]
    fn_props = fn.get("Properties") or {}
    env = {**global_env, **(get(fn_props, "Environment", "Variables", default={}) or {})}
    for var in SCALE_FUNCTION_VARS:
        if var not in env:
            problems.append(f"{fn_name}: environment lacks {var} (export-scale reads it)")
    bucket = logical_id(env.get("EXPORT_BUCKET"))
    dynamodb_prefix, scale_prefix = DYNAMODB_EXPORT_PREFIX, SCALE_KEY_PREFIX
    if env.get("EXPORT_KEY_PREFIX") in (dynamodb_prefix, scale_prefix):
        problems.append(f"{fn_name}: EXPORT_KEY_PREFIX must differ from {dynamodb_prefix!r} and {scale_prefix!r}")
    # The Rust side's keys are where the template lets it write (and expires).
    source = root / SCALE_SOURCE
    if source.is_file():
        keyed = re.findall(r'format!\("([^"{]*)\{job_id\}/"\)', source.read_text(encoding="utf-8"))
        if keyed != [scale_prefix]:
            problems.append(f"{SCALE_SOURCE}: a job's objects should be keyed format!(\"{scale_prefix}{{job_id}}/\") "
                            f"(the prefix the template grants and expires), found {keyed or 'nothing'}")
    else:
        print(f"check_template: note: {SCALE_SOURCE} not found, the scratch prefix not checked", file=sys.stderr)
    fn_timeout = fn_props.get("Timeout", get(template, "Globals", "Function", "Timeout"))

    # The bucket expires both prefixes.
    bucket_res = resources.get(bucket) if bucket else None
    rules = as_list(get(bucket_res, "Properties", "LifecycleConfiguration", "Rules"))
    for prefix in (dynamodb_prefix, scale_prefix):
        if not any(isinstance(r, dict) and r.get("Status") == "Enabled" and "ExpirationInDays" in r
                   and r.get("Prefix") == prefix for r in rules):
            problems.append(f"{bucket or 'EXPORT_BUCKET'}: no enabled lifecycle rule expires {prefix!r}")

    # The state machine that invokes export-scale.
    def invokes_fn(state: dict) -> bool:
        return logical_id(get(state, "Parameters", "FunctionName")) == fn_name

    drivers = []
    for name, machine in machines.items():
        definition = get(machine, "Properties", "Definition")
        if isinstance(definition, dict) and any(
            isinstance(s, dict) and invokes_fn(s) for s in (definition.get("States") or {}).values()
        ):
            drivers.append(name)
    if len(drivers) != 1:
        problems.append(f"exports at scale: expected one state machine with an inline Definition invoking {fn_name}, "
                        f"found {drivers or 'none'}")
        return []
    sm_name = drivers[0]
    sm_props = machines[sm_name].get("Properties") or {}
    definition = sm_props["Definition"]
    where = f"{sm_name}:"
    states: dict = definition.get("States") or {}

    # Structure: cfn-lint's ASL rules, transitions, reachability, of every scope.
    lint_problems = asl_lint(definition)
    if lint_problems is None:
        print("check_template: note: cfn-lint not importable, the state machine's ASL not linted", file=sys.stderr)
    else:
        problems.extend(f"{where} Definition: {p}" for p in lint_problems)
    walk_scope(states, definition.get("StartAt"), f"{sm_name}.Definition", problems)
    for name, state in states.items():
        if isinstance(state, dict) and isinstance(state.get("ItemProcessor"), dict):
            proc = state["ItemProcessor"]
            walk_scope(proc.get("States") or {}, proc.get("StartAt"), f"{sm_name}.{name}.ItemProcessor", problems)

    # Every Lambda task invokes export-scale with one event of the interface.
    lambda_tasks: dict[str, tuple[str, dict]] = {}   # state -> (event, state)
    dist_maps = [n for n, s in states.items()
                 if isinstance(s, dict) and get(s, "ItemProcessor", "ProcessorConfig", "Mode") == "DISTRIBUTED"]
    scopes = [("", states)] + [(f"{m}.", get(states[m], "ItemProcessor", "States", default={}) or {}) for m in dist_maps]
    for prefix_name, scope in scopes:
        for name, state in scope.items():
            if not isinstance(state, dict) or state.get("Resource") != LAMBDA_INVOKE:
                continue
            qualified = f"{prefix_name}{name}"
            if not invokes_fn(state):
                problems.append(f"{where} {qualified} invokes {get(state, 'Parameters', 'FunctionName')!r}, "
                                f"not {fn_name} (binary {SCALE_BINARY})")
                continue
            event, body = scale_event(state)
            if event == "$" and prefix_name:
                event = "convert"  # checked with the Map's ItemSelector below
            elif event not in SCALE_EVENTS or prefix_name:
                problems.append(f"{where} {qualified} sends {event!r}; expected one of "
                                f"{sorted(SCALE_EVENTS)} (convert only inside the Distributed Map)")
                continue
            else:
                fields, _ = SCALE_EVENTS[event]
                if field_names(body) != fields:
                    problems.append(f"{where} {qualified}: the {event} event has {sorted(field_names(body))}, "
                                    f"export-scale takes {sorted(fields)}")
            answer = SCALE_EVENTS[event][1]
            selector = state.get("ResultSelector")
            if answer is not None:
                got = {k[:-2] for k in (selector or {}) if k.endswith(".$")}
                paths = {f"$.Payload.{f}" for f in answer}
                if got != answer or set((selector or {}).values()) != paths:
                    problems.append(f"{where} {qualified}: ResultSelector should take exactly {sorted(answer)} "
                                    f"from $.Payload (export-scale's {event} answer)")
            if not retries(state, LAMBDA_THROTTLED):
                problems.append(f"{where} {qualified} does not retry {LAMBDA_THROTTLED}")
            lambda_tasks[qualified] = (event, state)
    by_event: dict[str, list[str]] = {}
    for qualified, (event, _) in lambda_tasks.items():
        by_event.setdefault(event, []).append(qualified)
    for event in SCALE_EVENTS:
        if len(by_event.get(event, [])) != 1:
            problems.append(f"{where} expected one state sending the {event} event, found {by_event.get(event) or 'none'}")
    if any(len(by_event.get(e, [])) != 1 for e in SCALE_EVENTS) or len(dist_maps) != 1:
        if len(dist_maps) != 1:
            problems.append(f"{where} expected one Distributed Map (ProcessorConfig.Mode DISTRIBUTED), found {dist_maps or 'none'}")
        return [f"{sm_name} (incomplete)"]
    start_name, fail_name = by_event["start"][0], by_event["fail"][0]
    start = states[start_name]
    start_result = start.get("ResultPath")

    # The DynamoDB export: into the bucket, under its prefix, polled until done.
    exports = [n for n, s in states.items() if isinstance(s, dict) and s.get("Resource") == EXPORT_TABLE]
    describes = [n for n, s in states.items() if isinstance(s, dict) and s.get("Resource") == DESCRIBE_EXPORT]
    if len(exports) != 1 or not describes:
        problems.append(f"{where} expected one {EXPORT_TABLE} task and a {DESCRIBE_EXPORT} task")
    else:
        params = states[exports[0]].get("Parameters") or {}
        if logical_id(params.get("S3Bucket")) != bucket:
            problems.append(f"{where} {exports[0]} S3Bucket is not the exports bucket ({bucket})")
        s3_prefix = field(params, "S3Prefix")
        literal = s3_prefix if isinstance(s3_prefix, str) and "S3Prefix" in params else None
        formatted = re.match(r"States\.Format\('([^'{]*)", s3_prefix) if isinstance(s3_prefix, str) else None
        head = literal if literal is not None else (formatted.group(1) if formatted else None)
        if head is None or not (head.startswith(dynamodb_prefix) or head + "/" == dynamodb_prefix):
            problems.append(f"{where} {exports[0]} S3Prefix {s3_prefix!r} is not under {dynamodb_prefix!r}")
        if params.get("ExportFormat") != "DYNAMODB_JSON":
            problems.append(f"{where} {exports[0]} ExportFormat must be DYNAMODB_JSON (what export-scale decodes)")
        statuses = {get(c, "StringEquals") for s in states.values() if isinstance(s, dict) and s.get("Type") == "Choice"
                    for c in as_list(s.get("Choices")) if str(get(c, "Variable", default="")).endswith(".ExportStatus")}
        if not {"COMPLETED", "FAILED"} <= statuses:
            problems.append(f"{where} no Choice on ExportStatus with both a COMPLETED and a FAILED branch")
        if start_name not in reachable(states, exports[0], follow_catch=False):
            problems.append(f"{where} {start_name} does not follow {exports[0]}")

    # The Distributed Map.
    map_name = dist_maps[0]
    dmap = states[map_name]
    mwhere = f"{where} {map_name}"
    reader = dmap.get("ItemReader") or {}
    if reader.get("Resource") != S3_GET_OBJECT or get(reader, "ReaderConfig", "InputType") != "JSON":
        problems.append(f"{mwhere}: ItemReader must read a JSON array with {S3_GET_OBJECT}")
    if isinstance(start_result, str):
        for key, answer_field in (("Key", "items_key"), ("Bucket", "bucket")):
            value = field(get(reader, "Parameters"), key)
            if value != f"{start_result}.{answer_field}" and not (key == "Bucket" and logical_id(value) == bucket):
                problems.append(f"{mwhere}: ItemReader {key} should be {start_result}.{answer_field} (what {start_name} answers)")
    if dmap.get("ItemSelector") != {"convert.$": "$$.Map.Item.Value"}:
        problems.append(f"{mwhere}: ItemSelector should be {{'convert.$': '$$.Map.Item.Value'}} (the convert event)")
    execution_type = get(dmap, "ItemProcessor", "ProcessorConfig", "ExecutionType")
    if execution_type not in ("STANDARD", "EXPRESS"):
        problems.append(f"{mwhere}: ProcessorConfig.ExecutionType must be STANDARD or EXPRESS")
    elif execution_type == "EXPRESS" and not (isinstance(fn_timeout, int) and fn_timeout <= EXPRESS_MAX_SECONDS):
        problems.append(f"{mwhere}: EXPRESS children stop after {EXPRESS_MAX_SECONDS} s but {fn_name} may run "
                        f"{fn_timeout} s; use STANDARD")
    # Bounded by the parameter: MaxConcurrency itself, or MaxConcurrencyPath set from it.
    param = parameters.get(SCALE_CONCURRENCY_PARAM)
    if not isinstance(param, dict) or "MaxValue" not in param:
        problems.append(f"Parameters: {SCALE_CONCURRENCY_PARAM} is missing or has no MaxValue")
    bound = logical_id(dmap.get("MaxConcurrency")) == SCALE_CONCURRENCY_PARAM
    path = dmap.get("MaxConcurrencyPath")
    if not bound and isinstance(path, str) and path.count(".") == 2:
        parent, leaf = path.rsplit(".", 1)
        for state in states.values():
            if isinstance(state, dict) and state.get("Type") == "Pass" and state.get("ResultPath") == parent:
                text = sub_text(field(state.get("Parameters"), leaf))
                bound = bound or (isinstance(text, str) and "${" + SCALE_CONCURRENCY_PARAM + "}" in text)
    if not bound:
        problems.append(f"{mwhere}: MaxConcurrency (or the value MaxConcurrencyPath reads) is not "
                        f"bound to the {SCALE_CONCURRENCY_PARAM} parameter")
    if dmap.get("ToleratedFailurePercentage", 0) != 0 or dmap.get("ToleratedFailureCount", 0) != 0 \
            or "ToleratedFailurePercentagePath" in dmap or "ToleratedFailureCountPath" in dmap:
        problems.append(f"{mwhere}: must tolerate no failure (a file assembled from part of the table)")
    writer = dmap.get("ResultWriter") or {}
    writer_prefix = get(writer, "Parameters", "Prefix")
    if writer.get("Resource") != S3_PUT_OBJECT or logical_id(get(writer, "Parameters", "Bucket")) != bucket \
            or not isinstance(writer_prefix, str) or not writer_prefix.startswith(scale_prefix):
        problems.append(f"{mwhere}: needs a ResultWriter ({S3_PUT_OBJECT}) into the exports bucket under "
                        f"{scale_prefix!r}: a ResultPath of null still gathers every child's result into the "
                        f"state (256 KiB)")
    if map_name not in reachable(states, start_name, follow_catch=False):
        problems.append(f"{mwhere} does not follow {start_name}")

    # Failure paths: every Task and Map state catches States.ALL.
    fails = {n for n, s in states.items() if isinstance(s, dict) and s.get("Type") == "Fail"}
    after_start = reachable(states, start_name, follow_catch=False) - {start_name}
    fail_state = states[fail_name]
    fail_body = get(fail_state, "Parameters", "Payload", "fail") or {}
    marked_error = field(fail_body, "error")
    for name, state in states.items():
        if not isinstance(state, dict) or state.get("Type") not in ("Task", "Map") or name == fail_name:
            continue
        catcher = catch_all(state)
        if catcher is None:
            problems.append(f"{where} {name} has no Catch of States.ALL")
            continue
        expected = fail_name if name in after_start else None
        target = catcher.get("Next")
        if expected and target != expected:
            problems.append(f"{where} {name} runs after {start_name}: its Catch must go to {fail_name} (the job "
                            f"is marked failed), not {target!r}")
        if not expected and target not in fails:
            problems.append(f"{where} {name} runs before {start_name} (no job yet): its Catch must go to a Fail "
                            f"state, not {target!r}")
        result = catcher.get("ResultPath")
        if expected and marked_error != f"{result}.Error":
            problems.append(f"{where} {name}'s Catch puts the error at {result!r}, but {fail_name} reads {marked_error!r}")
    if fail_name in states:
        if field(fail_body, "job_id") != f"{start_result}.job_id":
            problems.append(f"{where} {fail_name}: job_id should be {start_result}.job_id (what {start_name} answers)")
        if isinstance(marked_error, str) and field(fail_body, "cause") != marked_error.rsplit(".", 1)[0] + ".Cause":
            problems.append(f"{where} {fail_name}: cause should sit beside error ({marked_error})")
        catcher = catch_all(fail_state)
        if fail_state.get("Next") not in fails or catcher is None or catcher.get("Next") not in fails:
            problems.append(f"{where} {fail_name} must go to a Fail state, whether it succeeds or not")
        elif isinstance(marked_error, str) and catcher.get("ResultPath") == marked_error.rsplit(".", 1)[0]:
            problems.append(f"{where} {fail_name}'s own Catch overwrites the error it reports")
        if fail_state.get("ResultPath", "$") is not None:
            problems.append(f"{where} {fail_name} should keep its input (ResultPath null) for the Fail state")

    # The role: what it exports, invokes and starts, and where it touches S3.
    stmts = policy_statements(sm_props)
    if not stmts and "Role" in sm_props:
        problems.append(f"{where} give it inline Policies (a Role cannot be checked here)")
    tables = [logical_id(r) for st in stmts if "dynamodb:ExportTableToPointInTime" in as_list(st.get("Action"))
              for r in as_list(st.get("Resource"))]
    if not tables:
        problems.append(f"{where} its role may export no table (dynamodb:ExportTableToPointInTime)")
    for table in tables:
        if table is None or table not in resources:
            problems.append(f"{where} dynamodb:ExportTableToPointInTime must name the tables (!GetAtt Table.Arn)")
        elif get(resources[table], "Properties", "PointInTimeRecoverySpecification",
                 "PointInTimeRecoveryEnabled") is not True:
            problems.append(f"{table}: exported at scale, so PointInTimeRecoveryEnabled must be true")
    if not any("lambda:InvokeFunction" in as_list(st.get("Action"))
               and any(logical_id(r) == fn_name for r in as_list(st.get("Resource"))) for st in stmts):
        problems.append(f"{where} its role may not invoke {fn_name}")
    name_sub = sub_text(sm_props.get("Name"))
    if not name_sub or not any(
        "states:StartExecution" in as_list(st.get("Action"))
        and any(t.endswith(f":stateMachine:{name_sub}") for t in resource_texts(st.get("Resource")))
        for st in stmts
    ):
        problems.append(f"{where} needs a Name and states:StartExecution on itself (the Distributed Map's children)")
    for st in stmts:
        actions = [a for a in as_list(st.get("Action")) if isinstance(a, str)]
        if any(a.startswith("s3:") and "Object" in a for a in actions):
            for text in resource_texts(st.get("Resource")):
                if not any(text.endswith(f"/{p}*") for p in (dynamodb_prefix, scale_prefix)):
                    problems.append(f"{where} S3 statement {st.get('Sid') or ''} resource {text!r} is not under "
                                    f"{dynamodb_prefix!r} or {scale_prefix!r}")
    return [f"{sm_name}->{fn_name} ({len(states)} states, Distributed Map {map_name})"]


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", nargs="?", default=str(repo / "template.yaml"))
    parser.add_argument("--workspace", default=str(repo), help="Cargo workspace root (default: the repository)")
    args = parser.parse_args(argv)

    template_path = Path(args.template)
    try:
        template = load_template(template_path)
    except (OSError, yaml.YAMLError, ValueError) as e:
        print(f"check_template: cannot load {template_path}: {e}", file=sys.stderr)
        return 1

    problems, summary, routes, machines = check(template, Path(args.workspace), template_path)
    if problems:
        print(f"check_template: {len(problems)} problem(s) in {template_path}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    checked = f", {len(routes)} route(s) as in openapi.yaml" if routes is not None else ""
    checked += "".join(f", state machine {m}" for m in machines)
    print(f"check_template: OK - {len(summary)} function(s) ({', '.join(summary)}), {RUNTIME}, "
          f"binaries found in the workspace{checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
