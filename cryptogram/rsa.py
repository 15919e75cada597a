"""Raw RSA for offline data authentication: the public operation, the private one, and keys.

EMV 4.4 Book 2 §5.1 and Annex A2.1 use RSA without any padding scheme of its own: the signer
builds a block exactly as long as the modulus (leading byte ``6A``, trailer ``BC``, in the
manner of ISO/IEC 9796-2 digital signature scheme 1) and raises it to the private exponent;
the verifier raises the signature to the public exponent (3 or 2^16+1, Annex B2.1) and reads
the block back. So this module offers the bare operations on integers and bytes; the formats
live in :mod:`cryptogram.oda`. :func:`roca_fingerprint` recognises moduli made by a known
weak prime generator (CVE-2017-15361), which a terminal reports for every key it recovers.

Keys are frozen values. :class:`RsaPublicKey` is what a certificate carries (modulus and
exponent as bytes, big-endian); :class:`RsaPrivateKey` holds the CRT parameters and signs
with the Chinese remainder theorem, as a card does. Generation and PEM import/export go
through the ``cryptography`` package, which keeps the prime search out of this code.

>>> key = RsaPublicKey(bytes.fromhex("C5"), b"\\x03")   # toy modulus 197, e = 3
>>> key.recover(bytes([2])).hex()
'08'
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as _rsa

from cryptogram.errors import InvalidInput, InvalidKey

__all__ = ["RsaPrivateKey", "RsaPublicKey", "generate_private_key", "roca_fingerprint"]

#: The public exponents EMV allows (Book 2 Annex B2.1: 3 or 2^16 + 1).
EXPONENTS = (3, 65537)


def _int(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _bytes(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


@dataclass(frozen=True, slots=True)
class RsaPublicKey:
    """An RSA public key as EMV data carries it: ``modulus`` and ``exponent``, big-endian bytes."""

    modulus: bytes
    exponent: bytes

    def __post_init__(self) -> None:
        if not self.modulus or self.modulus[0] == 0:
            raise InvalidKey("an RSA modulus must be non-empty with a non-zero leading byte")
        if not self.exponent or _int(self.exponent) < 3:
            raise InvalidKey("an RSA public exponent must be at least 3")

    @property
    def n(self) -> int:
        """The modulus as an integer."""
        return _int(self.modulus)

    @property
    def e(self) -> int:
        """The public exponent as an integer."""
        return _int(self.exponent)

    @property
    def length(self) -> int:
        """The modulus length in bytes (N_CA, N_I or N_IC of Book 2)."""
        return len(self.modulus)

    def recover(self, signature: bytes) -> bytes:
        """``signature ^ e mod n`` as ``length`` bytes (Book 2 §5.3 step 2, §6.3 step 2).

        The signature must be exactly as long as the modulus and smaller than it; anything else
        is :class:`~cryptogram.errors.InvalidInput` (the caller names it as a length failure).
        """
        if len(signature) != self.length:
            raise InvalidInput(f"signature is {len(signature)} bytes, the modulus {self.length}")
        value = _int(signature)
        if value >= self.n:
            raise InvalidInput("signature is not smaller than the modulus")
        return _bytes(pow(value, self.e, self.n), self.length)


@dataclass(frozen=True, slots=True, repr=False)
class RsaPrivateKey:
    """An RSA private key with its CRT parameters; signs raw blocks (Book 2 Annex A2.1).

    ``repr`` shows only the modulus length: a private key never appears in a log.
    """

    n: int
    e: int
    d: int
    p: int
    q: int

    def __repr__(self) -> str:
        return f"RsaPrivateKey(<{self.length * 8} bits>)"

    @property
    def length(self) -> int:
        """The modulus length in bytes."""
        return (self.n.bit_length() + 7) // 8

    @property
    def public(self) -> RsaPublicKey:
        """The public half, as a certificate carries it."""
        e_len = (self.e.bit_length() + 7) // 8
        return RsaPublicKey(_bytes(self.n, self.length), _bytes(self.e, e_len))

    def sign(self, block: bytes) -> bytes:
        """``block ^ d mod n`` by the Chinese remainder theorem, as ``length`` bytes."""
        if len(block) != self.length:
            raise InvalidInput(f"block is {len(block)} bytes, the modulus {self.length}")
        m = _int(block)
        if m >= self.n:
            raise InvalidInput("block is not smaller than the modulus")
        dp, dq = self.d % (self.p - 1), self.d % (self.q - 1)
        q_inv = pow(self.q, -1, self.p)
        m1, m2 = pow(m, dp, self.p), pow(m, dq, self.q)
        h = (q_inv * (m1 - m2)) % self.p
        return _bytes(m2 + h * self.q, self.length)

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted (test keys only: the caller protects real ones)."""
        numbers = _rsa.RSAPrivateNumbers(
            p=self.p, q=self.q, d=self.d,
            dmp1=self.d % (self.p - 1), dmq1=self.d % (self.q - 1),
            iqmp=pow(self.q, -1, self.p),
            public_numbers=_rsa.RSAPublicNumbers(self.e, self.n),
        )
        return numbers.private_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, pem: bytes) -> RsaPrivateKey:
        """A key from PEM (PKCS#1 or PKCS#8, unencrypted)."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidKey("not an unencrypted RSA private key in PEM") from exc
        if not isinstance(key, _rsa.RSAPrivateKey):
            raise InvalidKey("not an RSA private key")
        return cls._from_numbers(key.private_numbers())

    @classmethod
    def _from_numbers(cls, numbers: _rsa.RSAPrivateNumbers) -> RsaPrivateKey:
        pub = numbers.public_numbers
        return cls(n=pub.n, e=pub.e, d=numbers.d, p=numbers.p, q=numbers.q)


def generate_private_key(bits: int, exponent: int = 3) -> RsaPrivateKey:
    """A fresh key of ``bits`` bits and e 3 or 65537 (Book 2 Annex B2.1).

    EMV allows moduli up to 1984 bits; ``cryptography`` makes none below 1024, so neither does this.
    """
    if exponent not in EXPONENTS:
        raise InvalidKey("EMV public exponents are 3 or 65537")
    if bits % 8 or not 1024 <= bits <= 1984:
        raise InvalidKey("keys made here are 1024 to 1984 bits, a whole number of bytes")
    while True:
        key = _rsa.generate_private_key(public_exponent=exponent, key_size=bits)
        out = RsaPrivateKey._from_numbers(key.private_numbers())
        if out.n.bit_length() == bits:
            return out


#: The small primes whose residues reveal a modulus built as ``k·M + (65537^a mod M)``.
_ROCA_PRIMES = (
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
)


def _subgroup(p: int) -> frozenset[int]:
    out, x = {1}, 65537 % p
    while x not in out:
        out.add(x)
        x = (x * 65537) % p
    return frozenset(out)


_ROCA_SUBGROUPS = {p: _subgroup(p) for p in _ROCA_PRIMES}


def roca_fingerprint(modulus: bytes) -> bool:
    """Whether ``modulus`` has the structure of the weak keys of CVE-2017-15361 (ROCA).

    Primes of the form ``k·M + (65537^a mod M)`` (M the product of the first primes) give a
    modulus whose residue modulo each of those primes lies in the subgroup generated by 65537;
    a random modulus does so for all of them with negligible probability (Nemec et al., "The
    Return of Coppersmith's Attack", CCS 2017, §2.3). A fingerprint is a warning, not a proof.
    """
    n = int.from_bytes(modulus, "big")
    if n < 2:
        return False
    return all(n % p in group for p, group in _ROCA_SUBGROUPS.items())
