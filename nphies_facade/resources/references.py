"""Reading references and codes out of resource JSON by dotted element path ("participant.individual")."""

from collections.abc import Iterator


def elements_at(node: object, path: str) -> Iterator[object]:
    """Every value at a dotted path, stepping through lists at any level."""
    if isinstance(node, list):
        for item in node:
            yield from elements_at(item, path)
        return
    if not path:
        yield node
        return
    if not isinstance(node, dict):
        return
    head, _, rest = path.partition(".")
    if head in node:
        yield from elements_at(node[head], rest)


def references_at(resource: dict, path: str) -> list[str]:
    """The `reference` strings of the Reference elements at `path`, relative form kept as written."""
    found = []
    for element in elements_at(resource, path):
        if isinstance(element, dict) and isinstance(element.get("reference"), str):
            found.append(relative(element["reference"]))
    return found


def relative(reference: str) -> str:
    """'http://x/fhir/Patient/1/_history/2' -> 'Patient/1'; relative references pass unchanged."""
    parts = reference.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return "/".join(parts[-2:]) if len(parts) >= 2 else reference


def codes_at(resource: dict, path: str) -> set[str]:
    """Codes at a path holding code, Coding or CodeableConcept values, as 'code' and 'system|code'."""
    found: set[str] = set()
    for element in elements_at(resource, path):
        if isinstance(element, str):
            found.add(element)
            continue
        codings = element.get("coding", [element]) if isinstance(element, dict) else []
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                found.add(coding["code"])
                if isinstance(coding.get("system"), str):
                    found.add(f"{coding['system']}|{coding['code']}")
    return found
