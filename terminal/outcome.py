"""What a tap ends in: an outcome, the data for authorization, and the host's answer.

EMV Contactless Book A §6.2 names the outcomes a kernel hands back to the reader: Approved,
Declined, Online Request, Try Again, Try Another Interface, End Application (and Select Next,
which Entry Point handles inside the kernel here by trying the next candidate). An online
request carries the card's and terminal's data as one BER-TLV block, as ISO 8583 field 55
does; the host's answer turns it into Approved or Declined (:func:`finish`).

>>> Outcome.ONLINE_REQUEST.value
'online_request'
>>> mask_pan("4895370012003478")
'489537******3478'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from apdu import tags as emv_tags
from apdu.errors import PanMismatch
from apdu.pan import card_pan, mask_pan
from apdu.tags import FIELD_55_TAGS
from apdu.tlv import TLV, encode
from terminal.config import Merchant, currency
from terminal.oda import OdaResult


class Outcome(str, Enum):
    """The outcome of a tap (EMV Contactless Book A §6.2.2, "Outcome Parameter Set")."""

    APPROVED = "approved"
    DECLINED = "declined"
    ONLINE_REQUEST = "online_request"
    TRY_AGAIN = "try_again"
    TRY_ANOTHER_INTERFACE = "try_another_interface"
    END_APPLICATION = "end_application"


#: The user-interface message for each outcome (EMV Contactless Book A §7.1, Table 7.1).
MESSAGES: dict[Outcome, str] = {
    Outcome.APPROVED: "Approved",
    Outcome.DECLINED: "Not authorised",
    Outcome.ONLINE_REQUEST: "Authorising, please wait",
    Outcome.TRY_AGAIN: "Present card again",
    Outcome.TRY_ANOTHER_INTERFACE: "Insert, swipe or try another card",
    Outcome.END_APPLICATION: "Error, try another card",
}

SEE_PHONE = "See phone for instructions"
"""The message of a Try Again outcome when the phone asks its holder to verify (Book A Table 7.1)."""

_PAN_TAGS = (0x5A,)
_TRACK_TAGS = (0x57, 0x9F6B)


def mask_value(tag: int, value: bytes) -> str:
    """A printable, masked form of a sensitive value; hex for everything else.

    PAN (5A) and Track 2 equivalent data (57, 9F6B) keep the first six and last four digits
    of the PAN; other tags the data dictionary marks sensitive become ``*``.
    """
    text = value.hex().upper()
    if tag in _PAN_TAGS:
        return mask_pan(text.rstrip("F"))
    if tag in _TRACK_TAGS:
        pan, _, rest = text.partition("D")
        return mask_pan(pan) + ("D" + "*" * len(rest) if rest else "")
    if emv_tags.is_sensitive(tag):
        return "*" * len(text)
    return text


def pan_of(data: Mapping[int, bytes]) -> str | None:
    """The card's PAN by :func:`apdu.pan.card_pan`: 5A, else the PAN of 57 when 5A is absent.

    An outcome only shows the PAN; when 5A and 57 disagree it shows 5A's, the Application PAN.
    """
    try:
        return card_pan(data)
    except PanMismatch as exc:
        return exc.pan


@dataclass(frozen=True, slots=True)
class HostAnswer:
    """The authorization host's answer (see :mod:`terminal.host`)."""

    approved: bool
    response_code: str = ""
    auth_code: str = ""
    arpc: bytes = b""
    transaction_id: str = ""
    network: str = ""
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict, field names as the host sends them."""
        return {
            "approved": self.approved,
            "responseCode": self.response_code,
            "authCode": self.auth_code,
            "arpc": self.arpc.hex().upper(),
            "transactionId": self.transaction_id,
            "network": self.network,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class KernelOutcome:
    """The end of a tap as the kernel sees it, and (after :func:`finish`) as the host decided.

    ``data`` holds every primitive data object the card returned and the terminal supplied;
    ``authorization_data`` the field-55 block built from it. ``kernel`` is ``"visa"`` or
    ``"mastercard"`` (the path taken), ``cryptogram`` ``"ARQC"``, ``"TC"`` or ``"AAC"``.
    """

    outcome: Outcome
    reason: str
    message: str = ""
    kernel: str | None = None
    aid: bytes | None = None
    label: str | None = None
    cryptogram: str | None = None
    cvm: str | None = None
    amount: int = 0
    currency: str = "EUR"
    merchant: Merchant = field(default_factory=Merchant)
    data: Mapping[int, bytes] = field(default_factory=dict)
    authorization_data: bytes = b""
    host: HostAnswer | None = None
    oda: OdaResult | None = None

    @property
    def pan_masked(self) -> str | None:
        """The PAN as people may see it (first six, last four)."""
        pan = pan_of(self.data)
        return mask_pan(pan) if pan else None

    def decoded_authorization(self, *, masked: bool = True) -> list[dict[str, str]]:
        """The field-55 block, one entry per tag: tag, name, value (masked unless asked), meaning."""
        rows = []
        for tag in block_tags(self.data, self.kernel) if self.authorization_data else ():
            value = self.data[tag]
            rows.append({
                "tag": f"{tag:02X}",
                "name": emv_tags.name(tag, self.kernel),
                "value": mask_value(tag, value) if masked else value.hex().upper(),
                "meaning": "" if masked and _masked(tag)
                else emv_tags.interpret(tag, value, self.kernel),
            })
        return rows

    def to_json(self, *, masked: bool = True) -> dict[str, Any]:
        """A JSON-ready dict of the outcome; PAN and track data masked unless ``masked=False``."""
        block = self.authorization_data.hex().upper()
        return {
            "outcome": self.outcome.value,
            "message": self.message,
            "reason": self.reason,
            "kernel": self.kernel,
            "aid": self.aid.hex().upper() if self.aid else None,
            "label": self.label,
            "cryptogram": self.cryptogram,
            "cvm": self.cvm,
            "amount": self.amount,
            "currency": self.currency,
            "merchant": dataclasses.asdict(self.merchant),
            "pan": self.pan_masked if masked else pan_of(self.data),
            "authorization": {
                "emv": None if masked else block,
                "tags": self.decoded_authorization(masked=masked),
            },
            "host": self.host.to_json() if self.host else None,
            "oda": self.oda.to_json() if self.oda else None,
        }


def _masked(tag: int) -> bool:
    return tag in _PAN_TAGS or tag in _TRACK_TAGS or emv_tags.is_sensitive(tag)


#: Tags that belong to one kernel's field 55 only: TTQ (9F66) and CTQ (9F6C) are Visa's (Book C-3
#: Annex A); on a Mastercard card 9F6C is the mag-stripe application version (Book C-2 Annex A).
VISA_ONLY_TAGS = (0x9F66, 0x9F6C)

#: What a mag-stripe mode tap sends (Book C-2): the dynamic Track 2 (9F6B) with CVC3, UN and ATC in
#: its discretionary data, the numeric UN (9F6A), ATC, CVC3 (Track2) and the transaction data.
MAGSTRIPE_TAGS = (0x9F6B, 0x9F6A, 0x9F36, 0x9F61, 0x82, 0x84, 0x9F02, 0x5F2A, 0x9F1A, 0x9A)


def block_tags(data: Mapping[int, bytes], kernel: str | None = None) -> list[int]:
    """The tags of the field-55 block for ``data``: :data:`apdu.tags.FIELD_55_TAGS` present, in order.

    Track 2 equivalent data (57) is sent when the card gave it; otherwise PAN (5A) and
    expiry (5F24) identify the card. A Mastercard block carries no :data:`VISA_ONLY_TAGS`.
    """
    if kernel == "mastercard" and 0x9F61 in data and 0x9F26 not in data:
        return [t for t in MAGSTRIPE_TAGS if t in data]
    chosen = [t for t in FIELD_55_TAGS if t in data]
    if kernel == "mastercard":
        chosen = [t for t in chosen if t not in VISA_ONLY_TAGS]
    if 0x57 in data:
        chosen = [t for t in chosen if t not in (0x5A, 0x5F24)]
    return chosen


def authorization_block(data: Mapping[int, bytes], kernel: str | None = None) -> bytes:
    """The field-55 block (ISO 8583 field 55 style): the tags of :func:`block_tags`, BER-TLV encoded."""
    return encode(TLV(t, data[t]) for t in block_tags(data, kernel))


def authorization_request(outcome: KernelOutcome, *, terminal_id: str) -> dict[str, Any]:
    """The JSON body of ``POST /api/authorize`` for an online request (unmasked: it goes to the host)."""
    return {
        "emv": outcome.authorization_data.hex().upper(),
        "amount": outcome.amount,
        "currency": currency(outcome.currency).code,
        "merchant": dataclasses.asdict(outcome.merchant),
        "channel": "contactless",
        "terminal": {"id": terminal_id},
    }


def finish(outcome: KernelOutcome, answer: HostAnswer) -> KernelOutcome:
    """The outcome after the host's answer: an online request becomes Approved or Declined.

    EMV Contactless Book A §6.2: the reader completes an Online Request with the issuer's
    decision; a card that already finished offline keeps its outcome, with the answer attached.
    """
    if outcome.outcome is not Outcome.ONLINE_REQUEST:
        return dataclasses.replace(outcome, host=answer)
    final = Outcome.APPROVED if answer.approved else Outcome.DECLINED
    reason = answer.reason or (f"host response code {answer.response_code}" if answer.response_code else "")
    return dataclasses.replace(
        outcome, outcome=final, message=MESSAGES[final], host=answer,
        reason=reason or outcome.reason,
    )
