"""EMV cryptograms: key derivation, session keys, ARQC/TC/AAC, ARPC and MACs.

The one place where the card side (``hce``) and the issuer side (``tsp_backend``) share the same
mathematics. Every function is bytes in, bytes out, on top of the ``cryptography`` package.

Modules, from the bottom up:

- :mod:`cryptogram.mac` — ISO/IEC 9797-1 MAC algorithm 3 (triple DES) and AES-CMAC
  (EMV 4.4 Book 2 Annex A1.2);
- :mod:`cryptogram.derive` — DES parity, ICC master keys (options A, B, C) and session keys
  (EMV common and Mastercard; Annex A1.3–A1.4);
- :mod:`cryptogram.ac` — application cryptograms and ARPC methods 1 and 2 (§8.1–8.2);
- :mod:`cryptogram.cvn` — cryptogram versions (Visa CVN 10/18/22, Mastercard CVN 16/17) as
  profiles that build the MAC input from a TLV set, generate, verify and lay out the IAD;
- :mod:`cryptogram.luk` — limited-use keys for host card emulation;
- :mod:`cryptogram.rsa`, :mod:`cryptogram.oda` and :mod:`cryptogram.oda_recover` — raw RSA and
  the offline data authentication formats of Book 2 §5–§6 (certificates, SDA, DDA, fDDA, CDA):
  signing them, and recovering and checking them;
- :mod:`cryptogram.errors` — ``CryptogramError`` ├ ``InvalidKey`` └ ``InvalidInput``.

Secrets are compared with :func:`hmac.compare_digest`; no key appears in a ``repr`` or an
exception message.
"""

from cryptogram.ac import arpc_method1, arpc_method2, generate_ac, verify_ac
from cryptogram.cvn import CVN, IAD, PROFILES, ArqcResult, profile, profile_for_iad
from cryptogram.derive import (
    adjust_parity,
    derive_icc_mk,
    derive_icc_mk_a,
    derive_icc_mk_b,
    derive_icc_mk_c,
    derive_session_key_emv,
    derive_session_key_mastercard,
    key_check_value,
)
from cryptogram.errors import CryptogramError, InvalidInput, InvalidKey
from cryptogram.luk import LimitedUseKey, derive_luk, derive_luk_batch
from cryptogram.mac import aes_cmac, iso9797_mac_alg3

__all__ = [
    "CVN",
    "IAD",
    "PROFILES",
    "ArqcResult",
    "CryptogramError",
    "InvalidInput",
    "InvalidKey",
    "LimitedUseKey",
    "adjust_parity",
    "aes_cmac",
    "arpc_method1",
    "arpc_method2",
    "derive_icc_mk",
    "derive_icc_mk_a",
    "derive_icc_mk_b",
    "derive_icc_mk_c",
    "derive_luk",
    "derive_luk_batch",
    "derive_session_key_emv",
    "derive_session_key_mastercard",
    "generate_ac",
    "iso9797_mac_alg3",
    "key_check_value",
    "profile",
    "profile_for_iad",
    "verify_ac",
]
