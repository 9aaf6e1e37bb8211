"""What every configuration section shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from frontier.routing.types import Pool

# Pool names are the routing vocabulary, typed once in ``frontier.routing.types``.
PoolName = Pool


class Strict(BaseModel):
    """A configuration section: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
