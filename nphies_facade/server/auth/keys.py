"""The server's own signing key (for the tokens the built-in authorization server issues) and its JWKS.

Generated on first start into `{data_dir}/secrets/token-signing-key.pem` (0600), an EC P-256 key used
with ES256; its `kid` is the RFC 7638 thumbprint of the public key.
"""

import base64
import hashlib
import json
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from .jwks import UnknownKey
from .secret_files import read_or_create

KEY_FILE = "token-signing-key.pem"


def _new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 of the required members in lexicographic order, base64url without padding."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")


class ServerKey:
    algorithm = "ES256"

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private_key = private_key
        public = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        self.kid = thumbprint(public)
        self.public_jwk = {**public, "kid": self.kid, "alg": self.algorithm, "use": "sig"}
        self._verification = jwt.PyJWK(self.public_jwk, self.algorithm)

    def __repr__(self) -> str:
        return f"ServerKey(kid={self.kid!r})"

    @classmethod
    def load_or_create(cls, secrets_dir: Path) -> "ServerKey":
        pem = read_or_create(secrets_dir / KEY_FILE, _new_key_pem)
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{secrets_dir / KEY_FILE} does not hold an EC private key")
        return cls(key)

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self._private_key, algorithm=self.algorithm, headers={"kid": self.kid})

    def jwks(self) -> dict:
        return {"keys": [self.public_jwk]}

    async def key(self, kid: str | None) -> jwt.PyJWK:
        """The verification key for tokens this server signed (the same interface as a JWKS cache)."""
        if kid is not None and kid != self.kid:
            raise UnknownKey(f"kid {kid!r} is not this server's signing key")
        return self._verification
