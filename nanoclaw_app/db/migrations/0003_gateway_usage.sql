-- The model gateway checks today's spend at start (SUM(cost_usd) WHERE created_at >= local midnight) and the
-- activity page reads recent calls: both scan by time across all agents.
CREATE INDEX usage_by_time ON usage (created_at);
