"""The device's client of the token service: its HTTP API, and what the device does with the answers.

The device wallet (:mod:`hce.wallet`) keeps what the device must remember; this module is how it
talks to the token service that fills it:

- :class:`TSPClient` is a small JSON client of the service's HTTP API; an answer that is a
  problem document (RFC 9457), or no answer at all, becomes :class:`TSPProblem`.
- :func:`login_with_device` logs in and binds the session to this wallet's device (registering
  the device's public key the first time).
- :func:`request_card` asks for a card on this device; :func:`store_card` opens the profile the
  service sealed to this device into the wallet.
- :func:`sync_cards` brings the wallet in line with the account's cards: for every ACTIVE card
  of the account that the wallet lacks, the device asks ``POST /api/cards/{id}/profile`` for a
  profile sealed to its own key, with fresh limited-use keys. A card bound to another device of
  the account is brought here only with ``move=True`` (the other device loses it); cards the
  service has removed or moved away leave the wallet. :func:`follow_default` keeps the
  wallet's default card the service's.
- :func:`apply_issuer_scripts` takes the card's queued issuer scripts
  (``POST /api/cards/{id}/issuer-scripts``), gives the card the ARPC they come with (EXTERNAL
  AUTHENTICATE) and each script, and reports every status word
  (``POST /api/issuer-scripts/{id}/result``); :mod:`hce.issuer` is the card's side.
- :func:`in_app_payment` makes an in-app cryptogram with a wallet card (:mod:`hce.inapp`) and
  sends it to ``POST /api/payments/in-app``.

Exceptions (all :class:`~hce.errors.HCEError`): :class:`TSPProblem` for the service's refusals
and for a service that cannot be reached; :class:`~hce.wallet.WalletError` when the wallet has
no device, or one registered at another service; :class:`~hce.inapp.InAppError` when the card
itself declines an in-app payment.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from typing import Any

import httpx

from apdu.command import ExternalAuthenticate
from hce.applet import CardApplet
from hce.errors import HCEError
from hce.inapp import InAppError, in_app_cryptogram
from hce.wallet import Wallet, WalletCard, WalletError, WalletSession

__all__ = [
    "TSPClient",
    "TSPProblem",
    "all_cards",
    "apply_issuer_scripts",
    "follow_default",
    "in_app_payment",
    "login_with_device",
    "request_card",
    "store_card",
    "sync_cards",
]


class TSPProblem(HCEError):
    """The token service answered with an error (a problem document), or could not be reached.

    ``status`` is the HTTP status (0 when the service was unreachable), ``type`` the problem's
    stable type URI (RFC 9457 §3.1.1).
    """

    def __init__(self, message: str, *, status: int = 0, type: str = "about:blank") -> None:
        super().__init__(message)
        self.status = status
        self.type = type

    @property
    def slug(self) -> str:
        """The last part of the problem type (``verification-code-invalid`` …)."""
        return self.type.rsplit("/", 1)[-1]


class TSPClient:
    """A small JSON client of the token service's HTTP API; ``token`` is the session's bearer token."""

    def __init__(self, host: str, token: str | None = None, *, timeout: float = 10.0) -> None:
        self.host = host.rstrip("/")
        self.token = token
        self._http = httpx.Client(
            base_url=self.host, timeout=timeout, headers={"User-Agent": "hcekit-wallet"}
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> TSPClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotent: bool = False,
        params: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        """Send one request; the JSON answer (``None`` for 204), or :class:`TSPProblem`."""
        headers: dict[str, str] = {}
        bearer = token or self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        if idempotent:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        try:
            response = self._http.request(method, path, json=body, headers=headers, params=params)
        except httpx.HTTPError as exc:
            raise TSPProblem(
                f"cannot reach the token service at {self.host} ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            raise _problem(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise TSPProblem(f"the token service answered {path} with something that is not JSON") from None

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path``."""
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None} or None)

    def post(self, path: str, body: Any = None, *, idempotent: bool = False) -> Any:
        """POST ``path``."""
        return self.request("POST", path, body, idempotent=idempotent)


def _problem(response: httpx.Response) -> TSPProblem:
    """The :class:`TSPProblem` for an error answer, from its problem document (RFC 9457) if any."""
    doc: Any = None
    with contextlib.suppress(ValueError):
        doc = response.json()
    if not isinstance(doc, dict):
        doc = {}
    title = str(doc.get("title") or response.reason_phrase or f"HTTP {response.status_code}")
    detail = str(doc.get("detail") or "")
    message = f"{title}: {detail}" if detail and detail != title else title
    return TSPProblem(message, status=response.status_code, type=str(doc.get("type") or "about:blank"))


