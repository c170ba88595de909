-- Loops an agent can start: which agent asked for an agent (agent-made agents are capped), and sessions the turn
-- budget paused (their new messages wait in inbound.db until the pause ends or the owner lets the agent go on).

ALTER TABLE agent_groups ADD COLUMN created_by TEXT REFERENCES agent_groups(id) ON DELETE SET NULL;

CREATE TABLE session_pauses (
    session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,               -- in plain words, as the owner was told
    paused_at TEXT NOT NULL,
    resume_at TEXT NOT NULL,            -- the pause ends by itself then (UTC ISO)
    approval_id TEXT                    -- the "let it continue" card sent to the owner, if one could be sent
);
