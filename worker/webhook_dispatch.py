"""The worker's side of webhooks: after a job's terminal state is committed, deliver it on a
thread of its own, so a slow or failing receiver never holds the lineage or fails the job.

The delivery itself (signing, retries, attempts recorded on the job) is shared with the API in
``app.webhooks.delivery``; this module imports no torch.
"""

from __future__ import annotations

import threading

from app.webhooks.delivery import deliver_job_webhook


def notify_terminal(job_id: str) -> threading.Thread:
    thread = threading.Thread(target=deliver_job_webhook, args=(job_id,), name=f"sculpt-webhook-{job_id}",
                              daemon=True)
    thread.start()
    return thread
