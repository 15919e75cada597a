"""Offline data authentication (cryptogram.oda, cryptogram.rsa) against published vectors.

The vectors come from the test suite of emv-tools (Dmitry Eremin-Solenikov), kept in
RfidResearchGroup/proxmark3:

* ``MC05_*``, ``MC_*``: a Mastercard card certified under the Mastercard CA key RID A000000004
  index 05 (1408 bits), its issuer and ICC certificates, a DDA signature over DDOL data
  ``00000000`` and a CDA signature over UN ``12345779`` — proxmark3 commit
  1b88066d11e4e8e00e89f571b68075d5d76845e3, ``client/src/emv/test/cda_test.c`` (and the same
  chain with the DDA signature in ``client/src/emv/test/dda_test.c`` at commit
  0639bfb9bc967fd792ff3e43d34bee8b139c6969);
* ``VISA01_*``, ``VISA_*``: a Visa card under the Visa CA key A000000003 index 01 (1024 bits,
  expired 2009) with signed static application data (SDA) — proxmark3 commit
  224cb2ffd7432824cec132a97fa02fc9106e4f92, ``client/src/emv/test/sda_test.c``.

Each vector is checked by this code and, for the RSA step, by OpenSSL's raw RSA
(``openssl pkeyutl -verifyrecover -pkeyopt rsa_padding_mode:none``), an implementation that
shares nothing with ours.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptogram import oda, rsa
from cryptogram.errors import InvalidInput, OdaError
from cryptogram.oda import Reason
from cryptogram.oda_recover import (
    IccCertificate,
    IssuerCertificate,
    recover_cda,
    recover_dynamic_data,
    recover_icc_key,
    recover_issuer_key,
    recover_static_data,
)
from cryptogram.rsa import RsaPrivateKey, RsaPublicKey, generate_private_key

MC05_MODULUS = bytes.fromhex(
    "B8048ABC30C90D976336543E3FD7091C8FE4800DF820ED55E7E94813ED00555B573FECA3D84AF6131A651D66CFF4284F"
    "B13B635EDD0EE40176D8BF04B7FD1C7BACF9AC7327DFAA8AA72D10DB3B8E70B2DDD811CB4196525EA386ACC33C0D9D45"
    "75916469C4E4F53E8E1C912CC618CB22DDE7C3568E90022E6BBA770202E4522A2DD623D180E215BD1D1507FE3DC90CA3"
    "10D27B3EFCCD8F83DE3052CAD1E48938C68D095AAC91B5F37E28BB49EC7ED597"
)
MC_ISSUER_CERT = bytes.fromhex(
    "1714284F763B8586EE6D319951F7E63FA25076E50DC9D3200BA998D3A052ADBA9AB69AC6AD6ADD3CE09F0278F4074EC4"
    "EE9B1D2268A3E953575E454E50CD860BF424C51C597712D2AA057089DD8673E51B1E1D7188034892077AC18A6AE23488"
    "BEA9DF3B1A83F2C0800CD7C5CDF2FDE0496F7BC39FB4BF363299BFA637B2EC33C507E36821EEC2075F0E420D38A1C9F3"
    "127261BA316C987674FADB20EA7FEB75EE455D12146EA6F02E8B01EC2FA7A115"
)
MC_ISSUER_REMAINDER = bytes.fromhex(
    "6E63B7BC70ABDD09341B34C03286BA9BD83BA7936C5B7798FB22C5E53FF240A26DBD6415"
)
MC_ICC_CERT = bytes.fromhex(
    "A42FBEB156B98DCB0554DA062ADCA5309A91F04FA2C7BD7102A8D73F16A3CFADE8AADF4F3FE2A2125CCDD77C6B9F78B5"
    "B4371CE0805725B0F9C027AF147D91E1FFDB201E9C170CE777053A172AD526DCAFD33895E1A947305C5B167F2E7C6F99"
    "1581A652EE473154760C2ED774214E50DFECDD4CF294C974B89EBCA25B5AB3C0BEB50DFAF782AFDE1433D90CA2A89D65"
    "1E75D67EBC7C3E36F5A165EE6132612939C1ECD399E46074B996D93A88E01E0A"
)
MC_STATIC_DATA = bytes.fromhex(
    "5F25031405015F24031506305A0852858812543456535F3401018E0C00000000000000001E031F039F0702FF009F0D05"
    "BC50BC00009F0E0500000000009F0F05BC70BC98009F4A01825F280206438C219F02069F03069F1A0295055F2A029A03"
    "9C019F37049F35019F45029F4C089F34038D0C910A8A0295059F37049F4C083900"
)
MC_DDA_SDAD = bytes.fromhex(
    "3D87F31056102D2512CFDE30900627C1263A76D1DAA821F50831E606C54544C258131EAEBE874DCB1A28CF82D3FF9111"
    "8260BC91113711D3B289FA41BE69C7A7B5C783E6F8F97FCE13F08B13FA44183E3718CEBF0C41473D2B0FF4DE44B6A02D"
    "75ADB6D4962393FFDF4E69026CDF38FF"
)
MC_CDA_SDAD = bytes.fromhex(
    "1C009FC48679157DBFF45F65D33FF78D4FCBF0CF5EA4208D107AE95AA38C546D0E5A18B87403A12BD447A8BBFC1E49CE"
    "0B2E251389205703C9BB1A88CC79F1DDC2F9841EADF07CE07B62511DDC93DF59F28F0E91F92332D29CDEF2BCCB100885"
    "0500EF3E470A4CB18CD91AA5C1A108F3"
)
MC_CDA_CDOL1_DATA = bytes.fromhex(
    "000000000000000000000000064300000000000643140925501234577923000000000000000000001E0300"
)
MC_CDA_RESPONSE_OBJECTS = bytes.fromhex(
    "9F2701409F360200109F10120010904001220000000000000000000000FF"
)
VISA01_MODULUS = bytes.fromhex(
    "C696034213D7D8546984579D1D0F0EA519CFF8DEFFC429354CF3A871A6F7183F1228DA5C7470C055387100CB935A712C"
    "4E2864DF5D64BA93FE7E63E71F25B1E5F5298575EBE1C63AA617706917911DC2A75AC28B251C7EF40F2365912490B939"
    "BCA2124A30A28F54402C34AECA331AB67E1E79B285DD5771B5D9FF79EA630B75"
)
VISA_ISSUER_CERT = bytes.fromhex(
    "3C5FEAD4DD7BCA44F93E90C44F76EDE54A3288ECDC78469FCB1225C03B2C04F2C2F412281A0822DF14649230989FB149"
    "4070DAF8C9534A7881960148616ACE581788120D3506ACE4CEE564FB27EE53341C22F0B45B31873D05DE545EFE33BCD2"
    "9B2185D035A806AD08C6976F3505A19999930CA8A03EFA321C486061F7DCEC9F"
)
VISA_ISSUER_REMAINDER = bytes.fromhex(
    "1EBCA30F00CE5962A8C6E130544B82891B236C65DE29317F364735DEE63F6598975835D5"
)
VISA_SSAD = bytes.fromhex(
    "99A558B62B674AA5E7D2A57E5EF6A6F2258E5DA052D05B54E5C115FF1CECF94AA2DF8F39A01D71C619EB819DA52EF381"
    "E84979586AEA7855FFBEF40AA3A71CD3B04CFDF270AEC8158A2797F24FD613B748134661135CD290E45B04A8E0CCC711"
    "AE042F159E73C89C2A7E65A4C2FD1D6106024AA27130B0ECEC0238F91659DE96"
)
VISA_STATIC_DATA = bytes.fromhex(
    "5F24030812315A0842765500132345995F3401019F0702FF009F0D05D040ACA8009F0E0500100000009F0F05D068BCF8"
    "005C00"
)

MC_PAN = "5285881254345653"
VISA_PAN = "4276550013234599"
MC_CA = RsaPublicKey(MC05_MODULUS, b"\x03")
VISA_CA = RsaPublicKey(VISA01_MODULUS, b"\x03")
MC_CDA_UN = bytes.fromhex("12345779")


def _issuer(today: str = "140101") -> IssuerCertificate:
    return recover_issuer_key(MC_CA, MC_ISSUER_CERT, MC_ISSUER_REMAINDER, b"\x03", pan=MC_PAN,
                              today=today)


def _icc(today: str = "140101") -> IccCertificate:
    return recover_icc_key(_issuer(today).key, MC_ICC_CERT, b"", b"\x03", pan=MC_PAN,
                           static_data=MC_STATIC_DATA, today=today)


def _cda_hash(cdol: bytes = MC_CDA_CDOL1_DATA) -> bytes:
    return oda.cda_transaction_hash(b"", cdol, MC_CDA_RESPONSE_OBJECTS)


# -- published vectors ------------------------------------------------------------------------


def test_mastercard_issuer_certificate_recovers() -> None:
    """The issuer key of the published chain comes out with its identifier, expiry and length."""
    cert = _issuer()
    assert (cert.issuer_identifier, cert.expiry, cert.key.length) == ("528588", "1221", 176)
    assert cert.key.modulus.endswith(MC_ISSUER_REMAINDER)


def test_mastercard_icc_certificate_recovers() -> None:
    """The ICC key (112 bytes, no remainder) comes out and names the card's PAN."""
    cert = _icc()
    assert (cert.pan, cert.expiry, cert.key.length, cert.key.exponent) == (MC_PAN, "0615", 112, b"\x03")


