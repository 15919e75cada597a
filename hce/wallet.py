"""The device wallet: one device's key pair, its cards and their counters, encrypted at rest.

A wallet is a directory (the user's data directory from platformdirs, ``<user data>/hcekit/wallet``,
or any directory given with ``--wallet DIR`` / ``HCEKIT_WALLET``)::

    wallet.key            the wallet key: 32 random bytes, mode 0600 (absent when HCEKIT_WALLET_KEY is set)
    wallet.enc            the wallet document, AES-256-GCM: 12-byte nonce ‖ ciphertext ‖ tag
    counters/<card>.json  each card's ATC and limited-use key counts (hce.keys.FileCounterStore)

The wallet document (JSON, before encryption) holds the device's P-256 private key (PKCS #8),
its registration at a token service (host, device id), the session token of the logged-in
user, and each card: its id at the service, network, status, last digits, whether it is the
default, and the card profile opened from the service's sealed envelope
(:func:`cryptogram.sealing.open_sealed`) with its limited-use keys.

The files themselves -- where the wallet key lives, how the document is encrypted and
written -- are :mod:`hce.walletfile`'s.

Exceptions::

    HCEError (hce.errors)
     └── WalletError          the wallet cannot be read, written or does not hold what was asked
          └── WalletLocked    the wallet key does not open wallet.enc (wrong key, or tampered)
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cryptogram.sealing import SealingError, open_sealed, point_bytes
from hce.applet import CardApplet
from hce.errors import ProfileError, WalletError, WalletLocked
from hce.keys import FileCounterStore
from hce.profile import CardProfile
from hce.walletfile import DOC_FILE, load_key, read_document, write_document

__all__ = [
    "WALLET_ENV",
    "Wallet",
    "WalletCard",
    "WalletError",
    "WalletLocked",
    "WalletSession",
    "default_directory",
]

WALLET_ENV = "HCEKIT_WALLET"
"""Environment variable naming the wallet directory."""



def default_directory() -> Path:
    """``HCEKIT_WALLET`` if set, else ``<platformdirs user data dir>/hcekit/wallet``."""
    env = os.environ.get(WALLET_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("hcekit", appauthor=False)) / "wallet"


@dataclass(frozen=True, slots=True)
class WalletSession:
    """The logged-in user at a token service: host URL, bearer token, e-mail and user id."""

    host: str
    token: str
    email: str
    user_id: int

    def __repr__(self) -> str:
        return (
            f"WalletSession(host={self.host!r}, email={self.email!r}, user_id={self.user_id}, token=<hidden>)"
        )


@dataclass(frozen=True, slots=True)
class WalletCard:
    """One card in the wallet: the service's view of it and the opened card profile.

    ``repr`` and :meth:`to_json` never show the token PAN or keys.
    """

    id: int
    network: str
    status: str
    last4: str
    token_last4: str
    default: bool
    profile: CardProfile

    @property
    def label(self) -> str:
        """The application label the card presents (``VISA CREDIT`` …)."""
        return self.profile.label

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary without secrets."""
        return {
            "id": self.id,
            "network": self.network,
            "status": self.status,
            "last4": self.last4,
            "tokenLast4": self.token_last4,
            "default": self.default,
            "label": self.profile.label,
            "kernel": self.profile.kernel,
            "keys": len(self.profile.luks),
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _empty_document(device_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    pem = device_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "version": 1,
        "device": {"private_key": pem, "id": None, "host": None, "name": None},
        "session": None,
        "cards": [],
    }


class Wallet:
    """A device wallet stored in one directory (module docstring); open it with :meth:`open`.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     w = Wallet.open(d)
    ...     again = Wallet.open(d)
    ...     again.public_key_b64 == w.public_key_b64, again.cards
    (True, ())
    """

    def __init__(self, directory: Path, key: bytes, document: dict[str, Any]) -> None:
        self.directory = directory
        self._aead = AESGCM(key)
        self._doc = document
        self._device_key: ec.EllipticCurvePrivateKey | None = None

    # ------------------------------------------------------------------ opening and saving

    @classmethod
    def open(cls, directory: str | Path | None = None, *, create: bool = True) -> Wallet:
        """Open the wallet in ``directory`` (default :func:`default_directory`), creating it if asked.

        A new wallet gets a fresh P-256 device key pair and, unless ``HCEKIT_WALLET_KEY`` is
        set, a fresh wallet key in ``wallet.key``.
        """
        path = Path(directory) if directory is not None else default_directory()
        exists = (path / DOC_FILE).exists()
        if not exists and not create:
            raise WalletError(f"no wallet in {path} (register or provision first)")
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = load_key(path, create=not exists)
        except OSError as exc:
            raise WalletError(f"cannot use the wallet directory {path}: {exc.strerror or exc}") from None
        if exists:
            return cls(path, key, read_document(path, key))
        wallet = cls(path, key, _empty_document(ec.generate_private_key(ec.SECP256R1())))
        wallet.save()
        return wallet

    def save(self) -> None:
        """Encrypt the document under a fresh nonce and replace ``wallet.enc`` atomically."""
        write_document(self.directory, self._aead, self._doc)

    # ------------------------------------------------------------------ the device

    @property
    def device_key(self) -> ec.EllipticCurvePrivateKey:
        """The device's P-256 private key (never leaves the wallet)."""
        if self._device_key is None:
            loaded = serialization.load_pem_private_key(self._doc["device"]["private_key"].encode(), None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise WalletError("the wallet's device key is not a P-256 key")
            self._device_key = loaded
        return self._device_key

    @property
    def public_key_b64(self) -> str:
        """The device's public key as base64 of the uncompressed point (what POST /api/devices takes)."""
        return _b64(point_bytes(self.device_key.public_key()))

    @property
    def device_id(self) -> int | None:
        """The device's id at its token service, once registered."""
        value = self._doc["device"].get("id")
        return None if value is None else int(value)

    @property
    def device_host(self) -> str | None:
        """The token service this device is registered at."""
        host = self._doc["device"].get("host")
        return None if host is None else str(host)

    def set_device(self, device_id: int, host: str, name: str = "device") -> None:
        """Record the device's registration at ``host`` and save."""
        self._doc["device"].update({"id": int(device_id), "host": host, "name": name})
        self.save()

    # ------------------------------------------------------------------ the session

    @property
    def session(self) -> WalletSession | None:
        """The logged-in user's session, if any."""
        s = self._doc.get("session")
        if not s:
            return None
        return WalletSession(s["host"], s["token"], s["email"], int(s["user_id"]))

    def set_session(self, session: WalletSession) -> None:
        """Keep a new session token and save."""
        self._doc["session"] = {
            "host": session.host,
            "token": session.token,
            "email": session.email,
            "user_id": session.user_id,
        }
        self.save()

    def clear_session(self) -> None:
        """Forget the session token and save."""
        self._doc["session"] = None
        self.save()

    # ------------------------------------------------------------------ cards

    def _entry(self, card_id: int) -> dict[str, Any]:
        for entry in self._doc["cards"]:
            if int(entry["id"]) == card_id:
                return dict(entry)
        raise WalletError(f"card {card_id} is not in this wallet")

    def _put(self, entry: dict[str, Any]) -> None:
        cards = [e for e in self._doc["cards"] if int(e["id"]) != int(entry["id"])]
        if entry.get("default"):
            for e in cards:
                e["default"] = False
        cards.append(entry)
        cards.sort(key=lambda e: int(e["id"]))
        self._doc["cards"] = cards
        self.save()

    @staticmethod
    def _card(entry: Mapping[str, Any]) -> WalletCard:
        return WalletCard(
            id=int(entry["id"]),
            network=str(entry.get("network", "")),
            status=str(entry.get("status", "")),
            last4=str(entry.get("last4", "")),
            token_last4=str(entry.get("tokenLast4", "")),
            default=bool(entry.get("default", False)),
            profile=CardProfile.from_dict(entry["profile"]),
        )

    @property
    def cards(self) -> tuple[WalletCard, ...]:
        """Every card, by id."""
        return tuple(self._card(e) for e in self._doc["cards"])

    def card(self, card_id: int | None = None) -> WalletCard:
        """The card ``card_id``, or the default card (the only card, if there is just one)."""
        if card_id is not None:
            return self._card(self._entry(card_id))
        found = self.default_card
        if found is None:
            raise WalletError("the wallet has no card (hcekit provision adds one)")
        return found

    @property
    def default_card(self) -> WalletCard | None:
        """The default card; else the only card; else ``None``."""
        cards = self.cards
        for card in cards:
            if card.default:
                return card
        return cards[0] if len(cards) == 1 else None

    def add_card(
        self,
        card_id: int,
        envelope: Mapping[str, Any],
        *,
        network: str = "",
        status: str = "ACTIVE",
        last4: str = "",
        token_last4: str = "",
        default: bool = False,
    ) -> WalletCard:
        """Open a sealed card profile with the device key, validate it and keep the card.

        The envelope comes from ``POST /api/cards`` (or ``/verify``); a profile that does not
        open or validate is refused whole.
        """
        try:
            profile = CardProfile.from_dict(open_sealed(self.device_key, dict(envelope)))
        except SealingError as exc:
            raise WalletError(f"the card profile does not open with this device's key: {exc}") from None
        except ProfileError as exc:
            raise WalletError(str(exc)) from None
        first = not self._doc["cards"]
        entry = {
            "id": int(card_id),
            "network": network,
            "status": status,
            "last4": last4,
            "tokenLast4": token_last4 or profile.pan[-4:],
            "default": default or first,
            "profile": profile.to_dict(),
        }
        self._put(entry)
        return self._card(entry)

    def add_keys(self, card_id: int, envelope: Mapping[str, Any], *, now: float | None = None) -> int:
        """Open a sealed batch of limited-use keys and add it to card ``card_id``; the count added.

        Keys already used up or expired are dropped; the rest keep their order (oldest first),
        which is the order the card uses them in (:func:`hce.keys.usable_luk`).
        """
        entry = self._entry(card_id)
        try:
            batch = open_sealed(self.device_key, dict(envelope))
        except SealingError as exc:
            raise WalletError(f"the key batch does not open with this device's key: {exc}") from None
        profile = dict(entry["profile"])
        if batch.get("token_ref") not in (None, profile["token_ref"]):
            raise WalletError("the key batch is for another token")
        counters = self.counters(card_id)
        moment = time.time() if now is None else now
        kept = [
            k
            for k in profile["luks"]
            if counters.luk_uses(int(k["index"])) < int(k["max_uses"]) and moment <= int(k["not_after"])
        ]
        known = {int(k["index"]) for k in kept}
        new = [k for k in batch.get("luks", []) if int(k["index"]) not in known]
        profile["luks"] = sorted(kept + new, key=lambda k: int(k["index"]))
        profile["atc"] = max(int(profile.get("atc", 0)), counters.last_atc)
        try:
            CardProfile.from_dict(profile)
        except ProfileError as exc:
            raise WalletError(str(exc)) from None
        entry["profile"] = profile
        self._put(entry)
        return len(new)

    def set_status(self, card_id: int, status: str) -> WalletCard:
        """Record the card's status at the service (ACTIVE, SUSPENDED …)."""
        entry = self._entry(card_id)
        entry["status"] = status
        self._put(entry)
        return self._card(entry)

    def set_default(self, card_id: int) -> WalletCard:
        """Make ``card_id`` the default card (the one ``tap``, ``emulate`` and ``pay`` use)."""
        entry = self._entry(card_id)
        entry["default"] = True
        self._put(entry)
        return self._card(entry)

    def follow_default(self, card_id: int | None) -> None:
        """Make ``card_id`` the only default card, or clear every default (``None``).

        The token service is the source of truth for a device's default card; the wallet
        follows it when it syncs.
        """
        if card_id is not None:
            self._entry(card_id)
        for entry in self._doc["cards"]:
            entry["default"] = card_id is not None and int(entry["id"]) == card_id
        self.save()

    def has_card(self, card_id: int) -> bool:
        """Whether the wallet holds card ``card_id``."""
        return any(int(e["id"]) == card_id for e in self._doc["cards"])

    def remove_card(self, card_id: int) -> None:
        """Forget a card, its keys and its counters."""
        self._entry(card_id)
        self._doc["cards"] = [e for e in self._doc["cards"] if int(e["id"]) != card_id]
        self.save()
        try:
            self._counter_path(card_id).unlink(missing_ok=True)
        except OSError as exc:
            raise WalletError(
                f"cannot remove the counters of card {card_id}: {exc.strerror or exc}"
            ) from None

    def forget_cards(self) -> None:
        """Forget every card (after the device is reported lost)."""
        for card in self.cards:
            self.remove_card(card.id)

    # ------------------------------------------------------------------ the card applet

    def _counter_path(self, card_id: int) -> Path:
        return self.directory / "counters" / f"{card_id}.json"

    def counters(self, card_id: int) -> FileCounterStore:
        """The durable ATC and key-use counters of card ``card_id``."""
        entry = self._entry(card_id)
        return FileCounterStore(self._counter_path(card_id), initial_atc=int(entry["profile"].get("atc", 0)))

    def applet(
        self,
        card_id: int | None = None,
        *,
        clock: Callable[[], float] | None = time.time,
        device_cvm: bool | None = None,
    ) -> CardApplet:
        """A :class:`~hce.applet.CardApplet` of the card (default: the default card), durable counters."""
        card = self.card(card_id)
        profile = card.profile if device_cvm is None else card.profile.with_device_cvm(device_cvm)
        return CardApplet(profile, counters=self.counters(card.id), clock=clock)

    def needs_replenishment(self, card_id: int, *, now: float | None = None) -> bool:
        """Whether card ``card_id`` has no limited-use key with budget and time left."""
        from hce.keys import usable_luk

        card = self.card(card_id)
        moment = time.time() if now is None else now
        return usable_luk(card.profile.luks, self.counters(card_id), moment) is None
