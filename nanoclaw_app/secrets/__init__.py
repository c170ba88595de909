"""Secrets (model keys, channel tokens) in the OS keyring or an encrypted file; never in settings or a container."""
