"""The device wallet (hce.wallet) and the in-app cryptogram (hce.inapp)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apdu.tlv import decode, to_dict
from cryptogram.cvn import profile as cvn_profile
from cryptogram.luk import derive_luk_batch
from cryptogram.sealing import seal
from hce.inapp import InAppError, currency_numeric, in_app_cryptogram
from hce.testcard import TEST_IMK, builtin_profile_dict
from hce.wallet import Wallet, WalletError, WalletLocked, WalletSession
from hce.walletfile import KEY_ENV

NOW = 1_750_000_000


def sealed_card(wallet: Wallet, kernel: str = "visa", **changes: object) -> dict[str, str]:
    """The built-in test card of ``kernel`` sealed to the wallet's device key."""
    profile = {**builtin_profile_dict(kernel, now=NOW), **changes}
    return seal(wallet.device_key.public_key(), profile)


@pytest.fixture
def wallet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Wallet:
    """A new wallet in a temporary directory (no key in the environment)."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    return Wallet.open(tmp_path / "w")


def test_new_wallet_files_and_modes(wallet: Wallet) -> None:
    """A new wallet has a 32-byte key readable by its owner only and an encrypted document."""
    key = wallet.directory / "wallet.key"
    assert len(key.read_bytes()) == 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((wallet.directory / "wallet.enc").stat().st_mode) == 0o600


def test_nothing_secret_in_plaintext(wallet: Wallet) -> None:
    """The token PAN, the keys and the session token never appear in the wallet's files."""
    wallet.add_card(7, sealed_card(wallet), network="visa")
    wallet.set_session(WalletSession("http://h", "secret-session-token", "a@example.com", 1))
    card = wallet.card(7)
    applet = wallet.applet(7, clock=lambda: NOW)
    in_app_cryptogram(applet, amount=100, currency="EUR", date="250101")
    secrets = [
        card.profile.pan.encode(),
        card.profile.luks[0].key.hex().upper().encode(),
        b"secret-session-token",
    ]
    for path in wallet.directory.rglob("*"):
        if path.is_file() and path.name != "wallet.key":
            data = path.read_bytes()
            assert not any(s in data for s in secrets), path.name


def test_reopen_keeps_everything(wallet: Wallet) -> None:
    """Reopening gives the same device key, session and cards."""
    wallet.set_device(3, "http://h", "phone")
    wallet.add_card(7, sealed_card(wallet), network="visa", last4="1111")
    wallet.set_session(WalletSession("http://h", "t", "a@example.com", 1))
    again = Wallet.open(wallet.directory, create=False)
    assert again.public_key_b64 == wallet.public_key_b64
    assert (again.device_id, again.device_host) == (3, "http://h")
    assert again.session == wallet.session
    assert [c.id for c in again.cards] == [7]
    assert again.card().last4 == "1111"


def test_repr_hides_secrets(wallet: Wallet) -> None:
    """Neither a card nor a session shows the PAN or the token in its repr."""
    card = wallet.add_card(7, sealed_card(wallet))
    session = WalletSession("http://h", "tok-123456", "a@example.com", 1)
    assert card.profile.pan not in repr(card)
    assert "tok-123456" not in repr(session)
    assert card.profile.pan not in str(card.to_json())


def test_wrong_key_is_locked(wallet: Wallet) -> None:
    """Another wallet key does not open the document."""
    (wallet.directory / "wallet.key").write_bytes(os.urandom(32))
    with pytest.raises(WalletLocked):
        Wallet.open(wallet.directory)


def test_tampered_document_is_locked(wallet: Wallet) -> None:
    """Flipping one bit of wallet.enc is detected by GCM."""
    path = wallet.directory / "wallet.enc"
    data = bytearray(path.read_bytes())
    data[20] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(WalletLocked):
        Wallet.open(wallet.directory)


