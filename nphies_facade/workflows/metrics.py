"""The Prometheus metrics of workflows, NPHIES exchanges and the HTTP edge, and their text rendering.

The engine, the journeys and the operations record into the objects below. When the environment names
a multiprocess directory (`PROMETHEUS_MULTIPROC_DIR`, set by `nphies-facade serve` and `worker`, see
workflows/metrics_dir.py), every process writes its values there and `render()` sums them, so `/metrics`
answers the same whichever server process serves it.
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from .metrics_dir import MULTIPROCESS_ENV

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds: journeys that wait for people or payers take minutes to days, steps mostly milliseconds.
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
TURNAROUND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)
APPROVAL_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)

WORKFLOW_STARTED = Counter("nphies_workflow_started", "Workflow instances started", ["workflow"])
WORKFLOW_ENDED = Counter(
    "nphies_workflow_ended", "Workflow instances ended, by outcome", ["workflow", "outcome"]
)
STEP_SECONDS = Histogram(
    "nphies_workflow_step_seconds", "Duration of one step attempt", ["workflow", "step"], buckets=STEP_BUCKETS
)
STEP_RETRIES = Counter("nphies_workflow_step_retries", "Step attempts retried", ["workflow", "step"])
ESCALATIONS = Counter("nphies_workflow_escalations", "Steps escalated after their SLA", ["workflow", "step"])
SLA = Counter(
    "nphies_workflow_sla",
    "Steps that left within (met) or after (breached) their SLA",
    ["workflow", "step", "result"],
)
ELIGIBILITY_TURNAROUND = Histogram(
    "nphies_eligibility_turnaround_seconds",
    "From the registration that started the journey to the eligibility answer",
    buckets=TURNAROUND_BUCKETS,
)
CLAIM_SUBMISSIONS = Counter(
    "nphies_claim_submissions",
    "Claims the claims journey submitted, by end result (success, failure)",
    ["result"],
)
NPHIES_SENDS = Counter(
    "nphies_submission_sends",
    "Claim and prior-auth messages $submit sent, by what came of each send",
    ["result"],
)
NPHIES_RETRIES = Counter("nphies_exchange_retries", "NPHIES exchanges sent again", ["operation"])
PREAUTH_APPROVAL = Histogram(
    "nphies_preauth_approval_seconds",
    "From prior-auth submission to its final answer",
    buckets=APPROVAL_BUCKETS,
)
HTTP_REQUESTS = Counter("nphies_http_requests", "HTTP requests answered", ["kind", "status"])
HTTP_SECONDS = Histogram(
    "nphies_http_request_seconds", "HTTP request latency", ["kind"], buckets=HTTP_BUCKETS
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


def render() -> bytes:
    """The exposition text of every metric, summed over the processes sharing the multiprocess dir."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)
