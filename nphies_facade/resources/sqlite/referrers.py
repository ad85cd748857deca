"""The resources that refer to others, from the reference rows of the `idx` table (referential integrity).

A reference row holds the target's id in s1, its type in s2 and the reference as written (less history)
in s3; only relative references (`Type/id`) name resources of this server.
"""

import sqlite3
from collections.abc import Iterable


def referrers(
    db: sqlite3.Connection,
    pids: list[int],
    targets: Iterable[tuple[str, str]],
    limit: int,
) -> list[tuple[str, str]]:
    if not pids:
        return []
    marks = ",".join("?" * len(pids))
    sql = (
        "SELECT DISTINCT r.type, r.id FROM idx i JOIN resources r ON r.rid = i.rid "
        f"WHERE i.pid IN ({marks}) AND i.s1 = ? AND i.s2 = ? AND i.s3 = ? AND r.deleted = 0 LIMIT ?"
    )
    found = []
    for resource_type, resource_id in targets:
        target = f"{resource_type}/{resource_id}"
        rows = db.execute(sql, (*pids, resource_id, resource_type, target, limit)).fetchall()
        found += [(target, f"{kind}/{rid}") for kind, rid in rows]
    return found
