"""The request context every FhirService call carries: who acts, with which scopes, under which trace id."""

import uuid
from dataclasses import dataclass, field


def new_trace_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class RequestContext:
    actor: str = "anonymous"
    scopes: tuple[str, ...] = ()
    trace_id: str = field(default_factory=new_trace_id)

    @classmethod
    def system(cls, actor: str = "system") -> "RequestContext":
        return cls(actor=actor, scopes=("system/*.*",))
