"""Checks a message Bundle against the NPHIES profile tables: required elements, fixed values, bindings."""

from collections.abc import Iterator
from typing import Any

from .issues import Issue
from .tables import ElementRule, Profile, profiles, rule_codes, terminology

PROFILE_BASE = "http://nphies.sa/fhir/ksa/nphies-fs/StructureDefinition/"


def check_message(bundle: dict) -> list[Issue]:
    """Issues found in an outgoing message: the Bundle and every entry that claims an NPHIES profile."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return [Issue("error", "structure", "Bundle", "a message must be a Bundle")]
    issues = check_resource(bundle, "bundle", "Bundle")
    entries = bundle.get("entry") or []
    first = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    if not isinstance(first, dict) or first.get("resourceType") != "MessageHeader":
        issues.append(
            Issue("error", "structure", "Bundle.entry[0]", "the first entry must be the MessageHeader")
        )
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            issues += check_entry(resource, f"Bundle.entry[{index}].resource")
    return issues


def check_entry(resource: dict, expression: str) -> list[Issue]:
    """Checks a resource against each NPHIES profile it claims; a resource claiming none is an issue."""
    claimed = [p for p in (resource.get("meta") or {}).get("profile") or [] if isinstance(p, str)]
    ids = [p[len(PROFILE_BASE) :].split("|")[0] for p in claimed if p.startswith(PROFILE_BASE)]
    if not ids:
        rule = rule_codes()["IC"].get(f"{resource.get('resourceType')}.meta.profile")
        message = f"{resource.get('resourceType')} claims no NPHIES profile in meta.profile"
        return [Issue("error", "required", f"{expression}.meta.profile", message, rule)]
    issues: list[Issue] = []
    for profile_id in ids:
        if profile_id in profiles():
            issues += check_resource(resource, profile_id, expression)
    return issues


def check_resource(resource: dict, profile_id: str, expression: str) -> list[Issue]:
    """Issues of one resource against one profile table."""
    profile = profiles()[profile_id]
    if resource.get("resourceType") != profile.resource_type:
        message = f"profile {profile_id} is for {profile.resource_type}, not {resource.get('resourceType')}"
        return [Issue("error", "structure", expression, message, "RE-00170")]
    issues: list[Issue] = []
    for rule in profile.rules:
        issues += _check_rule(resource, rule, profile, expression)
    return issues


def _check_rule(resource: dict, rule: ElementRule, profile: Profile, expression: str) -> Iterator[Issue]:
    if rule.extension:
        yield from _check_extension(resource, rule, profile, expression)
        return
    *parents, name = rule.segments
    for parent, where in _select(resource, parents, expression):
        if not isinstance(parent, dict):
            continue
        present = _children(parent, name)
        if rule.min and not present and not any(parent.get(alt) for alt in rule.alternatives):
            yield _missing(rule, profile, f"{where}.{name}", rule.path)
        for value, suffix in present:
            value_where = f"{where}{suffix}"
            if rule.fixed is not None and not _has_code(value, rule.fixed):
                message = f"{rule.path} must be {rule.fixed!r} in {profile.id}"
                yield Issue("error", "value", value_where, message, _fixed_rule(rule))
            yield from _check_binding(value, rule.value_set, rule.path, value_where)


def _check_extension(resource: dict, rule: ElementRule, profile: Profile, expression: str) -> Iterator[Issue]:
    segments = rule.segments
    element_path = f"{rule.path}.extension.{rule.slice}"
    for holder, where in _select(resource, segments, expression, primitive_extensions=True):
        if not isinstance(holder, dict):
            continue
        found = [
            e for e in holder.get("extension") or [] if isinstance(e, dict) and e.get("url") == rule.extension
        ]
        if rule.min and not found:
            yield _missing(rule, profile, f"{where}.extension", element_path, f"extension {rule.slice}")
        for ext in found:
            value = next((v for k, v in ext.items() if k.startswith("value")), None)
            yield from _check_binding(value, rule.value_set, element_path, f"{where}.extension")


def _missing(
    rule: ElementRule, profile: Profile, where: str, element_path: str, what: str | None = None
) -> Issue:
    codes = rule_codes()
    since = codes["since"].get(element_path)
    message = f"{what or element_path} is required by profile {profile.id}"
    if since:
        message += f" (mandatory since {since})"
    return Issue("error", "required", where, message, codes["IC"].get(element_path, "IC-01428"))


def _check_binding(value: Any, value_set: str | None, element_path: str, where: str) -> Iterator[Issue]:
    if value_set is None or value is None:
        return
    vs = terminology()["value_sets"].get(value_set) or terminology()["value_sets"].get(value_set.lower())
    if not vs or not vs["systems"]:
        return
    rule = rule_codes()["IB"].get(element_path)
    if element_path.endswith((".system", ".code", ".display")):
        return
    if isinstance(value, str):
        allowed = _allowed_codes(vs)
        if allowed is not None and value not in allowed:
            yield Issue("error", "code-invalid", where, f"{value!r} is not in {value_set}", rule)
        return
    codings = _codings(value)
    in_systems = [c for c in codings if c.get("system") in vs["systems"]]
    if not in_systems:
        systems = sorted({str(c.get("system")) for c in codings})
        yield Issue(
            "error",
            "code-invalid",
            where,
            f"{element_path} uses {systems}, not a system of {value_set}",
            rule,
        )
        return
    for coding in in_systems:
        allowed = _allowed_codes(vs, coding["system"])
        code = str(coding.get("code", "")).strip()
        if allowed is not None and code not in allowed:
            yield Issue("error", "code-invalid", where, f"{code!r} is not a code of {coding['system']}", rule)


def _allowed_codes(vs: dict, system: str | None = None) -> set[str] | None:
    """The codes a value set allows (from one of its systems), or None when the list is not vendored."""
    known = terminology()["code_systems"]
    allowed: set[str] = set()
    for candidate in [system] if system else vs["systems"]:
        codes = vs["codes"].get(candidate) or known.get(candidate)
        if codes is None:
            return None
        allowed |= {code.strip() for code in codes}
    return allowed


def _codings(value: Any) -> list[dict]:
    if isinstance(value, dict) and isinstance(value.get("coding"), list):
        return [c for c in value["coding"] if isinstance(c, dict)]
    if isinstance(value, dict) and "code" in value:
        return [value]
    return []


def _has_code(value: Any, fixed: str) -> bool:
    if isinstance(value, dict):
        return any(str(c.get("code", "")).strip().lower() == fixed.lower() for c in _codings(value))
    return value == fixed


def _fixed_rule(rule: ElementRule) -> str | None:
    return rule_codes()["IB"].get(rule.path)


def _select(
    node: Any, segments: list[str], where: str, primitive_extensions: bool = False
) -> Iterator[tuple[Any, str]]:
    """The nodes at `segments` below `node`, with their expressions (list items indexed)."""
    if not segments:
        yield node, where
        return
    head, rest = segments[0], segments[1:]
    if not isinstance(node, dict):
        return
    key = head
    if primitive_extensions and not rest and not isinstance(node.get(head), dict | list) and head in node:
        key = f"_{head}"
    for child, suffix in _children(node, key):
        yield from _select(child, rest, f"{where}{suffix}", primitive_extensions)


def _children(node: dict, name: str) -> list[tuple[Any, str]]:
    """(value, expression suffix) of an element: `.name` or `.name[i]` for each item of a list."""
    if name.endswith("[x]"):
        prefix = name[:-3]
        keys = [k for k in node if k.startswith(prefix) and k[len(prefix) : len(prefix) + 1].isupper()]
    else:
        keys = [name] if name in node else []
    found: list[tuple[Any, str]] = []
    for key in keys:
        value = node[key]
        if isinstance(value, list):
            found += [(v, f".{key}[{i}]") for i, v in enumerate(value) if v not in (None, "", [], {})]
        elif value not in (None, "", [], {}):
            found.append((value, f".{key}"))
    return found
