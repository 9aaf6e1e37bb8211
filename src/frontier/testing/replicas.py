"""Look at and kill the replicas of a running stack (this process must be the Ray driver)."""

from __future__ import annotations

import ray

REPLICA_PREFIX = "SERVE_REPLICA::{app}#LLMServer:"
ROUTER_PREFIX = "SERVE_REPLICA::{app}#router#"


def _named_replicas(prefix: str) -> list[tuple[str, object]]:
    """(name after ``prefix``, actor handle) of every alive replica whose actor name starts with ``prefix``
    (named actors need no dashboard)."""
    return [(actor["name"][len(prefix):], ray.get_actor(actor["name"], namespace=actor["namespace"]))
            for actor in ray.util.list_named_actors(all_namespaces=True) if actor["name"].startswith(prefix)]


def pool_replicas(app: str = "frontier") -> dict[str, list]:
    """Alive replica actor handles by pool name."""
    replicas: dict[str, list] = {}
    for rest, handle in _named_replicas(REPLICA_PREFIX.format(app=app)):
        pool = rest.split("#", 1)[0].removesuffix("-pool")
        replicas.setdefault(pool, []).append(handle)
    return replicas


def ongoing_requests(app: str = "frontier") -> dict[str, int]:
    """Requests each pool's replicas are working on right now (summed over replicas)."""
    counts = {}
    for pool, handles in pool_replicas(app).items():
        counts[pool] = sum(ray.get([h.get_num_ongoing_requests.remote() for h in handles], timeout=30))
    return counts


def router_replicas(app: str = "frontier") -> list:
    """Alive replica actor handles of the router deployment."""
    return [handle for _, handle in _named_replicas(ROUTER_PREFIX.format(app=app))]
