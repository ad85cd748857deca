"""HMAC-SHA256 signatures of rest-hook notifications, and their check on the receiving side.

The signed message is `{timestamp}.{subscription id}.{event number}.` followed by the body, so an empty
(no-payload) notification is still bound to its subscription, event and time.
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Nphies-Signature"
TIMESTAMP_HEADER = "X-Nphies-Timestamp"
SUBSCRIPTION_HEADER = "X-Nphies-Subscription"
EVENT_NUMBER_HEADER = "X-Nphies-Event-Number"
EVENT_TYPE_HEADER = "X-Nphies-Event-Type"


def signature(secret: str, timestamp: str, subscription_id: str, number: int, body: bytes) -> str:
    message = f"{timestamp}.{subscription_id}.{number}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """For receivers: True when the signature header matches (compared in constant time).

    `headers` is looked up case-insensitively through lower-cased names.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    number = lower.get(EVENT_NUMBER_HEADER.lower(), "0")
    expected = signature(
        secret,
        lower.get(TIMESTAMP_HEADER.lower(), ""),
        lower.get(SUBSCRIPTION_HEADER.lower(), ""),
        int(number) if number.isdigit() else -1,
        body,
    )
    return hmac.compare_digest(given.encode(), expected.encode())
