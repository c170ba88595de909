"""Per-session storage: the folder, ``inbound.db`` (host writes), ``outbound.db`` (container writes), inbox/outbox."""
