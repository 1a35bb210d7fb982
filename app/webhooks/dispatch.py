"""Starting a delivery once a job's terminal state (or a head change) is committed: on a thread of its own,
in the API and the worker alike, so a slow or failing receiver never holds a request, its database session
or its connection, the lineage, or the job. The delivery itself (signing, retries, attempts recorded on
the row): ``app.webhooks.delivery``.
"""

from __future__ import annotations

import threading

from app.webhooks.delivery import deliver_head_changes, deliver_job_webhook


def notify_terminal(job_id: str) -> threading.Thread:
    thread = threading.Thread(target=deliver_job_webhook, args=(job_id,), name=f"sculpt-webhook-{job_id}",
                              daemon=True)
    thread.start()
    return thread


def notify_head_changes(model_id: str | None = None) -> threading.Thread:
    """Post the lineage's pending head changes (every lineage's when None), in order, on a thread of its own."""
    thread = threading.Thread(target=deliver_head_changes, args=(model_id,),
                              name=f"sculpt-head-webhook-{model_id or 'all'}", daemon=True)
    thread.start()
    return thread
