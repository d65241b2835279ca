"""Payload sealing, key wrapping for enrollment certificates, and signed statements."""

from __future__ import annotations

import doctest
import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import medfabric.crypto
from medfabric.crypto import (
    BLOB_HEADER,
    CryptoError,
    ExpiredStatementError,
    IntegrityError,
    KeyUnwrapError,
    ReplayError,
    SignatureError,
    SignedStatement,
    WrappedKey,
    canonical_json,
    key_id,
    open_sealed,
    seal,
    sign_statement,
    unwrap_key,
    verify_statement,
    wrap_key,
)
from medfabric.gateway.identity import X509Identity, ecdsa_signer

NOW = datetime.now(timezone.utc)


def make_certificate(
    common_name: str,
    curve: ec.EllipticCurve = ec.SECP256R1(),
    issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
    *,
    valid_from: datetime = NOW - timedelta(days=1),
    valid_days: int = 365,
) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A key on `curve` and its PEM certificate, signed by `issuer` (self-signed CA without one)."""
    key = ec.generate_private_key(curve)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer_key, issuer_name = (issuer[0], issuer[1].subject) if issuer else (key, subject)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_from + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def ca():
    key, pem = make_certificate("ca.hospital-a.medfabric")
    return key, x509.load_pem_x509_certificate(pem), pem


@pytest.fixture(scope="module")
def doctor(ca):
    """An enrolled user of hospital A: (private key, certificate PEM, identity, signer)."""
    key, pem = make_certificate("doctor@hospital-a.medfabric", issuer=ca[:2])
    return key, pem, X509Identity("HospitalAMSP", pem), ecdsa_signer(key)


# -- sealing ---------------------------------------------------------------------------


def test_seal_open_round_trip_and_hashes():
    plaintext = b'{"resourceType":"Observation","status":"final"}'
    sealed = seal(plaintext, aad=b"rec-1/v1")
    assert open_sealed(sealed.blob, sealed.data_key, aad=b"rec-1/v1") == plaintext
    assert sealed.blob.startswith(BLOB_HEADER)
    assert len(sealed.blob) == len(BLOB_HEADER) + 12 + len(plaintext) + 16
    assert plaintext not in sealed.blob
    assert len(sealed.data_key) == 32
    assert sealed.plaintext_sha256 == hashlib.sha256(plaintext).hexdigest()
    assert sealed.ciphertext_sha256 == hashlib.sha256(sealed.blob).hexdigest()


def test_data_key_is_not_in_the_repr():
    sealed = seal(b"secret", aad=b"")
    assert sealed.data_key.hex() not in repr(sealed) and repr(sealed.data_key) not in repr(sealed)


def test_every_tampered_byte_of_the_blob_is_refused():
    sealed = seal(b"blood pressure 128/84", aad=b"rec-1")
    for index in range(len(sealed.blob)):
        tampered = bytearray(sealed.blob)
        tampered[index] ^= 0x01
        with pytest.raises(IntegrityError):
            open_sealed(bytes(tampered), sealed.data_key, aad=b"rec-1")


@pytest.mark.parametrize("aad", [b"rec-2", b"rec-1 ", b"", b"REC-1"])
def test_other_aad_is_refused(aad):
    sealed = seal(b"payload", aad=b"rec-1")
    with pytest.raises(IntegrityError, match="failed authentication"):
        open_sealed(sealed.blob, sealed.data_key, aad=aad)


def test_wrong_key_is_refused():
    sealed = seal(b"payload", aad=b"rec-1")
    with pytest.raises(IntegrityError):
        open_sealed(sealed.blob, seal(b"other", aad=b"").data_key, aad=b"rec-1")


@pytest.mark.parametrize("length, message", [(0, "truncated"), (31, "truncated"), (-1, "failed authentication")])
def test_truncated_blob_is_refused(length, message):
    sealed = seal(b"payload", aad=b"rec-1")
    with pytest.raises(IntegrityError, match=message):
        open_sealed(sealed.blob[:length], sealed.data_key, aad=b"rec-1")


def test_unknown_version_is_refused():
    sealed = seal(b"payload", aad=b"rec-1")
    with pytest.raises(IntegrityError, match="unknown header"):
        open_sealed(b"MFP\x02" + sealed.blob[4:], sealed.data_key, aad=b"rec-1")


def test_two_seals_of_one_plaintext_differ_but_hash_the_same_plaintext():
    first, second = seal(b"same record", aad=b"rec-1"), seal(b"same record", aad=b"rec-1")
    assert first.data_key != second.data_key
    assert first.blob[4:16] != second.blob[4:16]  # nonces
    assert first.blob != second.blob and first.ciphertext_sha256 != second.ciphertext_sha256
    assert first.plaintext_sha256 == second.plaintext_sha256


# -- key wrapping ----------------------------------------------------------------------


@pytest.fixture(scope="module", params=[ec.SECP256R1(), ec.SECP384R1()], ids=["P-256", "P-384"])
def reader(request, ca):
    return make_certificate("reader@hospital-b.medfabric", request.param, issuer=ca[:2])


def test_wrap_unwrap_round_trip_through_json(reader):
    private_key, certificate_pem = reader
    data_key = seal(b"x", aad=b"").data_key
    wrapped = wrap_key(data_key, certificate_pem, context=b"rec-1/v1/HospitalBMSP")
    carried = WrappedKey.from_dict(json.loads(json.dumps(wrapped.to_dict())))
    assert carried == wrapped
    assert unwrap_key(carried, private_key, certificate_pem, context=b"rec-1/v1/HospitalBMSP") == data_key
    assert data_key not in json.dumps(wrapped.to_dict()).encode()


def test_key_id_is_the_sha256_of_the_certificates_public_key(reader):
    private_key, certificate_pem = reader
    spki = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    wrapped = wrap_key(bytes(32), certificate_pem, context=b"c")
    assert wrapped.recipient_key_id == key_id(certificate_pem) == hashlib.sha256(spki).hexdigest()
    curve_bytes = private_key.curve.key_size // 8
    assert wrapped.ephemeral_public_key[0] == 4 and len(wrapped.ephemeral_public_key) == 1 + 2 * curve_bytes


def test_each_wrap_uses_a_fresh_ephemeral_key(reader):
    _, certificate_pem = reader
    first, second = (wrap_key(bytes(32), certificate_pem, context=b"c") for _ in range(2))
    assert first.ephemeral_public_key != second.ephemeral_public_key and first.wrapped_key != second.wrapped_key


def test_another_recipient_cannot_unwrap(reader, ca):
    _, certificate_pem = reader
    wrapped = wrap_key(bytes(32), certificate_pem, context=b"c")
    other_key, other_pem = make_certificate("other@hospital-c.medfabric", issuer=ca[:2])
    with pytest.raises(KeyUnwrapError, match="wrapped for recipient"):
        unwrap_key(wrapped, other_key, other_pem, context=b"c")
    with pytest.raises(KeyUnwrapError, match="does not belong"):
        unwrap_key(wrapped, other_key, certificate_pem, context=b"c")


def test_wrong_context_is_refused(reader):
    private_key, certificate_pem = reader
    wrapped = wrap_key(bytes(32), certificate_pem, context=b"rec-1/v1/HospitalBMSP")
    with pytest.raises(KeyUnwrapError, match="integrity check"):
        unwrap_key(wrapped, private_key, certificate_pem, context=b"rec-2/v1/HospitalBMSP")


def test_tampered_wrapped_key_is_refused(reader):
    private_key, certificate_pem = reader
    wrapped = wrap_key(bytes(32), certificate_pem, context=b"c")
    for field in ("wrapped_key", "ephemeral_public_key"):
        original = getattr(wrapped, field)
        for index in (0, len(original) // 2, len(original) - 1):
            tampered = bytearray(original)
            tampered[index] ^= 0x01
            with pytest.raises(KeyUnwrapError):
                unwrap_key(replace(wrapped, **{field: bytes(tampered)}), private_key, certificate_pem, context=b"c")
    with pytest.raises(KeyUnwrapError, match="algorithm"):
        unwrap_key(replace(wrapped, algorithm="RSA-OAEP"), private_key, certificate_pem, context=b"c")


def test_malformed_wrapped_key_json_is_refused():
    good = {"algorithm": "a", "recipient_key_id": "00", "ephemeral_public_key": "BA==", "wrapped_key": "AA=="}
    with pytest.raises(KeyUnwrapError, match="no 'wrapped_key'"):
        WrappedKey.from_dict({k: v for k, v in good.items() if k != "wrapped_key"})
    with pytest.raises(KeyUnwrapError, match="malformed"):
        WrappedKey.from_dict({**good, "wrapped_key": "not base64!"})


def test_unsupported_recipient_curve_is_refused(ca):
    _, p521_pem = make_certificate("reader", ec.SECP521R1(), issuer=ca[:2])
    with pytest.raises(CryptoError, match="P-256 or P-384"):
        wrap_key(bytes(32), p521_pem, context=b"c")
    with pytest.raises(ValueError, match="32 bytes"):
        wrap_key(bytes(16), make_certificate("reader")[1], context=b"c")


# -- signed statements -------------------------------------------------------------------


def test_signed_statement_verifies_after_a_json_round_trip(doctor, ca):
    _, certificate_pem, identity, signer = doctor
    request = {"action": "request", "record_id": "rec-1", "purpose": "treatment"}
    signed = sign_statement(request, signer, identity)
    carried = SignedStatement.from_dict(json.loads(json.dumps(signed.to_dict())))
    seen: set[str] = set()
    verified = verify_statement(carried, [ca[2]], max_age_s=60, seen_nonces=seen)
    assert verified.statement == request and verified.msp_id == "HospitalAMSP"
    assert verified.certificate.public_bytes(serialization.Encoding.PEM) == certificate_pem
    assert seen == {signed.nonce} and len(bytes.fromhex(signed.nonce)) == 16
    assert abs(verified.issued_at - datetime.now(timezone.utc)) < timedelta(seconds=5)


def test_signature_is_over_canonical_json(doctor):
    _, _, identity, signer = doctor
    signed = sign_statement({"b": 1, "a": [1, 2]}, signer, identity)
    body = json.loads(signed.signed_bytes())
    assert signed.signed_bytes() == canonical_json(body)
    assert body["format"] == "medfabric/statement/v1" and body["statement"] == {"a": [1, 2], "b": 1}


@pytest.mark.parametrize(
    "change",
    [
        {"statement": {"action": "request", "record_id": "rec-2"}},
        {"msp_id": "HospitalBMSP"},
        {"nonce": "00" * 16},
        {"issued_at": "2030-01-01T00:00:00.000+00:00"},
    ],
    ids=["statement", "msp_id", "nonce", "issued_at"],
)
def test_tampered_field_is_refused(doctor, ca, change):
    _, _, identity, signer = doctor
    signed = sign_statement({"action": "request", "record_id": "rec-1"}, signer, identity)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_statement(replace(signed, **change), [ca[2]], max_age_s=60)


def test_swapped_certificate_is_refused(doctor, ca):
    _, _, identity, signer = doctor
    signed = sign_statement({"action": "request"}, signer, identity)
    _, impostor_pem = make_certificate("doctor@hospital-a.medfabric", issuer=ca[:2])
    with pytest.raises(SignatureError, match="does not verify"):
        verify_statement(replace(signed, certificate_pem=impostor_pem.decode()), [ca[2]], max_age_s=60)


def test_untrusted_ca_is_refused(doctor):
    _, _, identity, signer = doctor
    signed = sign_statement({"action": "request"}, signer, identity)
    _, other_ca_pem = make_certificate("ca.hospital-a.medfabric")  # same name, other key
    with pytest.raises(SignatureError, match="not issued by a trusted CA"):
        verify_statement(signed, [other_ca_pem], max_age_s=60)


def test_certificate_outside_its_validity_is_refused(ca):
    key, pem = make_certificate("old@hospital-a.medfabric", issuer=ca[:2], valid_from=NOW - timedelta(days=30),
                                valid_days=10)
    signed = sign_statement({"action": "request"}, ecdsa_signer(key), X509Identity("HospitalAMSP", pem))
    with pytest.raises(SignatureError, match="signer certificate is valid from"):
        verify_statement(signed, [ca[2]], max_age_s=60)


def test_expired_ca_is_refused():
    ca_key, ca_pem = make_certificate("ca.old", valid_from=NOW - timedelta(days=30), valid_days=10)
    key, pem = make_certificate("doctor@old", issuer=(ca_key, x509.load_pem_x509_certificate(ca_pem)))
    signed = sign_statement({"action": "request"}, ecdsa_signer(key), X509Identity("OldMSP", pem))
    with pytest.raises(SignatureError, match="not issued by a trusted CA"):
        verify_statement(signed, [ca_pem], max_age_s=60)


@pytest.mark.parametrize(
    "offset, error",
    [
        (timedelta(seconds=61), "older than 60 s"),
        (timedelta(seconds=-31), "in the future"),
    ],
    ids=["expired", "future-dated"],
)
def test_statement_outside_the_freshness_window_is_refused(doctor, ca, offset, error):
    _, _, identity, signer = doctor
    signed = sign_statement({"action": "request"}, signer, identity)
    issued_at = datetime.fromisoformat(signed.issued_at)
    with pytest.raises(ExpiredStatementError, match=error):
        verify_statement(signed, [ca[2]], max_age_s=60, now=issued_at + offset)


@pytest.mark.parametrize("offset", [timedelta(seconds=59), timedelta(seconds=-29)], ids=["nearly-old", "small-skew"])
def test_statement_inside_the_freshness_window_is_accepted(doctor, ca, offset):
    _, _, identity, signer = doctor
    signed = sign_statement({"action": "request"}, signer, identity)
    verify_statement(signed, [ca[2]], max_age_s=60, now=datetime.fromisoformat(signed.issued_at) + offset)


def test_replayed_nonce_is_refused_and_refused_statements_leave_no_nonce(doctor, ca):
    _, _, identity, signer = doctor
    signed = sign_statement({"action": "deliver"}, signer, identity)
    seen: set[str] = set()
    with pytest.raises(SignatureError):
        verify_statement(signed, [], max_age_s=60, seen_nonces=seen)
    assert seen == set()
    verify_statement(signed, [ca[2]], max_age_s=60, seen_nonces=seen)
    with pytest.raises(ReplayError, match=signed.nonce):
        verify_statement(signed, [ca[2]], max_age_s=60, seen_nonces=seen)


def test_signer_that_does_not_match_the_identity_is_refused(doctor):
    _, _, identity, _ = doctor
    stranger = ecdsa_signer(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CryptoError, match="does not hold the key"):
        sign_statement({"action": "request"}, stranger, identity)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": "other"}, "not a signed statement"),
        ({"nonce": None}, "wrong types"),
        ({"signature": "%%%"}, "not base64"),
    ],
)
def test_malformed_signed_statement_is_refused(doctor, change, message):
    _, _, identity, signer = doctor
    data = {**sign_statement({"action": "request"}, signer, identity).to_dict(), **change}
    with pytest.raises(SignatureError, match=message):
        SignedStatement.from_dict(data)


def test_errors_are_one_line(doctor, ca):
    _, _, identity, signer = doctor
    signed = sign_statement({"action": "request"}, signer, identity)
    with pytest.raises(SignatureError) as refused:
        verify_statement(signed, [make_certificate("x")[1]], max_age_s=60)
    assert "\n" not in str(refused.value)


def test_docstring_examples_run(doctor, ca, reader):
    _, _, identity, signer = doctor
    reader_key, reader_pem = reader
    example_globals = {
        "reader_certificate_pem": reader_pem, "reader_private_key": reader_key,
        "signer": signer, "identity": identity, "ca_pem": ca[2], "seen": set(),
    }
    result = doctest.testmod(medfabric.crypto, extraglobs=example_globals)
    assert result.attempted > 0 and result.failed == 0
