"""Tools the agent can call: ours (messages, cards, tasks, agents, packages) and built-in ones for our own loop."""
