"""``hcekit emulate``: be a contactless payment card for a reader, until Ctrl-C.

The card answers through vpcd (it appears in pcscd as an inserted card) or as an ISO-DEP target
on nfcpy (UDP driver for tests, or a USB reader with target mode). Without ``--profile`` it is
the built-in test card of ``--kernel`` (:mod:`hce.testcard`); with ``--wallet DIR`` (or
``HCEKIT_WALLET``) or ``--card ID`` it is the device wallet's card, on the wallet's durable
counters (:mod:`hce.wallet`). Each exchange is printed masked.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, TextIO

import click

from cli.common import console, fail


def _print_exchange(c_apdu: bytes, r_apdu: bytes, ms: float) -> None:
    from apdu.trace import mask_apdu

    shown_c = mask_apdu(c_apdu, "C").hex().upper() if len(c_apdu) >= 4 else c_apdu.hex().upper()
    shown_r = mask_apdu(r_apdu, "R").hex().upper() if len(r_apdu) >= 2 else r_apdu.hex().upper()
    console.print(f"C> {shown_c}")
    console.print(f"R< {shown_r}  ({ms:.2f} ms)")


@click.command()
@click.option("--via", "via", default="vpcd", show_default=True,
              help="vpcd[:HOST:PORT] | vpcd-listen[:HOST:PORT] (a phone relaying a terminal connects) | "
                   "nfc:udp[:HOST:PORT] | nfc:usb[:…]")
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False, path_type=Path),
              help="A card profile (JSON); default: the built-in test card.")
@click.option("--kernel", type=click.Choice(["visa", "mastercard"]), default="visa", show_default=True,
              help="Which built-in test card (ignored with --profile).")
@click.option("--oda", is_flag=True,
              help="The built-in test card holds a certificate chain from the hcekit test CA and signs "
                   "(fDDA for Visa, CDA for Mastercard).")
@click.option("--device-cvm/--no-device-cvm", default=None,
              help="Override the profile's consumer device CVM flag.")
@click.option("--counters", "counters_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the ATC and key use counts in this file (durable across runs).")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every exchange as JSON Lines (masked unless --unmasked).")
@click.option("--unmasked", is_flag=True, help="Do not mask PAN and Track 2 data in the trace file.")
@click.option("--wallet", "wallet_dir", envvar="HCEKIT_WALLET", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Be this device wallet's default card (HCEKIT_WALLET).")
@click.option("--card", "card_id", type=int, default=None,
              help="Be this card of the wallet (default: the wallet's default card).")
@click.option("--once", is_flag=True, help="Serve one connection (vpcd) or one tap (nfc), then exit.")
@click.option("--quiet", is_flag=True, help="Do not print exchanges.")
def emulate(via: str, profile_path: Path | None, kernel: str, oda: bool, device_cvm: bool | None,
            counters_path: Path | None, trace_path: Path | None, unmasked: bool,
            wallet_dir: Path | None, card_id: int | None, once: bool, quiet: bool) -> None:
    """Emulate a contactless payment card for a reader until Ctrl-C."""
    from apdu.trace import JsonlWriter
    from hce.applet import CardApplet
    from hce.errors import HCEError
    from hce.keys import CounterStore, FileCounterStore
    from hce.profile import CardProfile
    from hce.testcard import builtin_profile
    from hce.transports import parse_via

    counters: CounterStore | None = None
    wallet_card = None
    try:
        kind, where, port = parse_via(via)
        if profile_path is not None:
            profile = CardProfile.load(profile_path)
        elif wallet_dir is not None or card_id is not None:
            from hce.wallet import Wallet

            wallet = Wallet.open(wallet_dir, create=False)
            wallet_card = wallet.card(card_id)
            profile = wallet_card.profile
            if counters_path is None:
                counters = wallet.counters(wallet_card.id)
        else:
            profile = builtin_profile(kernel, now=int(time.time()), oda=oda)
        if device_cvm is not None:
            profile = profile.with_device_cvm(device_cvm)
        if counters_path is not None:
            counters = FileCounterStore(counters_path, initial_atc=profile.atc)
    except HCEError as exc:
        raise fail(str(exc)) from exc
    card = CardApplet(profile, counters=counters, clock=time.time)
    trace_file: TextIO | None = trace_path.open("a", encoding="utf-8") if trace_path else None
    tracers: list[Any] = [JsonlWriter(trace_file, masked=not unmasked)] if trace_file else []
    on_exchange = None if quiet else _print_exchange
    if profile_path:
        source = str(profile_path)
    elif wallet_card is not None:
        source = f"wallet card {wallet_card.id}, token ····{wallet_card.token_last4}"
    else:
        source = f"built-in {profile.kernel} test card"
    console.print(f"emulating {profile.label} ({source}) via {via}; Ctrl-C to stop")
    try:
        if kind in ("vpcd", "vpcd-listen"):
            from hce.transports.vpcd import VpcdCard

            virtual = VpcdCard(card, where, port or 35963, tracers=tracers, on_exchange=on_exchange,
                               listen=kind == "vpcd-listen")
            _run(lambda: virtual.serve(reconnect=not once), virtual.stop)
        else:
            from hce.transports.nfc import NfcCard

            target = NfcCard(card, where, tracers=tracers, on_exchange=on_exchange)
            try:
                _run(lambda: target.serve(max_activations=1 if once else None), target.stop)
            finally:
                target.close()
    except HCEError as exc:
        raise fail(str(exc)) from exc
    finally:
        if trace_file is not None:
            trace_file.close()
    if card.needs_replenishment:
        console.print("the card needs new limited-use keys (replenish the wallet)")


def _run(serve: Any, stop: Any) -> None:
    """Serve in a worker thread so that Ctrl-C in the main thread stops it cleanly."""
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            serve()
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    thread = threading.Thread(target=worker, name="hce-emulate", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        stop()
        thread.join(5)
        console.print("stopped")
    if errors:
        raise errors[0]
