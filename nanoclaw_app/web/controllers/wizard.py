"""The setup wizard: its page and JSON API (``/setup``, ``/api/setup/...``); the logic is in ``services/setup.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.response import Template
from litestar.status_codes import HTTP_400_BAD_REQUEST
from litestar.types import ControllerRouterHandler, ExceptionHandlersMap

from nanoclaw_app.services import engine_check, engine_setup, setup
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.model_check import StepFailed
from nanoclaw_app.web.pages import page


@dataclass
class ModelIn:
    """Step 1: how agents reach a model. An empty key keeps the saved one."""

    kind: str
    api_key: str = ""
    base_url: str = ""
    model: str = ""


@dataclass
class ChannelStepIn:
    """A channel's step: leave it as ``done`` (the channel works) or ``skipped``."""

    channel: str
    outcome: str


@dataclass
class EngineActionIn:
    """Step 2: a fix the page offers (``install_podman``, ``init_machine``, ``install_wsl``, ...)."""

    action: str


@dataclass
class AgentIn:
    """Step 5: the agent's name."""

    name: str


def step_failed(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, str]]:
    """A step that did not pass: the message with its fix, and the form field it is about (for an inline error)."""
    assert isinstance(exc, StepFailed)
    return Response({"error": str(exc), "field": exc.field}, status_code=HTTP_400_BAD_REQUEST)


class WizardController(Controller):
    """The page and one endpoint per step."""

    exception_handlers: ExceptionHandlersMap = {StepFailed: step_failed}  # noqa: RUF012 - Litestar's own attribute

    @get("/setup", include_in_schema=False)
    async def wizard_page(self) -> Template:
        """The wizard; its script reads the state and walks through the steps."""
        return page("wizard.html", "wizard")

    @get("/api/setup/state", summary="Where the setup stands, with values to pre-fill")
    async def state(self, services: NamedDependency[AppServices]) -> setup.WizardState:
        """Which steps have passed, the saved model choice (never a key), the image build and the agent."""
        return await setup.wizard_state(services)

    @post("/api/setup/model", status_code=200, summary="Step 1: save and check model access")
    async def model(self, services: NamedDependency[AppServices], data: JSONBody[ModelIn]) -> setup.ModelResult:
        """Keeps the key and address, then makes one real tiny call through the gateway; a failure changes nothing."""
        return await setup.configure_model(services, data.kind, data.api_key, data.base_url, data.model)

    @post("/api/setup/engine", status_code=200, summary="Step 2: check the container engine and the agent image")
    async def engine(self, services: NamedDependency[AppServices]) -> engine_check.EngineReport:
        """Connects to Podman when it was not reachable at start; says what to do when it still is not."""
        return await engine_check.check_engine(services)

    @post("/api/setup/engine/action", status_code=202, summary="Step 2: fix the container engine for the user")
    async def engine_action(self, services: NamedDependency[AppServices],
                            data: JSONBody[EngineActionIn]) -> engine_setup.EngineTask:
        """Starts a fix the engine check offered (or reports the one running); progress: ``engine.task`` events."""
        return await engine_setup.start(services, data.action)

    @get("/api/setup/engine/action", summary="Step 2: the engine fix's progress")
    async def engine_action_progress(self, services: NamedDependency[AppServices]) -> engine_setup.EngineTask:
        """The running or last fix, as the ``engine.task`` events describe it."""
        return engine_setup.task_state(services)

    @post("/api/setup/image", status_code=202, summary="Step 2: build the agent image in the background")
    async def build(self, services: NamedDependency[AppServices]) -> engine_check.BuildState:
        """Starts it (or reports the one running); progress: ``image.build_*`` events; the end: ``setup.image``."""
        return await engine_check.start_image_build(services)

    @get("/api/setup/image", summary="Step 2: the agent image build's progress")
    async def build_progress(self, services: NamedDependency[AppServices]) -> engine_check.BuildState:
        """The running or last build, with its latest log lines."""
        return engine_check.build_state(services)

    @post("/api/setup/channel", status_code=200, summary="Move past a channel's step")
    async def channel(
        self, services: NamedDependency[AppServices], data: JSONBody[ChannelStepIn]
    ) -> setup.ChannelStepResult:
        """``done`` needs the channel working (linked, its token saved); ``skipped`` always passes.

        The pairing itself uses the channels API (``/api/channels/...``), shared with the channels page.
        """
        return await setup.finish_channel_step(services, data.channel, data.outcome)

    @post("/api/setup/agent", status_code=200, summary="Step 5: name the agent")
    async def agent(self, services: NamedDependency[AppServices], data: JSONBody[AgentIn]) -> setup.AgentState:
        """Creates the first agent (or renames it on a re-run) and wires the in-app chat and chats paired before."""
        return await setup.name_agent(services, data.name)

    @post("/api/setup/test", status_code=200, summary="Step 6: send a live test message and wait for the answer")
    async def live_test(self, services: NamedDependency[AppServices]) -> setup.LiveTestResult:
        """A real message through the in-app chat to the agent's container and back; a pass completes the setup."""
        return await setup.run_test(services)


ROUTES: list[ControllerRouterHandler] = [WizardController]
