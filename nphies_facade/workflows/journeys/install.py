"""Registering the journeys with the workflow engine of this process, and taking them out again (tests).
Importing `registered` (named in NPHIES_FACADE_WORKFLOW_MODULES) installs them."""

from ..dsl import Workflow
from ..registry import definitions, register
from . import claims, eligibility
from .settings import JourneySettings


def journeys(settings: JourneySettings | None = None) -> tuple[Workflow, ...]:
    return (eligibility.workflow(settings), claims.workflow(settings))


def install(settings: JourneySettings | None = None) -> tuple[Workflow, ...]:
    return tuple(register(workflow) for workflow in journeys(settings))


def uninstall() -> None:
    for workflow in journeys():
        definitions.unregister(workflow.name)
