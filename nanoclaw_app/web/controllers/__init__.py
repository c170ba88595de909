"""One controller module per area; :func:`nanoclaw_app.web.app.routes` registers them all."""
