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
``P:fb``                stream  feedback events: ``cid kind value pool prop x o fm ts``; consumer group
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
``P:served``            hash    the state router replicas route on (fields of ``P:online``; ``version``
                                is the learner version it was frozen at). Changed only by a promotion,
                                a rollback or a reset, each announced on ``P:online:updates``.
``P:candidate``         hash    the learner's state frozen at the start of the promotion gate's window
                                (fields of ``P:online``); judged on the events applied after it.
``P:versions``          list    served versions, newest first, capped at ``feedback.versions_kept``:
                                each a JSON object: ``version``, ``source`` (initial, promoted,
                                rollback, reset), ``at``, the gate's ``estimate``, and ``state`` (the
                                ``P:online`` fields, base64) that ``frontier router rollback`` restores.
``P:gate``              hash    the promotion gate's last verdict: ``candidate``, ``served``,
                                ``promoted`` (0/1), ``verdict`` (JSON estimates), ``at``.
``P:ope``               list    applied feedback events for off-policy evaluation, oldest first, capped
                                at ``feedback.ope_log_size``, pushed in the MULTI/EXEC that applies
                                them: packed ``version`` (the first learner version that contains the
                                event), ``prop``, ``reward`` (feedback on the logged pool), pool,
                                offline logits, online features.
``P:ctl``               hash    cost controller: ``threshold``, ``integral``, ``share``, ``target``,
                                ``n``, ``updated_at``.
``P:ctl:recent``        list    the last ``controller.window`` policy-routed decisions, ``"score pool request"``.
``P:ctl:seq``           string  how many entries were ever pushed to ``P:ctl:recent`` (INCRed by the script that
                                pushes them): the controller reads only the entries new since its last step.
``P:ctl:leader``        string  the replica that runs the cost controller (a lease with an expiry).
``P:file:{id}``         hash    an uploaded or batch-written file: ``id``, ``bytes``, ``created_at``,
                                ``filename``, ``purpose``, ``key`` (owner API key name, "" if none),
                                ``path`` (its name in the batch storage, ``batch.storage_uri``).
``P:batch:{id}``        hash    a batch: ``spec`` (JSON: input file, endpoint, window, metadata,
                                created/expires at, owner key and its budgets), ``status``, ``total``,
                                ``completed``, ``failed`` (HINCRBY, only by the result script),
                                ``{status}_at`` times, ``output_file_id``, ``error_file_id``,
                                ``expired`` (set once a line expired).
``P:batch:{id}:res``    hash    results, one per line, written once (HSETNX) under ``c:{custom_id}`` (or
                                ``l:{line}`` without one): ``o|{line}|{json}`` (an output line) or
                                ``e|{line}|{json}`` (an error line). Deleted once the batch's files are
                                written (results of an ended batch are not written any more).
``P:batch:by-key:{k}``  zset    the batch ids of API key ``k`` ("" if none) by creation time.
``P:batch:tasks``       stream  batch lines to route: ``b`` (batch id), ``i`` (line number), ``o``/``n``
                                (byte offset and length in the input file); consumer group ``batch``.
                                An entry is XACKed and XDELed by the script that writes its result.
``P:batch:finalize``    set     batches whose files are to be written (all lines done, or cancelling).
``P:conv:{digest}``     string  a conversation (``serving/sessions.py``): ``"pool cid"``, the pool that answered
                                its last turn and that turn's completion id ("" if not logged); TTL
                                ``router.session.ttl_s``, renewed by every turn. ``digest``: a hash of the API
                                key's name and the conversation's identity (prompt_cache_key, x-session-id
                                or its messages up to a user turn).
======================  ======  ====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "online"
BATCH_GROUP = "batch"


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
    def served(self) -> str:
        return f"{self.prefix}:served"

    @property
    def candidate(self) -> str:
        return f"{self.prefix}:candidate"

    @property
    def versions(self) -> str:
        return f"{self.prefix}:versions"

    @property
    def gate(self) -> str:
        return f"{self.prefix}:gate"

    @property
    def ope(self) -> str:
        return f"{self.prefix}:ope"

    @property
    def ctl(self) -> str:
        return f"{self.prefix}:ctl"

    @property
    def ctl_recent(self) -> str:
        return f"{self.prefix}:ctl:recent"

    @property
    def ctl_seq(self) -> str:
        return f"{self.prefix}:ctl:seq"

    @property
    def ctl_leader(self) -> str:
        return f"{self.prefix}:ctl:leader"

    def file(self, file_id: str) -> str:
        return f"{self.prefix}:file:{file_id}"

    def batch(self, batch_id: str) -> str:
        return f"{self.prefix}:batch:{batch_id}"

    def batch_results(self, batch_id: str) -> str:
        return f"{self.prefix}:batch:{batch_id}:res"

    def batches_of(self, key_name: str) -> str:
        return f"{self.prefix}:batch:by-key:{key_name}"

    @property
    def batch_tasks(self) -> str:
        return f"{self.prefix}:batch:tasks"

    @property
    def batch_finalize(self) -> str:
        return f"{self.prefix}:batch:finalize"

    def conversation(self, digest: str) -> str:
        return f"{self.prefix}:conv:{digest}"
