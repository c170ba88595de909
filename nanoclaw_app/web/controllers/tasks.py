"""The tasks area: the scheduled-tasks page and its JSON API (thin: the logic is in ``services/tasks.py``)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.services import tasks
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.web.pages import page


class TasksController(Controller):
    """``/tasks`` and ``/api/tasks``."""

    @get("/tasks", include_in_schema=False)
    async def tasks_page(self, services: NamedDependency[AppServices]) -> Template:
        """The page; its script loads the list from the API."""
        return page("tasks.html", "tasks", timezone=services.settings.timezone)

    @get("/api/tasks", summary="List scheduled tasks of every agent")
    async def list_tasks(
        self, services: NamedDependency[AppServices], status: FromQuery[str | None] = None
    ) -> tasks.TaskList:
        """Live tasks, soonest first; ``status`` is ``pending`` or ``paused`` to see only those."""
        return await tasks.list_tasks(services, status=status or None)

    @post("/api/tasks/{task_id:str}/pause", status_code=200, summary="Pause a scheduled task")
    async def pause(
        self, services: NamedDependency[AppServices], task_id: FromPath[str], session: FromQuery[str | None] = None
    ) -> tasks.TaskView:
        """The task stops firing until resumed; ``session`` picks the session when an id is in several."""
        return await tasks.pause_task(services, task_id, session_id=session)

    @post("/api/tasks/{task_id:str}/resume", status_code=200, summary="Resume a paused task")
    async def resume(
        self, services: NamedDependency[AppServices], task_id: FromPath[str], session: FromQuery[str | None] = None
    ) -> tasks.TaskView:
        """A resumed task whose time has passed fires at once."""
        return await tasks.resume_task(services, task_id, session_id=session)

    @post("/api/tasks/{task_id:str}/cancel", status_code=200, summary="Cancel a scheduled task for good")
    async def cancel(
        self, services: NamedDependency[AppServices], task_id: FromPath[str], session: FromQuery[str | None] = None
    ) -> tasks.TaskView:
        """Every future occurrence ends; the answer is the task as it was, with status ``cancelled``."""
        return await tasks.cancel_task(services, task_id, session_id=session)


ROUTES: list[ControllerRouterHandler] = [TasksController]
