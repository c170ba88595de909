-- Credentials for the agents' other services (values live only in the secret store), the egress activity log, and
-- each agent's internet access.

CREATE TABLE credentials (
    id TEXT PRIMARY KEY,                    -- cred-…; the secret store holds the value as "credential:<id>"
    name TEXT NOT NULL UNIQUE,              -- what people call it ("GitHub")
    host_pattern TEXT NOT NULL,             -- "api.github.com", "*.github.com", "127.0.0.1:8443"
    kind TEXT NOT NULL CHECK (kind IN ('bearer', 'basic', 'header', 'query')),
    field TEXT NOT NULL DEFAULT '',         -- the header name (kind header) or query parameter (kind query)
    agents_json TEXT NOT NULL DEFAULT '"all"', -- "all", or a JSON list of agent group ids
    policy TEXT NOT NULL DEFAULT 'allow' CHECK (policy IN ('allow', 'ask', 'ask_once')),
    test_url TEXT NOT NULL DEFAULT '',      -- an https URL on the host the "Test" button calls
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- "Ask once per conversation": a credential allowed for a session stays allowed for that session.
CREATE TABLE credential_grants (
    credential_id TEXT NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    approved_by TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (credential_id, session_id)
);

CREATE TABLE egress_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    agent_group_id TEXT,
    session_id TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('request', 'connect')), -- a credentialed request, or a connection
    credential_id TEXT,
    credential_name TEXT NOT NULL DEFAULT '',
    method TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    path TEXT NOT NULL DEFAULT '',          -- without the query string
    decision TEXT NOT NULL CHECK (decision IN ('allowed', 'approved', 'denied', 'expired', 'refused')),
    approved_by TEXT,                       -- user id of who allowed or denied it
    status_code INTEGER,                    -- the upstream's answer (or the proxy's own 403)
    reason TEXT NOT NULL DEFAULT ''         -- why it was refused, in words
);
CREATE INDEX egress_events_at ON egress_events (at);
CREATE INDEX egress_events_agent ON egress_events (agent_group_id, at);

ALTER TABLE agent_groups ADD COLUMN egress_mode TEXT NOT NULL DEFAULT 'open'
    CHECK (egress_mode IN ('open', 'sites'));
ALTER TABLE agent_groups ADD COLUMN egress_sites_json TEXT NOT NULL DEFAULT '[]';
