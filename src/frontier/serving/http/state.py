"""What the routes of one router replica use, injected into the app by ``build_app`` (routes read it with
``Depends(router_state)``), and the caller the auth middleware found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from frontier.security.keys import KeyInfo, KeyStore
from frontier.serving.access import KEY_STATE

if TYPE_CHECKING:
    from frontier.batch.service import BatchService
    from frontier.serving.metrics import Metrics
    from frontier.serving.online import OnlineRouting
    from frontier.serving.router_service import RouterService


@dataclass
class RouterState:
    """One replica's request path, its keys and body limits, and the optional online and batch layers."""

    service: RouterService
    keys: KeyStore
    max_body_bytes: int
    path_limits: dict[str, int] = field(default_factory=dict)  # routes with their own body limit (uploads)
    online: OnlineRouting | None = None
    batch: BatchService | None = None

    @property
    def metrics(self) -> Metrics:
        """This replica's metrics (the ones its request path records)."""
        return self.service.observer.metrics


def state_of(request: Request) -> RouterState:
    """The state of the app serving ``request``."""
    return request.app.state.frontier


async def router_state(request: Request) -> RouterState:
    """``state_of`` as a route dependency: async, since FastAPI runs a plain function in a worker thread."""
    return state_of(request)


def caller(request: Request) -> KeyInfo | None:
    """The authenticated caller (None without authentication)."""
    return getattr(request.state, KEY_STATE, None)


State = Annotated[RouterState, Depends(router_state)]