def login_with_device(
    client: TSPClient, wallet: Wallet, email: str, password: str, *, device_name: str = "hcekit-cli"
) -> dict[str, Any]:
    """Log in, register this wallet's device if it has none at this host, bind the session to it.

    The session is bound to the device (``deviceId`` at login), so reporting the device lost
    also ends the session. Returns ``{"user", "deviceId", "newDevice"}``.
    """
    if wallet.device_host not in (None, client.host):
        raise WalletError(
            f"this wallet's device is registered at {wallet.device_host}; "
            "use --wallet DIR for another token service"
        )
    body: dict[str, Any] = {"email": email, "password": password}
    new_device = wallet.device_id is None
    if not new_device:
        body["deviceId"] = wallet.device_id
    login = client.post("/api/auth/login", body)
    if new_device:
        device = client.request(
            "POST",
            "/api/devices",
            {"name": device_name, "publicKey": wallet.public_key_b64},
            token=login["token"],
        )
        wallet.set_device(int(device["id"]), client.host, device_name)
        login = client.request(
            "POST", "/api/auth/login", {**body, "deviceId": wallet.device_id}, token=login["token"]
        )
    wallet.set_session(
        WalletSession(client.host, login["token"], login["user"]["email"], int(login["user"]["id"]))
    )
    client.token = login["token"]
    return {"user": login["user"], "deviceId": wallet.device_id, "newDevice": new_device}


def request_card(client: TSPClient, wallet: Wallet, pan: str, expiry: str, cvv: str) -> dict[str, Any]:
    """Ask for a card on this wallet's device: ``POST /api/cards`` with the funding card's data.

    The PAN and CVV go into the request body and nowhere else. The answer holds ``card`` and
    ``decision``, and either ``profile`` (sealed to this device: :func:`store_card` opens it) or,
    when the issuer wants the card verified first, ``verification`` (then
    ``POST /api/cards/{id}/verify`` with the one-time code answers with the profile).
    """
    if wallet.device_id is None:
        raise WalletError("this wallet has no registered device (hcekit login)")
    body = {"pan": pan, "expiry": expiry, "cvv": cvv, "deviceId": wallet.device_id}
    answer: dict[str, Any] = client.post("/api/cards", body, idempotent=True)
    return answer


def store_card(wallet: Wallet, card: dict[str, Any], envelope: dict[str, Any]) -> WalletCard:
    """Open a sealed profile into the wallet with the service's view of the card."""
    return wallet.add_card(
        int(card["id"]),
        envelope,
        network=str(card.get("network", "")),
        status=str(card.get("status", "ACTIVE")),
        last4=str(card.get("last4", "")),
        token_last4=str(card.get("tokenLast4", "")),
        default=bool(card.get("default")),
    )


def all_cards(client: TSPClient, *, page_size: int = 100) -> list[dict[str, Any]]:
    """Every live card of the account, following ``nextCursor`` across pages of ``GET /api/cards``."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = client.get("/api/cards", limit=page_size, cursor=cursor)
        found += page["items"]
        cursor = page.get("nextCursor")
        if not cursor:
            return found


def _row(card: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    """One line of a :func:`sync_cards` report."""
    entry = {"id": int(card["id"]), "network": card.get("network", ""), "last4": card.get("last4", "")}
    if reason:
        entry["reason"] = reason
    return entry


def sync_cards(client: TSPClient, wallet: Wallet, *, move: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Bring the wallet in line with the account's cards (see the module docstring).

    Returns ``{"added": [...], "dropped": [...], "skipped": [...], "failed": [...]}``, each a
    list of ``{"id", "network", "last4", "reason"?}``, and ``"scripts"``: the issuer scripts
    the wallet's cards were given (:func:`apply_issuer_scripts`, rows with ``card``). A card the
    service refuses (its key limit for the day, say) is listed under ``failed`` and the others
    still sync.
    """
    if wallet.device_id is None:
        raise WalletError("this wallet has no registered device (hcekit login)")
    mine = int(wallet.device_id)
    remote = all_cards(client)
    local = {c.id: c for c in wallet.cards}
    report: dict[str, list[dict[str, Any]]] = {"added": [], "dropped": [], "skipped": [], "failed": []}
    for card in remote:
        card_id = int(card["id"])
        status = str(card.get("status", ""))
        elsewhere = card.get("deviceId") is not None and int(card["deviceId"]) != mine
        held = local.pop(card_id, None)
        if held is not None:
            if elsewhere:
                wallet.remove_card(card_id)
                report["dropped"].append(_row(card, f"moved to device {card['deviceId']}"))
            elif held.status != status:
                wallet.set_status(card_id, status)
            continue
        rescuable = status == "SUSPENDED" and card.get("statusReason") == "DEVICE_LOST"
        if elsewhere and not (move and (status == "ACTIVE" or rescuable)):
            hint = " (--move brings it here)" if status == "ACTIVE" or rescuable else ""
            report["skipped"].append(_row(card, f"on device {card['deviceId']}{hint}"))
            continue
        if not elsewhere and status != "ACTIVE":
            report["skipped"].append(_row(card, status.lower()))
            continue
        body = {"deviceId": mine, "move": bool(elsewhere)}
        try:
            answer = client.post(f"/api/cards/{card_id}/profile", body, idempotent=True)
        except TSPProblem as exc:
            if exc.status == 0:
                raise
            report["failed"].append(_row(card, str(exc)))
            continue
        store_card(wallet, answer["card"], answer["profile"])
        report["added"].append(_row(answer["card"]))
    for gone in local.values():
        wallet.remove_card(gone.id)
        report["dropped"].append(
            {"id": gone.id, "network": gone.network, "last4": gone.last4, "reason": "removed at the service"}
        )
    follow_default(client, wallet, remote)
    report["scripts"] = _issuer_updates(client, wallet, report["failed"])
    return report


