"""The filter of conditional interactions (If-None-Exist, conditional update and delete): `_id` and token
criteria, read as SQLite's `find_ids` reads them: `code`, `system|code`, `|code` (no system)."""

FIND_IDS_LIMIT = 1000


def token_element(code: str, value: str) -> dict:
    system, sep, token = value.rpartition("|") if "|" in value else (None, "", value)
    element: dict = {"p": code, "s1": token}
    if sep and system:
        element["s2"] = system
    elif sep:
        element["s2"] = None
    return element


def conditional_filter(resource_type: str, criteria: list[tuple[str, str]]) -> dict:
    clauses: list[dict] = [{"type": resource_type}, {"deleted": False}]
    for code, value in criteria:
        if code == "_id":
            clauses.append({"id": value})
        else:
            clauses.append({"idx": {"$elemMatch": token_element(code, value)}})
    return {"$and": clauses}
