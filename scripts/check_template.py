#!/usr/bin/env python3
"""Checks template.yaml against the Cargo workspace, offline.

For every AWS::Serverless::Function:
  * Metadata.BuildMethod is rust-cargolambda and Metadata.BuildProperties.Binary names a
    binary of a workspace member (an explicit [[bin]], or the implicit one of src/main.rs),
    each binary used by at most one function; a binary of a functions/*/Cargo.toml crate
    that is not (yet) a workspace member is accepted with a warning;
  * its Runtime (own or from Globals) is provided.al2023, its Handler is bootstrap and its
    CodeUri is the workspace root (where cargo-lambda must run);
  * its S3 object statements stay under EXPORT_KEY_PREFIX.
And for the template as a whole:
  * every environment variable that common/src/config.rs reads is set (Globals or function),
    except the link variables (PUBLIC_API_URL): a function the HttpApi routes to cannot
    reference that API (circular dependency), so these are required exactly on the
    functions allowed to send email (ses:SendEmail), which build the links;
  * the bucket's expiry lifecycle rule covers EXPORT_KEY_PREFIX;
  * the functions' HttpApi events are exactly the operations of openapi.yaml (which
    tests/tests/openapi.rs keeps equal to exportctl's ROUTES), each served once;
  * the HttpApi's CORS AllowMethods (when it lists any) admit every routed method.

Usage: .venv/bin/python scripts/check_template.py [TEMPLATE] [--workspace DIR]
Needs Python >= 3.11 (tomllib) and PyYAML (installed with cfn-lint).
Exits 1 listing every problem, else prints one OK line.
"""

from __future__ import annotations

import argparse
import glob
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


def policy_actions(props: dict) -> set[str]:
    """Every Allow action of a function's inline policy statements."""
    actions: set[str] = set()
    for policy in as_list(props.get("Policies")):
        for stmt in as_list(get(policy, "Statement")):
            if get(stmt, "Effect") == "Allow":
                actions.update(a for a in as_list(get(stmt, "Action")) if isinstance(a, str))
    return actions


# --------------------------------------------------------------------------- checks
def check(
    template: dict, root: Path, template_path: Path
) -> tuple[list[str], list[str], dict[tuple[str, str], str] | None]:
    """Problems, the function->binary summary, and the checked routes (None: unchecked)."""
    problems: list[str] = []
    summary: list[str] = []
    resources = template.get("Resources") or {}
    globals_fn = get(template, "Globals", "Function", default={}) or {}
    global_env = get(globals_fn, "Environment", "Variables", default={}) or {}

    try:
        bins = workspace_binaries(root)
        outside = function_crate_binaries(root, set(workspace_member_dirs(root)))
    except (OSError, tomllib.TOMLDecodeError) as e:
        return [f"cannot read the Cargo workspace at {root}: {e}"], [], None

    functions = {name: r for name, r in resources.items() if isinstance(r, dict) and r.get("Type") == FUNCTION_TYPE}
    if not functions:
        problems.append(f"no {FUNCTION_TYPE} resources in {template_path}")

    prefix = global_env.get("EXPORT_KEY_PREFIX")
    used_binaries: dict[str, str] = {}
    routes: dict[tuple[str, str], str] = {}
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
            for policy in as_list(props.get("Policies")):
                for stmt in as_list(get(policy, "Statement")):
                    actions = [a for a in as_list(get(stmt, "Action")) if isinstance(a, str)]
                    if not any(a.startswith("s3:") and "Object" in a for a in actions):
                        continue
                    for text in resource_texts(get(stmt, "Resource")):
                        if not text.endswith(f"/{prefix}*"):
                            problems.append(
                                f"{where} S3 object statement {get(stmt, 'Sid') or ''} resource {text!r} "
                                f"is not limited to EXPORT_KEY_PREFIX {prefix!r} (expected ...'/{prefix}*')"
                            )

        for event_name, event in (props.get("Events") or {}).items():
            if not isinstance(event, dict) or event.get("Type") != "HttpApi":
                continue
            method, path = get(event, "Properties", "Method"), get(event, "Properties", "Path")
            if not isinstance(method, str) or not isinstance(path, str):
                problems.append(f"{where} HttpApi event {event_name} needs a literal Method and Path")
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
                    if isinstance(method, str):
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

    return problems, summary, routes if documented is not None else None


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

    problems, summary, routes = check(template, Path(args.workspace), template_path)
    if problems:
        print(f"check_template: {len(problems)} problem(s) in {template_path}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    checked = f", {len(routes)} route(s) as in openapi.yaml" if routes is not None else ""
    print(f"check_template: OK - {len(summary)} function(s) ({', '.join(summary)}), {RUNTIME}, "
          f"binaries found in the workspace{checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
