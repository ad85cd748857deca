"""FHIR operations that exchange messages with NPHIES: $eligibility, $submit, $cancel and Task $poll.

`NphiesOperations` (runtime.py) is what the server builds: eligibility.py asks in real time (cached),
submit.py starts a Task that steps.py advances (send, status-check, poll) through scheduler.py, cancel.py
cancels; exchanges.py records every message exchanged. The HTTP routes are in server/operation_routes.py.
"""

from .config import OperationsConfig
from .runtime import NphiesOperations

__all__ = ["NphiesOperations", "OperationsConfig"]