def test_mastercard_dda_signature_verifies() -> None:
    """The DDA signature over DDOL data 00000000 verifies and yields an 8-byte ICC dynamic number."""
    dd = recover_dynamic_data(_icc().key, MC_DDA_SDAD, bytes(4))
    assert dd.icc_dynamic_number.hex().upper() == "7A33FB8C9546E1E7"


def test_mastercard_cda_recovers_the_cryptogram() -> None:
    """The CDA signature verifies over UN and transaction data, and gives CID 40 and the TC."""
    got = recover_cda(_icc().key, MC_CDA_SDAD, unpredictable_number=MC_CDA_UN, cid=b"\x40",
                      transaction_hash=_cda_hash())
    assert got.cid == b"\x40"
    assert len(got.cryptogram) == 8 and len(got.icc_dynamic_number) == 8
    assert got.transaction_hash == _cda_hash()


def test_visa_sda_returns_the_data_authentication_code() -> None:
    """Signed static application data (93) of the Visa vector gives DAC 3132."""
    issuer = recover_issuer_key(VISA_CA, VISA_ISSUER_CERT, VISA_ISSUER_REMAINDER, b"\x03",
                                pan=VISA_PAN, today="080101")
    assert issuer.issuer_identifier == "427655"
    assert recover_static_data(issuer.key, VISA_SSAD, VISA_STATIC_DATA).hex() == "3132"


