-- The entity model of DESIGN.md §3 (the original v2.0.64 tables plus our additions).

CREATE TABLE agent_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    folder TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE messaging_groups (
    id TEXT PRIMARY KEY,
    channel_type TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    name TEXT,
    is_group INTEGER NOT NULL DEFAULT 0,
    unknown_sender_policy TEXT NOT NULL DEFAULT 'strict'
        CHECK (unknown_sender_policy IN ('strict', 'request_approval', 'public')),
    denied_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (channel_type, platform_id)
);

CREATE TABLE messaging_group_agents (
    id TEXT PRIMARY KEY,
    messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id) ON DELETE CASCADE,
    agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
    engage_mode TEXT NOT NULL DEFAULT 'mention'
        CHECK (engage_mode IN ('pattern', 'mention', 'mention-sticky')),
    engage_pattern TEXT,
    sender_scope TEXT NOT NULL DEFAULT 'all' CHECK (sender_scope IN ('all', 'known')),
    ignored_message_policy TEXT NOT NULL DEFAULT 'drop' CHECK (ignored_message_policy IN ('drop', 'accumulate')),
    session_mode TEXT NOT NULL DEFAULT 'shared' CHECK (session_mode IN ('shared', 'per-thread', 'agent-shared')),
    priority INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (messaging_group_id, agent_group_id)
);
CREATE INDEX mga_by_agent ON messaging_group_agents (agent_group_id);

CREATE TABLE users (
    id TEXT PRIMARY KEY,            -- '<channel>:<handle>'
    kind TEXT NOT NULL,
    display_name TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin')),
    agent_group_id TEXT REFERENCES agent_groups(id) ON DELETE CASCADE,
    granted_by TEXT,
    granted_at TEXT NOT NULL,
    CHECK (role = 'admin' OR agent_group_id IS NULL)   -- owner is global only
);
CREATE UNIQUE INDEX user_roles_key ON user_roles (user_id, role, COALESCE(agent_group_id, ''));

CREATE TABLE agent_group_members (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
    added_by TEXT,
    added_at TEXT NOT NULL,
    PRIMARY KEY (user_id, agent_group_id)
);

CREATE TABLE user_dms (
    user_id TEXT NOT NULL,
    channel_type TEXT NOT NULL,
    messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id) ON DELETE CASCADE,
    resolved_at TEXT NOT NULL,
    PRIMARY KEY (user_id, channel_type)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
    messaging_group_id TEXT REFERENCES messaging_groups(id) ON DELETE SET NULL,
    thread_id TEXT,
    session_mode TEXT NOT NULL DEFAULT 'shared',
    agent_provider TEXT,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    container_status TEXT NOT NULL DEFAULT 'stopped' CHECK (container_status IN ('stopped', 'starting', 'running', 'idle')),
    last_active TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX sessions_lookup ON sessions (agent_group_id, messaging_group_id, thread_id);
CREATE UNIQUE INDEX sessions_unique_scope
    ON sessions (agent_group_id, session_mode, COALESCE(messaging_group_id, ''), COALESCE(thread_id, ''))
    WHERE status = 'active';

