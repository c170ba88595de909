"""Container runtimes: the interface the core calls, and the wake manager (dedup, global cap, queue)."""