def test_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With HCEKIT_WALLET_KEY no key file is written, and the key is needed to reopen."""
    monkeypatch.setenv(KEY_ENV, base64.b64encode(bytes(range(32))).decode())
    w = Wallet.open(tmp_path / "w")
    assert not (w.directory / "wallet.key").exists()
    assert Wallet.open(w.directory).public_key_b64 == w.public_key_b64
    monkeypatch.setenv(KEY_ENV, base64.b64encode(bytes(32)).decode())
    with pytest.raises(WalletLocked):
        Wallet.open(w.directory)
    for wrong in ["not base64!", "ÿ"] + [base64.b64encode(bytes(n)).decode() for n in (31, 33)]:
        monkeypatch.setenv(KEY_ENV, wrong)
        with pytest.raises(WalletError, match="32 bytes"):
            Wallet.open(w.directory)


def test_missing_wallet_without_create(tmp_path: Path) -> None:
    """Opening a wallet that does not exist, without create, is a WalletError."""
    with pytest.raises(WalletError, match="no wallet"):
        Wallet.open(tmp_path / "none", create=False)


def test_profile_sealed_to_another_device_is_refused(wallet: Wallet) -> None:
    """A profile sealed to another key does not open."""
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(WalletError, match="does not open"):
        wallet.add_card(1, seal(other.public_key(), builtin_profile_dict("visa", now=NOW)))


def test_invalid_profile_is_refused_without_echo(wallet: Wallet) -> None:
    """A profile that does not validate is refused; the message names fields, not values."""
    with pytest.raises(WalletError) as info:
        wallet.add_card(1, sealed_card(wallet, pan="4761739001010011"))
    assert "4761739001010011" not in str(info.value)
    assert wallet.cards == ()


def test_default_card_rules(wallet: Wallet) -> None:
    """The first card is the default; set_default moves it; the only card is the default."""
    wallet.add_card(1, sealed_card(wallet))
    wallet.add_card(2, sealed_card(wallet, "mastercard"))
    assert wallet.card().id == 1
    wallet.set_default(2)
    assert [c.default for c in wallet.cards] == [False, True]
    assert wallet.card().id == 2
    wallet.remove_card(2)
    assert wallet.card().id == 1
    with pytest.raises(WalletError, match="not in this wallet"):
        wallet.card(2)


def test_counters_survive_reopen(wallet: Wallet) -> None:
    """The ATC continues across wallet instances (durable counters)."""
    wallet.add_card(1, sealed_card(wallet))
    first = in_app_cryptogram(wallet.applet(1, clock=lambda: NOW), amount=100, currency="EUR", date="250101")
    again = Wallet.open(wallet.directory)
    second = in_app_cryptogram(again.applet(1, clock=lambda: NOW), amount=100, currency="EUR", date="250101")
    assert (first.atc, second.atc) == (1, 2)
    assert again.counters(1).luk_uses(1) == 2


def test_remove_card_deletes_counters(wallet: Wallet) -> None:
    """Removing a card forgets its counters too."""
    wallet.add_card(1, sealed_card(wallet))
    in_app_cryptogram(wallet.applet(1, clock=lambda: NOW), amount=100, currency="EUR", date="250101")
    assert (wallet.directory / "counters" / "1.json").exists()
    wallet.remove_card(1)
    assert not (wallet.directory / "counters" / "1.json").exists()


def _batch(wallet: Wallet, first: int, count: int, *, not_after: int = NOW + 3600) -> dict[str, str]:
    data = builtin_profile_dict("visa", now=NOW)
    token_mk = cvn_profile("visa18").derive_icc_mk(TEST_IMK, data["pan"], data["psn"])
    luks = [k.to_dict() for k in derive_luk_batch(token_mk, first, count, max_uses=1, not_after=not_after)]
    return seal(
        wallet.device_key.public_key(),
        {"version": 1, "type": "luk_batch", "token_ref": data["token_ref"], "luks": luks},
    )


def test_replenishment_adds_keys_and_drops_spent_ones(wallet: Wallet) -> None:
    """Spent keys are dropped, a new batch is appended, and the card makes ARQCs again."""
    data = builtin_profile_dict("visa", now=NOW)
    data["luks"] = [dict(data["luks"][0], max_uses=1)]
    wallet.add_card(1, seal(wallet.device_key.public_key(), data))
    assert (
        in_app_cryptogram(wallet.applet(1, clock=lambda: NOW), amount=100, currency="EUR", date="250101").kind
        == "ARQC"
    )
    assert wallet.needs_replenishment(1, now=NOW)
    assert (
        in_app_cryptogram(wallet.applet(1, clock=lambda: NOW), amount=100, currency="EUR", date="250101").kind
        == "AAC"
    )
    assert wallet.add_keys(1, _batch(wallet, 6, 2), now=NOW) == 2
    assert [k.index for k in wallet.card(1).profile.luks] == [6, 7]
    assert not wallet.needs_replenishment(1, now=NOW)
    result = in_app_cryptogram(wallet.applet(1, clock=lambda: NOW), amount=100, currency="EUR", date="250101")
    assert (result.kind, result.atc) == ("ARQC", 3)


def test_batch_for_another_token_is_refused(wallet: Wallet) -> None:
    """A key batch naming another token reference is refused."""
    wallet.add_card(1, sealed_card(wallet, "mastercard"))
    with pytest.raises(WalletError, match="another token"):
        wallet.add_keys(1, _batch(wallet, 6, 1))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(blob=st.binary(max_size=200))
def test_fuzz_wallet_document(wallet: Wallet, blob: bytes) -> None:
    """Any bytes in wallet.enc give a WalletError, never another exception."""
    path = wallet.directory / "wallet.enc"
    saved = path.read_bytes()
    path.write_bytes(blob)
    try:
        with pytest.raises(WalletError):
            Wallet.open(wallet.directory)
    finally:
        path.write_bytes(saved)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(email=st.text(max_size=40), token=st.text(min_size=1, max_size=80), user_id=st.integers(0, 2**31))
def test_session_round_trip(wallet: Wallet, email: str, token: str, user_id: int) -> None:
    """Any session survives saving and reopening unchanged."""
    session = WalletSession("http://h", token, email, user_id)
    wallet.set_session(session)
    assert Wallet.open(wallet.directory).session == session


# ---------------------------------------------------------------------------- in-app


@pytest.mark.parametrize(
    ("kernel", "cvn"),
    [
        ("visa",       "visa18"),  # hce.testcard: Visa ADVT test PAN, qVSDC
        ("mastercard", "mc16"),    # hce.testcard: Mastercard M-TIP range PAN, M/Chip
    ],
)
def test_in_app_cryptogram_verifies(wallet: Wallet, kernel: str, cvn: str) -> None:
    """The in-app block's ARQC verifies with the card's first limited-use key over the block's data."""
    wallet.add_card(1, sealed_card(wallet, kernel))
    card = wallet.card(1)
    result = in_app_cryptogram(
        wallet.applet(1, clock=lambda: NOW),
        amount=1999,
        currency="EUR",
        date="250614",
        unpredictable=bytes.fromhex("CAFEBABE"),
    )
    values = to_dict(decode(result.emv))
    assert result.kind == "ARQC"
    assert values[0x9F02] == bytes.fromhex("000000001999")
    assert values[0x5F2A] == bytes.fromhex("0978")
    assert values[0x9F37] == bytes.fromhex("CAFEBABE")
    assert values[0x5A].hex().rstrip("f") == card.profile.pan
    assert cvn_profile(cvn).verify(card.profile.luks[0].key, values, values[0x9F26])


