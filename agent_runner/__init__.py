"""Agent runner: the loop that runs inside each session's container. Never imports ``nanoclaw_app``."""
