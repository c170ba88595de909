-- Phone channels: pairing codes, cards answered by number or button, who wrote first, sends waiting for a channel.

CREATE TABLE pairing_codes (
    code TEXT NOT NULL,               -- 4 digits the person sends to the bot from the chat to bind
    channel_type TEXT NOT NULL,
    intent TEXT NOT NULL,             -- 'owner' or 'wire:<agent_group_id>'
    state TEXT NOT NULL CHECK (state IN ('pending', 'used', 'invalidated')),
    created_at TEXT NOT NULL,
    used_by TEXT,                     -- the namespaced user id that sent the code
    platform_id TEXT,                 -- the chat it was sent from
    PRIMARY KEY (channel_type, code, created_at)
);
CREATE INDEX pairing_codes_pending ON pairing_codes (channel_type, state);

CREATE TABLE channel_cards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- short: Telegram callback data carries it (64-byte limit)
    channel_type TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    question_id TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    options_json TEXT NOT NULL,       -- [{"label", "value", "selected_label"}]
    platform_message_id TEXT,
    answer TEXT,                      -- the chosen value once answered
    created_at TEXT NOT NULL
);
CREATE INDEX channel_cards_open ON channel_cards (channel_type, platform_id, answer);
CREATE UNIQUE INDEX channel_cards_question ON channel_cards (channel_type, question_id);

CREATE TABLE channel_contacts (
    channel_type TEXT NOT NULL,
    platform_id TEXT NOT NULL,        -- a chat that wrote to us first: replies there are not cold messages
    first_seen_at TEXT NOT NULL,
    PRIMARY KEY (channel_type, platform_id)
);

-- A send refused because its channel was down waits here without using up its attempts.
ALTER TABLE delivery_attempts ADD COLUMN waiting_channel TEXT;
CREATE INDEX delivery_attempts_waiting ON delivery_attempts (waiting_channel) WHERE waiting_channel IS NOT NULL;