def _issuer_updates(client: TSPClient, wallet: Wallet, failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`apply_issuer_scripts` for every card of the wallet; one row per script, with ``card``.

    A card whose scripts the service refuses is added to ``failed`` and the others still sync."""
    done: list[dict[str, Any]] = []
    for card in wallet.cards:
        try:
            applied = apply_issuer_scripts(client, card.id, wallet.applet(card.id))
        except TSPProblem as exc:
            if exc.status == 0:
                raise
            failed.append(_row({"id": card.id, "network": card.network, "last4": card.last4},
                               f"issuer scripts: {exc}"))
            continue
        done += [{**row, "card": card.id} for row in applied]
    return done


def follow_default(client: TSPClient, wallet: Wallet, remote: list[dict[str, Any]]) -> None:
    """Make the wallet's default the service's default card of this device.

    The service is the source of truth. When it names no default for this device yet, the
    wallet's own choice (its first card, say) is made the service's default first, so the two
    never disagree and no listing shows two defaults for one device.
    """
    held = {c.id: c for c in wallet.cards}
    if wallet.device_id is None or not held:
        return
    mine = int(wallet.device_id)
    chosen = next(
        (
            int(c["id"])
            for c in remote
            if c.get("default") and c.get("deviceId") is not None and int(c["deviceId"]) == mine
        ),
        None,
    )
    if chosen is None:
        local = next((c for c in held.values() if c.default and c.status == "ACTIVE"), None)
        if local is not None:
            try:
                client.request("PUT", f"/api/cards/{local.id}/default")
                chosen = local.id
                for card in remote:
                    if int(card["id"]) == local.id:
                        card["default"] = True
            except TSPProblem as exc:
                if exc.status == 0:
                    raise
    wallet.follow_default(chosen if chosen in held else None)


def apply_issuer_scripts(client: TSPClient, card_id: int, card: CardApplet) -> list[dict[str, Any]]:
    """Apply the issuer's queued scripts for ``card_id`` to ``card`` and report each status word.

    The ARPC of the authorization a script answers goes first (EXTERNAL AUTHENTICATE, once per
    ATC). Returns one ``{"id", "action", "sw", "arpcSw"}`` per script, in the issuer's order;
    the service hands each script out once and records ``applied`` (9000) or ``refused``.
    """
    delivered = client.post(f"/api/cards/{card_id}/issuer-scripts", {}, idempotent=True)["items"]
    authenticated: dict[int, str] = {}
    done: list[dict[str, Any]] = []
    for item in delivered:
        atc = int(item["atc"])
        if item.get("arpc") and atc not in authenticated:
            answer = card.process(ExternalAuthenticate(bytes.fromhex(item["arpc"])).to_bytes())
            authenticated[atc] = answer[-2:].hex().upper()
        sw = card.process(bytes.fromhex(item["script"]))[-2:].hex().upper()
        client.post(f"/api/issuer-scripts/{int(item['id'])}/result", {"sw": sw})
        done.append({"id": int(item["id"]), "action": item["action"], "sw": sw,
                     "arpcSw": authenticated.get(atc)})
    return done


def in_app_payment(
    client: TSPClient,
    wallet: Wallet,
    *,
    amount: int,
    currency: str,
    card_id: int | None = None,
    merchant_id: str = "M-42",
    merchant_name: str = "Example Shop",
) -> dict[str, Any]:
    """Make the in-app cryptogram with the wallet's card and send it to POST /api/payments/in-app.

    :class:`~hce.inapp.InAppError` when the card declines the payment itself (an AAC: no
    limited-use key left, say).
    """
    card = wallet.card(card_id)
    applet = wallet.applet(card.id, device_cvm=True)
    made = in_app_cryptogram(
        applet, amount=amount, currency=currency, date=datetime.date.today().strftime("%y%m%d")
    )
    if made.kind != "ARQC":
        reason = applet.last_cryptogram.reason if applet.last_cryptogram else "declined"
        hint = " (hcekit keys replenish)" if reason == "replenish" else ""
        raise InAppError(f"the card declined the payment itself: {reason}{hint}")
    body = {
        "cardId": card.id,
        "amount": amount,
        "currency": currency.upper(),
        "merchantId": merchant_id,
        "merchantName": merchant_name,
        "emv": made.emv.hex().upper(),
    }
    result: dict[str, Any] = client.post("/api/payments/in-app", body, idempotent=True)
    result.setdefault("atc", made.atc)
    result["cardId"] = card.id
    return result