# -- each check of Book 2, named --------------------------------------------------------------


@pytest.mark.parametrize(("call", "reason"), [
    (lambda: recover_issuer_key(MC_CA, MC_ISSUER_CERT[:-1], MC_ISSUER_REMAINDER, b"\x03",
                                pan=MC_PAN, today="140101"), Reason.LENGTH),
    (lambda: recover_issuer_key(MC_CA, MC_ISSUER_CERT, MC_ISSUER_REMAINDER[:-1] + b"\x00", b"\x03",
                                pan=MC_PAN, today="140101"), Reason.HASH),
    (lambda: recover_issuer_key(MC_CA, MC_ISSUER_CERT, MC_ISSUER_REMAINDER, b"\x03",
                                pan="5311112222333344", today="140101"), Reason.ISSUER_IDENTIFIER),
    (lambda: recover_issuer_key(MC_CA, MC_ISSUER_CERT, MC_ISSUER_REMAINDER, b"\x03",
                                pan=MC_PAN, today="220101"), Reason.EXPIRED),
    (lambda: recover_issuer_key(MC_CA, bytes([MC_ISSUER_CERT[0] ^ 1]) + MC_ISSUER_CERT[1:],
                                MC_ISSUER_REMAINDER, b"\x03", pan=MC_PAN, today="140101"),
     Reason.TRAILER),
    (lambda: recover_icc_key(_issuer().key, MC_ICC_CERT, b"", b"\x03", pan="5285881254345661",
                             static_data=MC_STATIC_DATA, today="140101"), Reason.PAN),
    (lambda: recover_icc_key(_issuer().key, MC_ICC_CERT, b"", b"\x03", pan=MC_PAN,
                             static_data=MC_STATIC_DATA[:-1] + b"\x01", today="140101"), Reason.HASH),
    (lambda: recover_icc_key(_issuer().key, MC_ICC_CERT, b"", b"\x03", pan=MC_PAN,
                             static_data=MC_STATIC_DATA, today="150701"), Reason.EXPIRED),
    (lambda: recover_icc_key(MC_CA, MC_ISSUER_CERT, MC_ISSUER_REMAINDER, b"\x03", pan=MC_PAN,
                             static_data=b"", today="140101"), Reason.FORMAT),
    (lambda: recover_dynamic_data(_icc().key, MC_DDA_SDAD, bytes.fromhex("00000001")), Reason.HASH),
    (lambda: recover_cda(_icc().key, MC_CDA_SDAD, unpredictable_number=MC_CDA_UN, cid=b"\x80",
                         transaction_hash=_cda_hash()), Reason.CRYPTOGRAM_TYPE),
    (lambda: recover_cda(_icc().key, MC_CDA_SDAD, unpredictable_number=MC_CDA_UN, cid=b"\x40",
                         transaction_hash=_cda_hash(MC_CDA_CDOL1_DATA[:-1] + b"\x01")),
     Reason.TRANSACTION_HASH),
    (lambda: recover_cda(_icc().key, MC_CDA_SDAD, unpredictable_number=b"\x00" * 4, cid=b"\x40",
                         transaction_hash=_cda_hash()), Reason.HASH),
], ids=["short", "remainder", "issuer-id", "issuer-expired", "broken-signature", "icc-pan", "static-data",
        "icc-expired", "wrong-format", "dda-hash", "cda-cid", "cda-transaction", "cda-un"])
