"""The web app's fixtures (a started host, a signed-in client, Chromium) for the desktop tests that use its API."""

from tests.web.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    anon,
    base_url,
    browser,
    client,
    keyring_backend,
    page,
    web_host,
    web_settings,
)
