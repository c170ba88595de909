"""The egress proxy: every agent container's only way out, adding credentials it never sees."""
