"""An NPHIES simulator: a real server speaking $process-message, answering like the test payer INS-FHIR.

It is its own small Starlette app (a separate server), so it may import the web stack.
"""

from .app import create_simulator_app, run_simulator
from .payer import Payer
from .request import Reply
from .settings import AdjudicationRules, FaultRule, SimulatorSettings
from .validation import Verdict, validate_message

__all__ = [
    "AdjudicationRules",
    "FaultRule",
    "Payer",
    "Reply",
    "SimulatorSettings",
    "Verdict",
    "create_simulator_app",
    "run_simulator",
    "validate_message",
]
