"""The SQLite schema of the embedded store.

resources   the current version of each resource (rid is the row key the other tables use)
history     every version, in write order (hid), deletions included
params      (resource type, search parameter code) -> pid, so index rows stay small
idx         extracted search values, one row per value; the columns s1..s4 and n1..n3 hold what the
            value type needs (see index_rows.py); its indexes serve the search SQL (search_sql.py)
outbox      change events in commit order (seq), consumed by the subscription relay

The delivery ledger (resources/ledger.py, sqlite/ledger.py):
relay_cursor, leases           the relay's position in the outbox and who may relay
sub_state                      per Subscription: the version the relay matches with, event count, failures
sub_events                     notification events by Subscription and number, with their delivery state
delivery_attempts              every delivery attempt, handshake and job run (who, what, when, outcome)
jobs                           workflow job records (queued, running, done, failed, dead)

Security (resources/security_store.py, sqlite/security.py):
audit       the audit trail, one row per record, chained by hash (seq is the chain order)
clients     clients registered with the built-in authorization server (JSON records)
used_jti    client-assertion ids already used, kept until the assertion expires
auth_records  SMART App Launch state by (kind, key): users, apps, pending authorizations, launch contexts,
            authorization codes, refresh tokens and grants (JSON bodies); `used` marks a one-time record
            taken, `purge_at` when the row may go
"""

PRAGMAS = (
    "PRAGMA busy_timeout=10000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA cache_size=-65536",
    "PRAGMA mmap_size=1073741824",
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
DROP INDEX IF EXISTS resources_updated;
CREATE INDEX IF NOT EXISTS resources_live ON resources (type, deleted);
CREATE INDEX IF NOT EXISTS resources_recent ON resources (type, deleted, last_updated);

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
DROP INDEX IF EXISTS idx_rid;
DROP INDEX IF EXISTS idx_s1;
DROP INDEX IF EXISTS idx_pid_s;
DROP INDEX IF EXISTS idx_n1;
DROP INDEX IF EXISTS idx_n2;
CREATE INDEX IF NOT EXISTS idx_rid_pid ON idx (rid, pid);
CREATE INDEX IF NOT EXISTS idx_key ON idx (pid, s1, s2, rid);
CREATE INDEX IF NOT EXISTS idx_low ON idx (pid, n1, n2, rid) WHERE n1 IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_high ON idx (pid, n2, n1, rid) WHERE n2 IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_width ON idx (pid, n3) WHERE n3 IS NOT NULL;

CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    action TEXT NOT NULL,
    at TEXT NOT NULL,
    trace_id TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS relay_cursor (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL);

CREATE TABLE IF NOT EXISTS sub_state (
    sub_id TEXT PRIMARY KEY,
    applied_version INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    events_total INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    handshake_ok INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS sub_events (
    eid INTEGER PRIMARY KEY,
    sub_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    action TEXT NOT NULL,
    at TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    recorded REAL NOT NULL,
    next_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (sub_id, number)
);
CREATE INDEX IF NOT EXISTS sub_events_pending ON sub_events (sub_id, number) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS sub_events_dead ON sub_events (sub_id, number) WHERE state = 'dead';
CREATE INDEX IF NOT EXISTS sub_events_channel ON sub_events (channel, eid);
CREATE INDEX IF NOT EXISTS sub_events_recorded ON sub_events (recorded) WHERE state = 'delivered';

CREATE TABLE IF NOT EXISTS delivery_attempts (
    aid INTEGER PRIMARY KEY,
    sub_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    channel TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status_code INTEGER,
    detail TEXT,
    duration_ms REAL,
    job_id TEXT,
    recorded REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_attempts_sub ON delivery_attempts (sub_id, aid);
CREATE INDEX IF NOT EXISTS delivery_attempts_recorded ON delivery_attempts (recorded);

CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    sub_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    next_at REAL NOT NULL,
    enqueued REAL NOT NULL DEFAULT 0,
    lease_until REAL NOT NULL DEFAULT 0,
    finished REAL,
    worker TEXT,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (next_at) WHERE state IN ('queued', 'failed', 'running');
CREATE INDEX IF NOT EXISTS jobs_sub ON jobs (sub_id, state);

CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    recorded TEXT NOT NULL,
    action TEXT NOT NULL,
    subtype TEXT NOT NULL,
    outcome TEXT NOT NULL,
    actor TEXT NOT NULL,
    client TEXT,
    role TEXT,
    entity TEXT,
    patient_hash TEXT,
    provider_hash TEXT,
    digest TEXT,
    trace_id TEXT NOT NULL,
    detail TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_patient ON audit (patient_hash, seq) WHERE patient_hash IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_entity ON audit (entity, seq) WHERE entity IS NOT NULL;

CREATE TABLE IF NOT EXISTS clients (id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS used_jti (key TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS auth_records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body BLOB NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    purge_at REAL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS auth_records_purge ON auth_records (purge_at) WHERE purge_at IS NOT NULL;
"""
