-- The app window and its API: signed-in browsers, one-time login links, small app state, secret names, the in-app chat.

CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,      -- sha256 of the cookie value; the value itself is never stored
    origin TEXT NOT NULL CHECK (origin IN ('window', 'link', 'password')),
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE login_tokens (
    token_hash TEXT PRIMARY KEY,      -- sha256 of the one-time token in a login link
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE app_state (
    key TEXT PRIMARY KEY,             -- e.g. 'wizard.completed', 'web.lan_password', 'web.csrf_secret'
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE secret_names (
    name TEXT PRIMARY KEY,            -- the keyring entry name; values live only in the secret store
    label TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);

CREATE TABLE webchat_messages (
    id TEXT PRIMARY KEY,
    platform_id TEXT NOT NULL,        -- the conversation ('owner' for the owner's own chat)
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    kind TEXT NOT NULL DEFAULT 'text',  -- text | question | card | reaction | edit
    sender TEXT NOT NULL DEFAULT '',
    text TEXT NOT NULL DEFAULT '',
    files TEXT NOT NULL DEFAULT '[]',   -- [{"name", "mime_type", "size", "path"}] relative to <home>/webchat/
    card TEXT,                        -- question/approval card: {"question_id", "title", "options": [...], "answer"}
    target_id TEXT,                   -- for edit/reaction: the message it changes
    created_at TEXT NOT NULL
);
CREATE INDEX webchat_by_chat ON webchat_messages (platform_id, created_at);
