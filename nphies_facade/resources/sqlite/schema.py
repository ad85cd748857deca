"""The SQLite schema of the embedded store.

resources   the current version of each resource (rid is the row key the other tables use)
history     every version, in write order (hid), deletions included
params      (resource type, search parameter code) -> pid, so index rows stay small
idx         extracted search values, one row per value; the columns s1..s4 and n1..n3 hold what the
            value type needs (see index_rows.py)
outbox      change events in commit order (seq), consumed by the subscription relay
"""

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-65536",
    "PRAGMA mmap_size=268435456",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    rid INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    body BLOB,
    UNIQUE (type, id)
);
CREATE INDEX IF NOT EXISTS resources_updated ON resources (type, last_updated, id);

CREATE TABLE IF NOT EXISTS history (
    hid INTEGER PRIMARY KEY,
    rid INTEGER NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    method TEXT NOT NULL,
    body BLOB,
    UNIQUE (rid, version)
);
CREATE INDEX IF NOT EXISTS history_type ON history (type, hid);

CREATE TABLE IF NOT EXISTS params (
    pid INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    code TEXT NOT NULL,
    UNIQUE (type, code)
);

CREATE TABLE IF NOT EXISTS idx (
    rid INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    s1 TEXT, s2 TEXT, s3 TEXT, s4 TEXT,
    n1 REAL, n2 REAL, n3 REAL
);
CREATE INDEX IF NOT EXISTS idx_rid ON idx (rid);
CREATE INDEX IF NOT EXISTS idx_s1 ON idx (pid, s1, s2) WHERE s1 IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_n1 ON idx (pid, n1) WHERE n1 IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_n2 ON idx (pid, n2) WHERE n2 IS NOT NULL;

CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    action TEXT NOT NULL,
    at TEXT NOT NULL,
    trace_id TEXT NOT NULL
);
"""
