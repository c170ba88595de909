"""The credentials area: the agents' keys for other services. Values go in; names, hosts and "set" come out.

No response here ever carries a credential's value, not even to the page that just saved it.
"""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.services import credentials
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.credentials import CredentialInput, CredentialList, CredentialView, TestResult
from nanoclaw_app.web.pages import page
from nanoclaw_app.web.schemas import Ok


@dataclass
class CredentialForm:
    """The Add/Edit form; ``value`` is never sent back, and empty on an edit keeps the stored one."""

    name: str
    host_pattern: str
    kind: str = "bearer"
    field: str = ""
    agents: str | list[str] = "all"
    policy: str = "allow"
    test_url: str = ""
    value: str = ""

    def spec(self) -> CredentialInput:
        """Everything but the value."""
        return CredentialInput(name=self.name, host_pattern=self.host_pattern, kind=self.kind, field=self.field,
                               agents=self.agents, policy=self.policy, test_url=self.test_url)


class CredentialsController(Controller):
    """``/credentials`` and ``/api/credentials``."""

    @get("/credentials", include_in_schema=False)
    async def credentials_page(self) -> Template:
        """The page; its script loads the list and opens the Add form for ``?host=``."""
        return page("credentials.html", "credentials")

    @get("/api/credentials", summary="Credentials (never their values), the agents, and whether values can be saved")
    async def list_credentials(self, services: NamedDependency[AppServices]) -> CredentialList:
        """``secret`` is ``set``, ``missing`` or ``locked`` per credential."""
        return await credentials.page_data(services)

    @post("/api/credentials", status_code=201, summary="Add a credential")
    async def add(self, services: NamedDependency[AppServices], data: JSONBody[CredentialForm]) -> CredentialView:
        """400 with a sentence for bad input or a locked secret store; the value goes to the secret store only."""
        return await credentials.add(services, data.spec(), data.value)

    @put("/api/credentials/{credential_id:str}", summary="Change a credential (an empty value keeps the stored one)")
    async def edit(self, services: NamedDependency[AppServices], credential_id: FromPath[str],
                   data: JSONBody[CredentialForm]) -> CredentialView:
        """404 for an unknown credential."""
        return await credentials.edit(services, credential_id, data.spec(), data.value)

    @delete("/api/credentials/{credential_id:str}", status_code=200, summary="Remove a credential and its value")
    async def remove(self, services: NamedDependency[AppServices], credential_id: FromPath[str]) -> Ok:
        """The secret store must be open, so the value goes too."""
        await credentials.remove(services, credential_id)
        return Ok()

    @post("/api/credentials/{credential_id:str}/test", status_code=200, summary="Try a credential on its service")
    async def test(self, services: NamedDependency[AppServices], credential_id: FromPath[str]) -> TestResult:
        """One GET to its test address with the credential added; the answer in words (never the body)."""
        return await credentials.run_test(services, credential_id)


ROUTES: list[ControllerRouterHandler] = [CredentialsController]
