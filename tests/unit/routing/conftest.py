"""Fixtures of the routing tests: recorded approval hooks and a router over the shared core context."""


from __future__ import annotations

import pytest

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.router import Router
from tests.unit.routing.helpers import Hooks


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def router(ctx: CoreContext, hooks: Hooks) -> Router:
    return Router(ctx, hooks, interceptors=[hooks.intercept])
