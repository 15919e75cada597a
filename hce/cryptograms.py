"""What the card computes for a tap: the decision, the CVR, the cryptogram and its signatures.

:class:`Minter` reserves the counters and calls the pure functions below;
:class:`~hce.applet.CardApplet` calls the minter. Keeping the arithmetic apart from the command
dispatch means each can be read on its own: the applet says *when* a cryptogram is made, this
module says *what* it is.

What a cryptogram is made of
----------------------------
GENERATE AC's P1 (EMV 4.4 Book 3 §6.5.5.2, Table 12) asks for an AAC, a TC or an ARQC. This
card is online-only: asked for a TC or an ARQC it answers an ARQC (a card never returns a TC
when going online is possible); asked for an AAC it answers an AAC. It also declines with an
AAC when it cannot go online: no limited-use key with budget and time left (it then says it
needs replenishing, see below), or -- Mastercard -- an amount above the CVM limit without a
consumer device CVM (:func:`decide`).

The cryptogram is :meth:`cryptogram.cvn.CVN.generate` with the limited-use key in place of the
ICC master key; the IAD carries the key's index (:meth:`~cryptogram.cvn.CVN.build_iad`).
Before any cryptogram, the key's use and the ATC are reserved in the counter store, durably:
an ATC is never used twice, even across a crash.

Consumer device CVM and "See Phone"
-----------------------------------
The wallet records whether the user was verified on the phone (``profile.device_cvm``).

* Visa: with it, CTQ byte 2 bit 8 "Consumer Device CVM Performed" is set (Book C-3, Annex A,
  Card Transaction Qualifiers). Above the CVM limit without it, GPO answers SW 6986, which a
  Kernel 3 reader turns into the "See Phone" message and a Try Again outcome (Book C-3 §5,
  GPO response processing) -- what phone wallets do when the amount needs an unlock.
* Mastercard: with it, the CVR says so (byte 1 bits 3 and 1, "offline PIN verification
  performed / successful", the bits mobile M/Chip profiles use for a successful on-device
  CVM) and DF4B byte 2 bit 5 "OD-CVM verification successful". Above the limit without it,
  GENERATE AC answers an AAC with DF4B = ``00 01 00``, which a Kernel 2 reader's check
  ``DF4B AND 00030F ≠ 0`` turns into "See Phone" and End Application, Start B (Book C-2,
  S910).

Needing replenishment
---------------------
When no limited-use key has budget or time left the card declines (AAC) and says so in the CVR
(Visa byte 3 bit 6 "exceeded velocity checking counters"; Mastercard byte 4 bit 7), see
:func:`cvr`; the wallet reads :attr:`~hce.applet.CardApplet.needs_replenishment`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from apdu.sw import SW
from apdu.tlv import TLV, tlv
from cryptogram import cvc3, oda
from cryptogram.cvn import CVN, ELEMENT_LENGTHS
from cryptogram.cvn import profile as cvn_profile
from cryptogram.rsa import RsaPrivateKey
from hce.errors import CounterExhausted, CounterStoreError
from hce.files import magstripe_tracks
from hce.keys import CounterStore, usable_luk
from hce.profile import CardProfile, LimitedUseKeySpec

__all__ = [
    "CryptogramRecord",
    "Minted",
    "Minter",
    "OnlineCryptogram",
    "application_cryptogram",
    "card_unpredictable",
    "cda_signature",
    "cvr",
    "decide",
    "fdda_objects",
]

#: CVR bits 6-5 of the byte that reports the first GENERATE AC (EMV 4.4 Book 3 Annex; VIS; M/Chip).
_CVR_AC = {"AAC": 0x00, "TC": 0x10, "ARQC": 0x20}
_CVR_SECOND_AC_NOT_REQUESTED = 0x80


@dataclass(frozen=True, slots=True)
class Minted:
    """What one request for a cryptogram produced: the cryptogram, or the status word refusing it.

    ``sw`` is :attr:`SW.NO_ERROR` when ``kind``, ``atc``, ``iad`` and ``ac`` hold the
    cryptogram (for mag-stripe mode, ``kind`` is ``"CVC3"`` and ``ac`` is CVC3(Track 2) then
    CVC3(Track 1), two bytes each); otherwise it is the status word the command answers (6985
    ATC exhausted, 6581 the counters could not be made durable) and the other fields are empty.
    """

    sw: SW
    kind: str = ""
    atc: int = 0
    iad: bytes = b""
    ac: bytes = b""

    @property
    def refused(self) -> bool:
        """Whether no cryptogram was made."""
        return self.sw is not SW.NO_ERROR


@dataclass(frozen=True, slots=True)
class CryptogramRecord:
    """What the card did at its last cryptogram, for the wallet (never the key or the PAN).

    ``kind`` is ``"ARQC"``, ``"AAC"`` or ``"CVC3"``; ``reason`` is ``"online"``, ``"requested"``
    (the terminal asked for an AAC), ``"see_phone"`` or ``"replenish"``.
    """

    kind: str
    atc: int
    luk_index: int | None
    reason: str
    amount: int


@dataclass(slots=True)
class OnlineCryptogram:
    """The card's last online cryptogram, which the issuer's answer is bound to (:mod:`hce.issuer`).

    ``atc`` (2 bytes), ``arqc``, ``key`` the limited-use key that made it and its ``luk_index``,
    ``un`` the terminal's unpredictable number; what the issuer's answer has done since:
    ``authenticated`` (the ARPC's check, ``None`` before EXTERNAL AUTHENTICATE) and the MACs of
    the scripts applied.
    """

    atc: bytes
    arqc: bytes
    key: bytes
    luk_index: int
    un: bytes
    authenticated: bool | None = None
    scripts_applied: set[bytes] = field(default_factory=set)


class Minter:
    """The card's cryptograms over its counter store: decide, reserve durably, then compute.

    ``last`` is what the card did at its last cryptogram; ``last_online`` the ATC, ARQC and
    limited-use key of the last online one (issuer scripts are MACed under that key).
    """

    def __init__(
        self, profile: CardProfile, counters: CounterStore, clock: Callable[[], float] | None,
    ) -> None:
        self.profile = profile
        self.counters = counters
        self.cvn = cvn_profile(profile.cvn)
        self.last: CryptogramRecord | None = None
        self.last_online: OnlineCryptogram | None = None
        self._clock = clock
        secret = profile.oda.icc_key.d if profile.oda is not None else 0
        self.seed = hashlib.sha256(secret.to_bytes((secret.bit_length() + 7) // 8, "big")).digest()

    def now(self, now: float | None) -> float | None:
        """``now`` when given, else the clock's time, else ``None`` (keys then expire by use only)."""
        return self._clock() if now is None and self._clock is not None else now

    def reserve(self, luk_index: int | None, *, online: bool) -> int | SW:
        """Reserve the key's use (when one is spent) and the next ATC in one durable write; the ATC
        or a refusal.

        An exhausted ATC is 6985; a store that cannot make the counters durable is 6581, and no
        cryptogram leaves the card.
        """
        try:
            return self.counters.reserve_next_atc(online=online, luk_index=luk_index)
        except CounterExhausted:
            return SW.CONDITIONS_OF_USE_NOT_SATISFIED
        except CounterStoreError:
            return SW.MEMORY_FAILURE

    def application(
        self, wanted: str, terminal: Mapping[int, bytes], amount: int, now: float | None,
        *, see_phone: bool = False,
    ) -> Minted:
        """An application cryptogram of the kind :func:`decide` picks, or the refusal."""
        profile = self.profile
        luk = usable_luk(profile.luks, self.counters, self.now(now))
        kind, reason = decide(wanted, see_phone=see_phone, have_key=luk is not None)
        key_spec: LimitedUseKeySpec | None = luk if luk is not None else (
            profile.luks[-1] if profile.luks else None)
        online = kind == "ARQC"
        reserved = self.reserve(luk.index if online and luk is not None else None, online=online)
        if isinstance(reserved, SW):
            return Minted(reserved)
        atc = reserved
        luk_index = key_spec.index if key_spec is not None else None
        iad = self.cvn.build_iad(cvr(self.cvn, kind, device_cvm=profile.device_cvm,
                                     replenish=reason == "replenish"),
                                 dki=profile.dki, luk_index=luk_index)
        ac = bytes(8) if key_spec is None else application_cryptogram(
            self.cvn, key_spec.key, terminal, aip=profile.aip, atc=atc, iad=iad)
        if online and key_spec is not None:
            self.last_online = OnlineCryptogram(atc.to_bytes(2, "big"), ac, key_spec.key, key_spec.index,
                                                terminal.get(0x9F37, bytes(4)))
        self.last = CryptogramRecord(kind, atc, luk_index if online else None, reason, amount)
        return Minted(SW.NO_ERROR, kind, atc, iad, ac)

    def checksums(self, un: bytes, now: float | None) -> Minted:
        """CVC3 of both tracks over the numeric UN and the ATC (Book C-2 §5.3).

        KD(CVC3) is the current limited-use key, as for the application cryptogram; the ATC and
        the key use are reserved first, as for every cryptogram. No usable key is 6985.
        """
        luk = usable_luk(self.profile.luks, self.counters, self.now(now))
        if luk is None:
            return Minted(SW.CONDITIONS_OF_USE_NOT_SATISFIED)
        reserved = self.reserve(luk.index, online=True)
        if isinstance(reserved, SW):
            return Minted(reserved)
        atc = reserved.to_bytes(2, "big")
        track1, track2 = magstripe_tracks(self.profile)
        value2 = cvc3.cvc3(luk.key, cvc3.ivcvc3(luk.key, track2), un, atc)
        value1 = cvc3.cvc3(luk.key, cvc3.ivcvc3(luk.key, track1), un, atc)
        self.last = CryptogramRecord("CVC3", reserved, luk.index, "online", 0)
        values = value2.to_bytes(2, "big") + value1.to_bytes(2, "big")
        return Minted(SW.NO_ERROR, "CVC3", reserved, b"", values)


def decide(wanted: str, *, see_phone: bool, have_key: bool) -> tuple[str, str]:
    """The cryptogram the card makes and why: ``(kind, reason)`` (module docstring).

    >>> decide("ARQC", see_phone=False, have_key=True)
    ('ARQC', 'online')
    >>> decide("ARQC", see_phone=False, have_key=False)
    ('AAC', 'replenish')
    """
    if wanted == "AAC":
        return "AAC", "requested"
    if see_phone:
        return "AAC", "see_phone"
    if not have_key:
        return "AAC", "replenish"
    return "ARQC", "online"


def cvr(cvn: CVN, kind: str, *, device_cvm: bool, replenish: bool) -> bytes:
    """Card Verification Results for the IAD (VIS 1.6 Appendix; M/Chip 4 CVR).

    Mastercard with a consumer device CVM sets byte 1 bits 3 and 1 ("offline PIN verification
    performed / successful", what mobile M/Chip profiles report for an on-device CVM).
    """
    first = _CVR_SECOND_AC_NOT_REQUESTED | _CVR_AC[kind]
    if cvn.network == "mastercard":
        out = bytearray(6)
        out[0] = first | (0x05 if device_cvm else 0)
        if replenish:
            out[3] |= 0x40
    else:
        out = bytearray((0x03, first, 0x20 if replenish else 0x00, 0x00))
    length = cvn.cvr_length
    if len(out) > length:
        out = out[len(out) - length:]
    return bytes(out).ljust(length, b"\x00")


def application_cryptogram(
    cvn: CVN, key: bytes, terminal: Mapping[int, bytes], *, aip: bytes, atc: int, iad: bytes,
) -> bytes:
    """The AC over the CVN's data elements (EMV 4.4 Book 2 §8.1.1): the terminal's values where
    they have the element's length, zeros elsewhere, and the card's AIP, ATC and IAD."""
    values = {tag: bytes(length) for tag, length in ELEMENT_LENGTHS.items()}
    for tag, value in terminal.items():
        if tag in values and len(value) == len(values[tag]):
            values[tag] = value
    values[0x82] = aip
    values[0x9F36] = atc.to_bytes(2, "big")
    values[0x9F10] = iad
    return cvn.generate(key, values).cryptogram


def card_unpredictable(seed: bytes, atc: int, terminal_un: bytes) -> bytes:
    """A number the terminal cannot predict: SHA-256 under a secret of the card's private key.

    It is derived from the ATC and the terminal's number, so the card needs no source of
    randomness of its own.
    """
    return hashlib.sha256(seed + atc.to_bytes(2, "big") + terminal_un).digest()


def fdda_objects(
    icc_key: RsaPrivateKey, seed: bytes, terminal: Mapping[int, bytes], atc: int, ctq: bytes,
) -> list[TLV]:
    """fDDA version 01 (EMV Contactless Book C-3 Annex C): sign UN, amount, currency and 9F69.

    The Card Authentication Related Data (9F69) is version 01, the card's unpredictable number
    and the CTQ; the ICC dynamic number is the ATC.
    """
    un = terminal.get(0x9F37, bytes(4))
    cad = b"\x01" + card_unpredictable(seed, atc, un)[:4] + ctq
    signed = un + terminal.get(0x9F02, bytes(6)) + terminal.get(0x5F2A, bytes(2)) + cad
    sdad = oda.sign_dynamic_data(icc_key, b"\x02" + atc.to_bytes(2, "big"), signed, fmt=oda.FORMAT_FDDA)
    return [tlv(0x9F69, cad), tlv(0x9F4B, sdad)]


def cda_signature(
    icc_key: RsaPrivateKey, seed: bytes, *, pdol_data: bytes, cdol_data: bytes, nodes: Sequence[TLV],
    cid: bytes, ac: bytes, un: bytes, atc: int,
) -> TLV:
    """The CDA signature (EMV 4.4 Book 2 §6.6.1): the cryptogram travels inside 9F4B.

    The transaction data hash covers the PDOL data of GPO, the CDOL1 data, and the response's
    other data objects in the order they are sent; the signature covers the terminal's UN.
    """
    objects = b"".join(node.to_bytes() for node in nodes)
    digest = oda.cda_transaction_hash(pdol_data, cdol_data, objects)
    idn = card_unpredictable(seed, atc, un)[:8]
    dynamic = oda.cda_dynamic_data(idn, cid, ac, digest)
    return tlv(0x9F4B, oda.sign_dynamic_data(icc_key, dynamic, un))
