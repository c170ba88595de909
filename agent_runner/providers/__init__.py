"""Model providers: ``claude`` (claude-agent-sdk), ``anthropic`` and ``openai`` (our own tool loop)."""