CREATE TABLE pending_questions (
    question_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    message_out_id TEXT NOT NULL,
    platform_id TEXT,
    channel_type TEXT,
    thread_id TEXT,
    title TEXT NOT NULL,
    options_json TEXT NOT NULL,
    platform_message_id TEXT,
    answered_at TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE pending_approvals (
    approval_id TEXT PRIMARY KEY,
    session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
    request_id TEXT,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    agent_group_id TEXT REFERENCES agent_groups(id) ON DELETE CASCADE,
    approver_user_id TEXT,
    channel_type TEXT,
    platform_id TEXT,
    platform_message_id TEXT,
    title TEXT NOT NULL,
    options_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    decided_by TEXT,
    decided_at TEXT,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX pending_approvals_status ON pending_approvals (status, expires_at);

CREATE TABLE pending_sender_approvals (
    id TEXT PRIMARY KEY,
    messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id) ON DELETE CASCADE,
    agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
    sender_identity TEXT NOT NULL,
    sender_name TEXT,
    original_message TEXT NOT NULL,
    approver_user_id TEXT NOT NULL,
    channel_type TEXT,
    platform_id TEXT,
    platform_message_id TEXT,
    title TEXT NOT NULL,
    options_json TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (messaging_group_id, sender_identity)
);

CREATE TABLE pending_channel_approvals (
    messaging_group_id TEXT PRIMARY KEY REFERENCES messaging_groups(id) ON DELETE CASCADE,
    id TEXT NOT NULL UNIQUE,
    agent_group_id TEXT REFERENCES agent_groups(id) ON DELETE SET NULL,
    original_message TEXT NOT NULL,
    approver_user_id TEXT NOT NULL,
    channel_type TEXT,
    platform_id TEXT,
    platform_message_id TEXT,
    title TEXT NOT NULL,
    options_json TEXT NOT NULL,
    stage TEXT NOT NULL DEFAULT 'ask',     -- ask | choose_agent | name_agent
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE agent_destinations (
    agent_group_id TEXT NOT NULL REFERENCES agent_groups(id) ON DELETE CASCADE,
    local_name TEXT NOT NULL,
    target_type TEXT NOT NULL CHECK (target_type IN ('channel', 'agent')),
    target_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (agent_group_id, local_name)
);
CREATE INDEX agent_destinations_target ON agent_destinations (target_type, target_id);

CREATE TABLE dropped_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_type TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    user_id TEXT,
    sender_name TEXT,
    reason TEXT NOT NULL,
    detail TEXT,
    messaging_group_id TEXT,
    agent_group_id TEXT,
    last_text TEXT,
    message_count INTEGER NOT NULL DEFAULT 1,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE UNIQUE INDEX dropped_messages_key
    ON dropped_messages (channel_type, platform_id, COALESCE(user_id, ''), reason, COALESCE(agent_group_id, ''));

CREATE TABLE container_configs (
    agent_group_id TEXT PRIMARY KEY REFERENCES agent_groups(id) ON DELETE CASCADE,
    provider TEXT NOT NULL DEFAULT 'claude',
    model TEXT,
    effort TEXT,
    image_tag TEXT,
    assistant_name TEXT,
    max_messages_per_prompt INTEGER,
    skills TEXT NOT NULL DEFAULT '"all"',
    mcp_servers TEXT NOT NULL DEFAULT '{}',
    packages_apt TEXT NOT NULL DEFAULT '[]',
    packages_pip TEXT NOT NULL DEFAULT '[]',
    packages_npm TEXT NOT NULL DEFAULT '[]',
    additional_mounts TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT NOT NULL
);

-- Our additions -------------------------------------------------------------------------------------------

CREATE TABLE channel_accounts (
    id TEXT PRIMARY KEY,
    channel_type TEXT NOT NULL,
    name TEXT NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}',
    secret_names TEXT NOT NULL DEFAULT '[]',
    enabled INTEGER NOT NULL DEFAULT 1,
    health TEXT NOT NULL DEFAULT 'unknown',
    health_detail TEXT,
    last_connected_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (channel_type, name)
);

CREATE TABLE delivery_attempts (
    session_id TEXT NOT NULL,
    message_out_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('sending', 'retry', 'delivered', 'failed')),
    last_error TEXT,
    next_attempt_at TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (session_id, message_out_id)
);
CREATE INDEX delivery_attempts_state ON delivery_attempts (state);

CREATE TABLE usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_group_id TEXT,
    session_id TEXT,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX usage_by_day ON usage (agent_group_id, created_at);

CREATE TABLE denied_senders (
    messaging_group_id TEXT NOT NULL REFERENCES messaging_groups(id) ON DELETE CASCADE,
    sender_identity TEXT NOT NULL,
    agent_group_id TEXT,
    denied_by TEXT,
    denied_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (messaging_group_id, sender_identity)
);