def test_each_failure_names_its_reason(call, reason: Reason) -> None:
    """A tampered, expired or mismatched input fails with its own named reason."""
    with pytest.raises(OdaError) as info:
        call()
    assert info.value.reason is reason


# -- our own keys: signing, and an independent implementation ---------------------------------


@pytest.fixture(scope="module")
def chain() -> tuple[RsaPrivateKey, RsaPrivateKey, RsaPrivateKey]:
    """A CA, issuer and ICC key of 1024 bits (the ICC's with e = 65537): quick to make."""
    return generate_private_key(1024), generate_private_key(1024), generate_private_key(1024, 65537)


def _forge(key: RsaPrivateKey, **change: int) -> bytes:
    """A block signed by ``key`` with one byte changed: header, format, algorithms, trailer."""
    block = bytearray(b"\x6A\x02" + b"\x52\x85\x88\xFF" + b"\x12\x30" + b"\x00\x00\x01" + b"\x01\x01")
    block += bytes([key.length, 1]) + b"\xAA" * (key.length - 36) + bytes(20) + b"\xBC"
    for name, value in change.items():
        block[{"header": 0, "format": 1, "hash": 11, "algorithm": 12, "trailer": -1}[name]] = value
    return key.sign(bytes(block))


@pytest.mark.parametrize(("change", "reason"), [
    ({"header": 0x6B}, Reason.HEADER),
    ({"format": 0x12}, Reason.FORMAT),
    ({"trailer": 0xBD}, Reason.TRAILER),
])
def test_forged_blocks_fail_by_header_format_trailer(chain, change, reason) -> None:
    """A block with a wrong header, format or trailer is refused for that reason."""
    ca = chain[0]
    with pytest.raises(OdaError) as info:
        recover_issuer_key(ca.public, _forge(ca, **change), b"", b"\x03", pan=MC_PAN, today="250101")
    assert info.value.reason is reason