def test_in_app_above_cvm_limit_without_device_cvm_is_refused(wallet: Wallet) -> None:
    """Visa above the CVM limit without device CVM: the card says See Phone (6986)."""
    wallet.add_card(1, sealed_card(wallet))
    with pytest.raises(InAppError, match="6986"):
        in_app_cryptogram(wallet.applet(1, clock=lambda: NOW), amount=999_00, currency="EUR", date="250101")
    ok = in_app_cryptogram(
        wallet.applet(1, clock=lambda: NOW, device_cvm=True), amount=999_00, currency="EUR", date="250101"
    )
    assert ok.kind == "ARQC"


@pytest.mark.parametrize(
    ("code", "numeric"),
    [
        ("EUR", "0978"),  # ISO 4217
        ("usd", "0840"),  # ISO 4217
        ("392", "0392"),  # ISO 4217 (JPY)
    ],
)
def test_currency_numeric(code: str, numeric: str) -> None:
    """Alphabetic and numeric ISO 4217 codes become the 4 digits of 5F2A."""
    assert currency_numeric(code) == numeric


@pytest.mark.parametrize("bad", ["XXX", "999", ""])
def test_currency_unknown(bad: str) -> None:
    """An unknown currency is an InAppError."""
    with pytest.raises(InAppError):
        currency_numeric(bad)
