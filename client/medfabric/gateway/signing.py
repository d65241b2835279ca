"""The client identity as peers see it, and messages signed with it."""

from __future__ import annotations

import hashlib

from google.protobuf.message import Message

from .identity import Identity, Signer


class SigningIdentity:
    """Creator bytes, the SHA-256 hash peers use, and the signer (None when signing offline)."""

    def __init__(self, identity: Identity, signer: Signer | None = None):
        self.identity = identity
        self.creator = identity.serialize()
        self._signer = signer

    @property
    def can_sign(self) -> bool:
        return self._signer is not None

    @staticmethod
    def hash(message: bytes) -> bytes:
        return hashlib.sha256(message).digest()

    def sign(self, digest: bytes) -> bytes:
        if self._signer is None:
            raise ValueError(
                "no signer: connect with one, or sign digest() offline and use the Gateway's new_signed_* methods"
            )
        return self._signer(digest)


class Signable:
    """A message the Gateway wants signed.

    to_bytes() serializes it whole, to keep it or to have it signed elsewhere;
    digest() is what the signer signs. It is signed once, when first sent,
    unless it was rebuilt already signed by a Gateway.new_signed_* method.
    """

    def __init__(self, signing_identity: SigningIdentity, message: Message, signed: Message, signed_field: str):
        self._signing_identity = signing_identity
        self._message = message  # serialized by to_bytes()
        self._signed = signed  # carries `signed_field` and its `signature`
        self._signed_field = signed_field

    def to_bytes(self) -> bytes:
        return self._message.SerializeToString()

    def digest(self) -> bytes:
        return self._signing_identity.hash(getattr(self._signed, self._signed_field))

    def _sign(self) -> None:
        if not self._signed.signature:
            self._signed.signature = self._signing_identity.sign(self.digest())
