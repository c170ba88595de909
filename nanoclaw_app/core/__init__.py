"""The host core: routing, permissions, approvals, delivery, sweep, scheduling and agent-to-agent."""
