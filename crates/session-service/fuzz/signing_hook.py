"""Schemathesis hooks for the session service (loaded through SCHEMATHESIS_HOOKS by
scripts/test-service-fuzz.sh).

Signing: the service wants every request signed over its exact method, path and query, body,
timestamp and nonce (crates/session-service/src/auth.rs). Schemathesis sends the placeholder
`X-Vault-Signature: sign-me` (given with -H) where it means to authenticate; this hook replaces
it, on the prepared request about to leave, with real X-Vault-Wallet, X-Vault-Timestamp,
X-Vault-Nonce and X-Vault-Signature headers signed by VAULT_FUZZ_SEED's key. A request without
the placeholder (schemathesis's own probes of missing or invalid credentials) goes out as it is.

Public keys: the document's `solana-pubkey` format is generated as base58 of 32 random bytes,
which is what the service accepts; the pattern alone would also produce strings that do not
decode to 32 bytes.

Every request sent is counted in VAULT_FUZZ_COUNT_FILE (for the totals the script prints).
"""

import atexit
import hashlib
import os
import secrets
import time

import requests
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
PLACEHOLDER = "sign-me"
DOMAIN = "ephemeral-vault-service/v1"


def b58(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = ALPHABET[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def wallet_of(seed_hex: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed_hex))
    return b58(key.public_key().public_bytes_raw())


_seed = os.environ.get("VAULT_FUZZ_SEED")
_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(_seed)) if _seed else None
_wallet = b58(_key.public_key().public_bytes_raw()) if _key else None
_count = 0
_original_send = requests.Session.send


def _signed_send(self, request, **kwargs):
    global _count
    _count += 1
    if request.headers.get("X-Vault-Signature") == PLACEHOLDER and _key is not None:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        timestamp = str(int(time.time()))
        nonce = secrets.token_urlsafe(24)
        message = "\n".join(
            [DOMAIN, request.method, request.path_url, hashlib.sha256(body).hexdigest(), timestamp, nonce, _wallet]
        )
        request.headers["X-Vault-Wallet"] = _wallet
        request.headers["X-Vault-Timestamp"] = timestamp
        request.headers["X-Vault-Nonce"] = nonce
        request.headers["X-Vault-Signature"] = b58(_key.sign(message.encode("utf-8")))
    return _original_send(self, request, **kwargs)


requests.Session.send = _signed_send


@atexit.register
def _write_count():
    path = os.environ.get("VAULT_FUZZ_COUNT_FILE")
    if path:
        with open(path, "w") as f:
            f.write(f"{_count}\n")


schemathesis.openapi.format("solana-pubkey", st.binary(min_size=32, max_size=32).map(b58))

if __name__ == "__main__":
    import sys

    print(wallet_of(sys.argv[1]))