def test_round_trip_of_a_whole_chain(chain) -> None:
    """Certificates and signatures the project issues recover with every check passing."""
    ca, issuer, icc = chain
    static = bytes.fromhex("5A0854133300890100125F24033012319F4A0182") + b"\x18\x80"
    cert90, rem92 = oda.issue_issuer_certificate(ca, issuer.public, issuer_identifier="541333",
                                                 expiry="1230", serial=b"\x00\x00\x01")
    got_issuer = recover_issuer_key(ca.public, cert90, rem92, issuer.public.exponent,
                                    pan="5413330089010012", today="250101")
    assert got_issuer.key == issuer.public
    cert46, rem48 = oda.issue_icc_certificate(issuer, icc.public, pan="5413330089010012", expiry="1230",
                                              serial=b"\x00\x00\x02", static_data=static)
    got_icc = recover_icc_key(issuer.public, cert46, rem48, icc.public.exponent, pan="5413330089010012",
                              static_data=static, today="250101")
    assert got_icc.key == icc.public and len(rem48) == 42
    ssad = oda.sign_static_data(issuer, b"\xDA\xC0", static)
    assert recover_static_data(issuer.public, ssad, static) == b"\xDA\xC0"
    th = oda.cda_transaction_hash(b"\x01", b"\x02", b"\x9F\x27\x01\x80")
    dd = oda.cda_dynamic_data(b"\x00\x07", b"\x80", bytes(range(8)), th)
    sdad = oda.sign_dynamic_data(icc, dd, b"\xCA\xFE\xBA\xBE")
    got = recover_cda(icc.public, sdad, unpredictable_number=b"\xCA\xFE\xBA\xBE", cid=b"\x80",
                      transaction_hash=th)
    assert (got.icc_dynamic_number, got.cryptogram) == (b"\x00\x07", bytes(range(8)))


def test_remainder_is_required_when_the_key_does_not_fit(chain) -> None:
    """An issuer key longer than N_CA - 36 needs its remainder (92); without it: key_length."""
    ca, issuer, _ = chain
    cert90, rem92 = oda.issue_issuer_certificate(ca, issuer.public, issuer_identifier="541333",
                                                 expiry="1230", serial=b"\x00\x00\x01")
    assert len(rem92) == 36
    with pytest.raises(OdaError) as info:
        recover_issuer_key(ca.public, cert90, b"", b"\x03", pan="5413330089010012", today="250101")
    assert info.value.reason is Reason.HASH   # the hash covers the remainder: it fails first


def test_unknown_algorithm_indicators_are_named(chain) -> None:
    """Hash algorithm 02 and key algorithm 02 are refused by name (Book 2 §5.3 step 11)."""
    ca, issuer, _ = chain
    cert90, rem92 = oda.issue_issuer_certificate(ca, issuer.public, issuer_identifier="541333",
                                                 expiry="1230", serial=b"\x00\x00\x01")
    block = bytearray(ca.public.recover(cert90))
    for index, reason in ((11, Reason.HASH_ALGORITHM), (12, Reason.KEY_ALGORITHM)):
        forged = bytearray(block)
        forged[index] = 0x02
        forged[-21:-1] = oda.block_hash(bytes(forged[1:-21]), rem92, b"\x03")
        with pytest.raises(OdaError) as info:
            recover_issuer_key(ca.public, ca.sign(bytes(forged)), rem92, b"\x03",
                               pan="5413330089010012", today="250101")
        assert info.value.reason is reason


def _openssl(args: list[str], data: bytes, tmp: Path) -> bytes:
    src = tmp / "in.bin"
    src.write_bytes(data)
    out = subprocess.run(["openssl", "pkeyutl", *args, "-pkeyopt", "rsa_padding_mode:none", "-in", str(src)],
                         capture_output=True, check=True)
    return out.stdout


