"""Message builders: stored FHIR resources in, NPHIES message Bundles out."""

from .assembly import Message, Receiver, assemble
from .closure import MessageBuildError, Resolver
from .config import ProviderConfig
from .requests import (
    build_claim_message,
    build_claim_request,
    build_communication,
    build_eligibility_request,
    build_payment_notice,
    build_priorauth_request,
)
from .tasks import build_cancel_request, build_poll_request, build_status_check

__all__ = [
    "Message",
    "MessageBuildError",
    "ProviderConfig",
    "Receiver",
    "Resolver",
    "assemble",
    "build_cancel_request",
    "build_claim_message",
    "build_claim_request",
    "build_communication",
    "build_eligibility_request",
    "build_payment_notice",
    "build_poll_request",
    "build_priorauth_request",
    "build_status_check",
]
