"""Cluster audit: what already runs, judged under a policy as the webhook would judge a fresh CREATE.

:mod:`~webhook.audit.inventory` reads the objects (``kubectl get ... -o json`` output or manifests) and
groups pods under the workloads that own them; :mod:`~webhook.audit.lookups` looks every distinct image
up once for the whole input, bounded; :mod:`~webhook.audit.judge` runs each object through the offline
admission path (:class:`webhook.dryrun.DryRun`) and checks what each pod's status says it runs;
:mod:`~webhook.audit.overrides` changes modes for "what if this rule enforced" questions.
``imagegate audit`` (:mod:`webhook.cli.audit`) prints the result.
"""

from __future__ import annotations

__all__: list[str] = []
