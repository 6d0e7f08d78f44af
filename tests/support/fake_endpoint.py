"""The fake SageMaker endpoint the function tests call: the real protocol server, scripted.

``fake_endpoint`` is one server for the session (reset for each test): the model server's HTTP
layer, validation and SageMaker error shapes with a ``ScriptedBackend`` in place of the model.
Registered as a pytest plugin by tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.environment import ENDPOINT_NAME, MAX_INPUT_TOKENS, MAX_TOTAL_TOKENS
from tools.model_server.scripted_backend import ScriptedBackend
from tools.model_server.server import SageMakerTGIServer


@dataclass
class FakeEndpoint:
    """The fake SageMaker runtime as tests drive it: script replies, read what it received."""

    server: SageMakerTGIServer
    backend: ScriptedBackend
    invocations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def reply(self, *steps: Any) -> None:
        self.backend.script(*steps)

    @property
    def last_request(self) -> dict[str, Any]:
        assert self.invocations, "the endpoint received no request"
        return self.invocations[-1]


@pytest.fixture(scope="session")
def _endpoint_server() -> Iterator[FakeEndpoint]:
    backend = ScriptedBackend()
    invocations: list[dict[str, Any]] = []
    server = SageMakerTGIServer(
        backend,
        ENDPOINT_NAME,
        max_input_tokens=MAX_INPUT_TOKENS,
        max_total_tokens=MAX_TOTAL_TOKENS,
        on_invocation=lambda _name, body: invocations.append(body),
    )
    server.start()
    try:
        yield FakeEndpoint(server, backend, invocations)
    finally:
        server.stop()


@pytest.fixture
def fake_endpoint(_endpoint_server: FakeEndpoint) -> FakeEndpoint:
    _endpoint_server.backend.reset()
    _endpoint_server.invocations.clear()
    return _endpoint_server
