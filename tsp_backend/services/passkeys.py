"""Passkeys: a browser becomes a device by registering a WebAuthn credential.

A browser device holds no card profile and no key of the service's; what it has is a passkey
made by the platform authenticator (W3C Web Authentication Level 3, "WebAuthn"). Registration
(§7.1) and every proof of presence (§7.2) are checked by py_webauthn — the CBOR, COSE and
signature work is that library's, never this module's. This module keeps the ceremonies'
state: the challenge of each ceremony lives in the store for :data:`CHALLENGE_TTL_S` and is
taken once, so a ceremony's answer cannot be replayed.

User verification is required in both ceremonies (``userVerification: "required"`` and the
UV flag checked, §6.1 bit 2): the passkey stands for the phone's biometric of a tap, the
consumer device CVM.

The signature counter is kept per credential; an assertion whose counter does not grow while
the stored one is non-zero is refused (§6.1.1, a cloned authenticator).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from tsp_backend.errors import Forbidden, NotFound, ValidationFailed
from tsp_backend.models import Device, Passkey, User, utcnow
from tsp_backend.stores import Store

RP_NAME = "hcekit wallet"
"""The relying party's name shown by the authenticator."""

CHALLENGE_TTL_S = 300
"""How long a ceremony's challenge may be answered."""

BROWSER = "browser"
"""``Device.kind`` of a browser device."""


@dataclass(frozen=True)
class RelyingParty:
    """Where the ceremonies happen: the RP ID (a registrable domain) and the page's origin."""

    rp_id: str
    origin: str


class PasskeyRefused(Forbidden):
    """The authenticator's answer did not verify (or its challenge was spent or expired)."""

    slug, title = "passkey-refused", "Passkey not accepted"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_Verified = TypeVar("_Verified")


def _checked(
    verify: Callable[..., _Verified],
    rp: RelyingParty,
    credential: Mapping[str, Any],
    challenge: bytes,
    **more: Any,
) -> _Verified:
    """``verify`` (py_webauthn's check of one ceremony) run for ``rp`` over ``challenge`` with
    user verification required; an answer that does not verify is :class:`PasskeyRefused`."""
    try:
        return verify(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            require_user_verification=True,
            **more,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused("the passkey could not be verified") from exc


def _take(store: Store, key: str) -> bytes | None:
    value = store.get(key)
    if value is not None:
        store.delete(key)
    return value


def registration_options(store: Store, rp: RelyingParty, user: User) -> str:
    """The ``PublicKeyCredentialCreationOptions`` (JSON) for a new passkey of ``user``."""
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=RP_NAME,
        user_name=user.email,
        user_id=hashlib.sha256(f"hcekit-user:{user.id}".encode()).digest(),
        user_display_name=user.email,
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment.PLATFORM,
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
    )
    store.set(f"passkey:reg:{user.id}", options.challenge, CHALLENGE_TTL_S)
    return options_to_json(options)


def register(
    session: Session, store: Store, rp: RelyingParty, user: User, name: str, credential: Mapping[str, Any]
) -> Device:
    """Verify the new credential and register this browser as a device of ``user`` (flushed)."""
    challenge = _take(store, f"passkey:reg:{user.id}")
    if challenge is None:
        raise PasskeyRefused("the passkey request has expired; start again")
    verified = _checked(verify_registration_response, rp, credential, challenge)
    if session.scalar(select(Passkey.id).where(Passkey.credential_id == verified.credential_id)):
        raise ValidationFailed("this passkey is already registered", field="credential")
    device = Device(
        user_id=user.id,
        name=name.strip()[:100] or "This browser",
        public_key=b"",
        key_id="passkey:" + hashlib.sha256(verified.credential_id).hexdigest()[:32],
        status="ACTIVE",
        kind=BROWSER,
    )
    session.add(device)
    session.flush()
    session.add(
        Passkey(
            user_id=user.id,
            device_id=device.id,
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
        )
    )
    session.flush()
    return device


def _passkeys(session: Session, user_id: int, device_id: int | None = None) -> list[Passkey]:
    query = select(Passkey).join(Device, Device.id == Passkey.device_id).where(
        Passkey.user_id == user_id, Device.status == "ACTIVE"
    )
    if device_id is not None:
        query = query.where(Passkey.device_id == device_id)
    return list(session.scalars(query))


def authentication_options(
    session: Session, rp: RelyingParty, user_id: int, challenge: bytes, *, device_id: int | None = None
) -> str:
    """The ``PublicKeyCredentialRequestOptions`` (JSON) over ``challenge``, UV required.

    The caller chooses the challenge (a payment binds its intent into it) and keeps it.
    """
    keys = _passkeys(session, user_id, device_id)
    if not keys:
        raise NotFound("no passkey is registered for this device")
    options = generate_authentication_options(
        rp_id=rp.rp_id,
        challenge=challenge,
        allow_credentials=[PublicKeyCredentialDescriptor(id=k.credential_id) for k in keys],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options)


def verify_assertion(
    session: Session,
    rp: RelyingParty,
    user_id: int,
    credential: Mapping[str, Any],
    challenge: bytes,
    *,
    device_id: int | None = None,
) -> Passkey:
    """Check an assertion over ``challenge`` by one of the user's passkeys; update its counter."""
    raw_id = credential.get("rawId") or credential.get("id")
    if not isinstance(raw_id, str):
        raise PasskeyRefused("the answer names no passkey")
    try:
        credential_id = base64.urlsafe_b64decode(raw_id + "=" * (-len(raw_id) % 4))
    except ValueError as exc:
        raise PasskeyRefused("the answer names no passkey") from exc
    mine = _passkeys(session, user_id, device_id)
    passkey = next((k for k in mine if k.credential_id == credential_id), None)
    if passkey is None:
        raise PasskeyRefused("this passkey does not belong to the device")
    verified = _checked(
        verify_authentication_response, rp, credential, challenge,
        credential_public_key=passkey.public_key,
        credential_current_sign_count=int(passkey.sign_count),
    )
    passkey.sign_count = verified.new_sign_count
    passkey.used_at = utcnow()
    return passkey

