"""Duplicate keys in a JSON object: refused (FHIR JSON has unique names; orjson silently keeps the last).

The check is cheap for the common body: a compact body that exact_json writes back byte for
byte dropped no key. Otherwise every key ends with a quote followed by a colon, so counting
`"` + whitespace + `:` in the body and in orjson's re-serialisation of the parsed value tells whether any
key was dropped, as long as the body escapes no backslash (a quote escaped inside a string counts on both
sides alike). Only when the counts differ, or the body holds an escaped backslash, is the body parsed again
with the stdlib's object_pairs_hook, which names the duplicate.
"""

import json
import re

from .. import exact_json

KEY_END = re.compile(rb'"\s*:')
ESCAPED_QUOTE_COLON = re.compile(rb'\\"\s*:')
SPACED_COLONS = (b" :", b"\t:", b"\n:", b"\r:")


def _key_count(document: bytes) -> int:
    if not any(spaced in document for spaced in SPACED_COLONS):  # no key ends with `" :`: count bytes
        return document.count(b'":') - document.count(b'\\":')
    return len(KEY_END.findall(document)) - len(ESCAPED_QUOTE_COLON.findall(document))


def duplicate_key(body: bytes, parsed: object) -> str | None:
    """The first duplicated key in the body (parsed by exact_json as `parsed`), or None."""
    if not isinstance(parsed, (dict, list)):
        return None
    compact = exact_json.dumps(parsed)
    if compact == body:
        return None  # written back every byte: no key was dropped
    if b"\\\\" not in body and _key_count(body) == _key_count(compact):
        return None
    found: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict:
        seen = set()
        for key, _ in items:
            if key in seen and not found:
                found.append(key)
            seen.add(key)
        return dict(items)

    try:
        json.loads(body, object_pairs_hook=pairs)
    except ValueError:
        return None
    return found[0] if found else None