def _public_pem(key: RsaPublicKey, tmp: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    pem = rsa.RSAPublicNumbers(key.e, key.n).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp / "pub.pem"
    path.write_bytes(pem)
    return path


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


@needs_openssl
@pytest.mark.parametrize(("key", "signature"), [
    (MC_CA, MC_ISSUER_CERT), (VISA_CA, VISA_ISSUER_CERT),
], ids=["mastercard-05", "visa-01"])
def test_recovery_agrees_with_openssl(key: RsaPublicKey, signature: bytes, tmp_path: Path) -> None:
    """Raw RSA recovery of the published certificates equals OpenSSL's, byte for byte."""
    pem = _public_pem(key, tmp_path)
    theirs = _openssl(["-verifyrecover", "-pubin", "-inkey", str(pem)], signature, tmp_path)
    assert key.recover(signature) == theirs


@needs_openssl
def test_signing_agrees_with_openssl(chain, tmp_path: Path) -> None:
    """A CRT signature of ours equals OpenSSL's raw private operation on the same block."""
    icc = chain[2]
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(icc.to_pem())
    block = b"\x6A\x05\x01\x03\x02\x00\x07" + b"\xBB" * (icc.length - 8) + b"\xBC"
    theirs = _openssl(["-decrypt", "-inkey", str(key_file)], block, tmp_path)   # raw c^d mod n
    assert icc.sign(block) == theirs
    assert RsaPrivateKey.from_pem(icc.to_pem()).sign(block) == theirs


def test_private_key_repr_hides_the_key(chain) -> None:
    """A private key's repr says only its size."""
    assert repr(chain[0]) == "RsaPrivateKey(<1024 bits>)"


def test_signing_refuses_blocks_of_the_wrong_size(chain) -> None:
    """Bytes that do not fill the modulus are an input error, not a silent pad."""
    with pytest.raises(InvalidInput):
        chain[0].sign(b"\x01")


# -- fuzzing ----------------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.one_of(st.binary(min_size=0, max_size=200), st.binary(min_size=176, max_size=176)))
def test_fuzz_any_bytes_fail_only_with_a_named_reason(data: bytes) -> None:
    """Random bytes as an issuer certificate never pass and never raise anything but OdaError."""
    with pytest.raises(OdaError) as info:
        recover_issuer_key(MC_CA, data, MC_ISSUER_REMAINDER, b"\x03", pan=MC_PAN, today="140101")
    assert isinstance(info.value.reason, Reason)


@settings(max_examples=200)
@given(st.integers(0, len(MC_ICC_CERT) - 1), st.integers(1, 255))
def test_fuzz_one_flipped_byte_is_always_caught(index: int, mask: int) -> None:
    """Any single-byte change of the published ICC certificate is refused."""
    cert = bytearray(MC_ICC_CERT)
    cert[index] ^= mask
    with pytest.raises(OdaError):
        recover_icc_key(_issuer().key, bytes(cert), b"", b"\x03", pan=MC_PAN,
                        static_data=MC_STATIC_DATA, today="140101")


# -- weak keys --------------------------------------------------------------------------------


def _roca_prime(bits: int, a: int, start: int) -> int:
    """A prime of the ROCA form k·M + (65537^a mod M), M the product of the fingerprint primes."""
    m = 1
    for p in rsa._ROCA_PRIMES:
        m *= p
    base = pow(65537, a, m)
    k = (1 << (bits - 1)) // m + start
    while True:
        candidate = k * m + base
        if all(pow(w, candidate - 1, candidate) == 1 for w in (2, 3, 5, 7, 11, 13)):
            return candidate
        k += 1


def test_roca_fingerprint_flags_the_weak_structure_only(chain) -> None:
    """A modulus made of ROCA-form primes is flagged; generated keys and the published CA keys are not."""
    n = _roca_prime(512, 12345, 1) * _roca_prime(512, 777, 99)
    assert rsa.roca_fingerprint(n.to_bytes((n.bit_length() + 7) // 8, "big"))
    assert not any(rsa.roca_fingerprint(k.public.modulus) for k in chain)
    assert not rsa.roca_fingerprint(MC05_MODULUS)
    assert not rsa.roca_fingerprint(VISA01_MODULUS)


def test_issuer_certificate_fields_are_frozen() -> None:
    """Recovered certificates are frozen values."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        _issuer().expiry = "0101"  # type: ignore[misc]
