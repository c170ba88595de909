-- Messages a session database could not take for a moment (locked, busy, a file error): kept here and handed to the
-- session once it accepts them, in arrival order, under their own message id (so a retry never doubles one).

CREATE TABLE held_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- arrival order
    session_id TEXT NOT NULL,               -- no foreign key: a session closed meanwhile gets the message routed anew
    agent_group_id TEXT NOT NULL,
    channel_type TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    message_id TEXT NOT NULL,               -- the platform's id (the in-app chat's bubble id)
    user_id TEXT,
    trigger INTEGER NOT NULL,               -- 1 wakes the agent, 0 is context only
    message TEXT NOT NULL,                  -- InboundMessage.to_json()
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (session_id, message_id)
);
CREATE INDEX held_messages_due ON held_messages (next_attempt_at);
CREATE INDEX held_messages_by_message ON held_messages (channel_type, platform_id, message_id);
