"""Turns a resource NPHIES sent into one we can store: its references made to name our resources.

An answer refers to what we sent by the fullUrls of our request (`urn:uuid:...`); those become the
`Type/id` of the stored resources again. References to other entries of the answer (what the payer made)
become logical references by identifier, since those resources are not stored here.
"""

from collections.abc import Mapping

from ..nphies.fhirjson import copy_json, first_identifier
from ..nphies.references import BundleIndex, iter_references

DROPPED_META = ("versionId", "lastUpdated", "source")


def local_references(full_urls: Mapping[str, str]) -> dict[str, str]:
    """fullUrl -> `Type/id`, from a Message's `Type/id` -> fullUrl (both ways of versioned references)."""
    return {url: reference.split("/_history/")[0] for reference, url in full_urls.items()}


def localize(resource: dict, answer: dict, local: Mapping[str, str]) -> dict:
    """A copy of `resource` (an entry of the `answer` Bundle) to store: no id, references made local."""
    stored = copy_json(resource)
    stored.pop("id", None)
    meta = {k: v for k, v in (stored.get("meta") or {}).items() if k not in DROPPED_META}
    if meta:
        stored["meta"] = meta
    else:
        stored.pop("meta", None)
    index = BundleIndex(answer)
    for found in list(iter_references(stored)):
        element = found.element
        target = local.get(element["reference"])
        if target is not None:
            element["reference"] = target
            continue
        _to_logical(element, index.resolve_resource(element["reference"]))
    return stored


def _to_logical(element: dict, target: dict | None) -> None:
    """A reference to a resource only the answer holds: by its identifier, else left as it came when it
    is an absolute URL (a urn:uuid means nothing outside its Bundle)."""
    identifier = first_identifier(target) if target is not None else None
    if identifier is not None:
        element.pop("reference")
        element["identifier"] = identifier.to_fhir()
        element.setdefault("type", target["resourceType"])
    elif element["reference"].startswith("urn:"):
        element.pop("reference")
        if target is not None:
            element.setdefault("type", target.get("resourceType"))
        element.setdefault("display", "a resource of the NPHIES answer")
