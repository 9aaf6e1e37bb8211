"""Look at and kill the pool replicas of a running stack (this process must be the Ray driver)."""

from __future__ import annotations

import ray

REPLICA_PREFIX = "SERVE_REPLICA::{app}#LLMServer:"
ROUTER_PREFIX = "SERVE_REPLICA::{app}#router#"


def pool_replicas(app: str = "frontier") -> dict[str, list]:
    """Alive replica actor handles by pool name (named actors need no dashboard)."""
    prefix = REPLICA_PREFIX.format(app=app)
    replicas: dict[str, list] = {}
    for actor in ray.util.list_named_actors(all_namespaces=True):
        name = actor["name"]
        if name.startswith(prefix):
            pool = name[len(prefix):].split("#", 1)[0].removesuffix("-pool")
            replicas.setdefault(pool, []).append(ray.get_actor(name, namespace=actor["namespace"]))
    return replicas


def ongoing_requests(app: str = "frontier") -> dict[str, int]:
    """Requests each pool's replicas are working on right now (summed over replicas)."""
    counts = {}
    for pool, handles in pool_replicas(app).items():
        counts[pool] = sum(ray.get([h.get_num_ongoing_requests.remote() for h in handles], timeout=30))
    return counts


def router_replicas(app: str = "frontier") -> list:
    """Alive replica actor handles of the router deployment."""
    prefix = ROUTER_PREFIX.format(app=app)
    return [ray.get_actor(actor["name"], namespace=actor["namespace"])
            for actor in ray.util.list_named_actors(all_namespaces=True) if actor["name"].startswith(prefix)]
