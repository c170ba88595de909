"""A small EgressPolicy for the proxy's tests: credentials per host:port, refusals on demand, records kept."""

from __future__ import annotations

from nanoclaw_app.egress.policy import Caller, ConnectPlan, EgressRecord, Injection, RequestVerdict


class FakePolicy:
    """What the app's policy decides, set by the test."""

    def __init__(self) -> None:
        self.credentials: dict[tuple[str, int], Injection] = {}
        """host:port -> the credential to add (its presence makes the proxy intercept)."""
        self.refuse_sites: dict[str, str] = {}
        """host -> the reason ``plan_connect`` refuses it."""
        self.deny: str = ""
        """When set, every request inside an intercepted connection is refused with this reason."""
        self.records: list[EgressRecord] = []
        self.asked: list[tuple[Caller, str, str, int, str]] = []
        self.connects: list[tuple[Caller, str, int]] = []

    async def plan_connect(self, caller: Caller, host: str, port: int) -> ConnectPlan:
        self.connects.append((caller, host, port))
        if host in self.refuse_sites:
            return ConnectPlan(refused=self.refuse_sites[host])
        return ConnectPlan(intercept=(host, port) in self.credentials)

    async def authorize(self, caller: Caller, method: str, host: str, port: int, path: str) -> RequestVerdict:
        self.asked.append((caller, method, host, port, path))
        injection = self.credentials.get((host, port))
        if self.deny:
            return RequestVerdict(refused=self.deny, decision="denied", credential_id="cred-1",
                                  credential_name="Test API", approved_by="owner")
        if injection is None:
            return RequestVerdict()
        return RequestVerdict(injection=injection, credential_id="cred-1", credential_name="Test API")

    def record(self, record: EgressRecord) -> None:
        self.records.append(record)

    def refused(self) -> list[EgressRecord]:
        return [record for record in self.records if record.decision == "refused"]
