"""The Redis key layout of the feedback system (``P`` is ``redis.key_prefix``, default ``frontier``).

======================  ======  ====================================================================
key                     type    contents
======================  ======  ====================================================================
``P:dec:{cid}``         hash    one routed completion, TTL ``feedback.decision_ttl_s``: ``x`` (online
                                features, float16 bytes), ``o`` (offline logits light/reasoning,
                                float32 bytes), ``fm`` (feature-map fingerprint), ``pool``, ``prop``
                                (propensity of that pool), ``pv`` (policy version), ``sv`` (stats
                                version), ``key`` (API key id, "" if none), ``ts``; ``fb`` is set once,
                                by the first feedback (first feedback wins).
``P:fb``                stream  feedback events: ``cid kind value pool x o fm ts``; consumer group
                                ``online``. An entry is XACKed and XDELed in the same MULTI/EXEC that
                                applies it, so an entry that still exists has not been applied; its
                                length is the backlog, capped at intake (``feedback.max_backlog``).
``P:dec-index``         zset    completion ids by time: the decision log's size budget
                                (``feedback.max_decisions``); the oldest beyond it are deleted.
``P:online``            hash    the online model: ``fm``, ``dim`` (features per pool), ``version``,
                                ``updated_at``, ``mean`` / ``cov`` (joint posterior of both pools'
                                residual weights, float64 bytes), ``evidence`` (log Bayes factor of
                                online vs offline), ``{pool}:n`` (events applied, exact),
                                ``{pool}:ysum`` (sum of targets, exact),
                                ``applied``, ``stale`` (events dropped for another feature map).
``P:online:version``    string  the policy version, INCRed in the same MULTI/EXEC as ``P:online``.
``P:online:updates``    pubsub  channel on which each new version number is published.
``P:ctl``               hash    cost controller: ``threshold``, ``integral``, ``share``, ``target``,
                                ``n``, ``updated_at``.
``P:ctl:recent``        list    the last ``controller.window`` policy-routed decisions, ``"score pool"``.
``P:ctl:leader``        string  the replica that runs the cost controller (a lease with an expiry).
======================  ======  ====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "online"


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix."""

    prefix: str = "frontier"

    def decision(self, cid: str) -> str:
        return f"{self.prefix}:dec:{cid}"

    @property
    def stream(self) -> str:
        return f"{self.prefix}:fb"

    @property
    def decision_index(self) -> str:
        return f"{self.prefix}:dec-index"

    @property
    def online(self) -> str:
        return f"{self.prefix}:online"

    @property
    def version(self) -> str:
        return f"{self.prefix}:online:version"

    @property
    def channel(self) -> str:
        return f"{self.prefix}:online:updates"

    @property
    def ctl(self) -> str:
        return f"{self.prefix}:ctl"

    @property
    def ctl_recent(self) -> str:
        return f"{self.prefix}:ctl:recent"

    @property
    def ctl_leader(self) -> str:
        return f"{self.prefix}:ctl:leader"
