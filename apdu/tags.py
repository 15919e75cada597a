"""The EMV data dictionary: one table of tags, and the bitmaps people need to read.

Sources: EMV 4.4 Book 3 Annex A (the data elements dictionary) with Book 1 Annex B and Book 4;
EMV Contactless Book A and B (Entry Point: TTQ, Kernel Identifier, Extended Selection);
EMV Contactless Book C-2 (Mastercard), C-3 (Visa), C-4 (American Express), C-6 (Discover);
the EMV Payment Tokenisation Specification (9F19, 9F24, 9F25); Visa VIS and VCPS for the
proprietary Visa data that contact cards still return.

:data:`TAGS` is one table of rows (:class:`TagInfo`). A tag whose meaning depends on the kernel
has one row per kernel (``kernel="visa"``, ``"mastercard"``, ``"amex"``, ``"discover"``);
:func:`lookup` prefers the row of the kernel asked for, then the generic row, then the first row
in table order. The pretty-printer (:func:`interpret`, :func:`explain_bits`) and the masking of
traces (:func:`is_sensitive`) both read this table.

>>> name(0x9F26)
'Application Cryptogram'
>>> lookup(0x9F6E, "mastercard").name
'Third Party Data'
>>> interpret(0x5F2A, bytes.fromhex("0978"))
'0978 EUR'
>>> explain_bits(0x82, bytes.fromhex("2000"))
['byte 1 bit 6: DDA supported']
>>> is_sensitive(0x5A), is_sensitive(0x5F24)
(True, False)

Nothing here raises on data: :func:`interpret` and :func:`explain_bits` read any bytes of any
length and fall back to hex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from apdu.cid import explain_cid
from apdu.currency import currency
from apdu.formats import decode_cn, n_digits

__all__ = [
    "AIDS",
    "BITMAPS",
    "COUNTRIES",
    "FIELD_55_TAGS",
    "TAGS",
    "AidInfo",
    "Bitmap",
    "TagInfo",
    "explain_bits",
    "format_of",
    "interpret",
    "is_sensitive",
    "kernel_for_aid",
    "lookup",
    "name",
    "scheme_of",
]


@dataclass(frozen=True, slots=True)
class TagInfo:
    """One row of the EMV data dictionary (EMV 4.4 Book 3 Annex A, Table 41 layout).

    ``format`` is one of ``b``, ``n``, ``cn``, ``a``, ``an``, ``ans`` (Book 3 §4.3);
    ``source`` is ``ICC``, ``Terminal`` or ``Issuer``; ``min_length`` and ``max_length`` count
    bytes of the value; ``constructed`` follows bit 6 of the first tag byte (Annex B1);
    ``sensitive`` marks cardholder data that traces mask (PAN, track data, names);
    ``kernel`` is ``None`` for a generic meaning or the kernel whose meaning this row gives;
    ``description`` says what the element is and cites where it is defined.
    """

    tag: int
    name: str
    format: str
    source: str
    min_length: int
    max_length: int
    constructed: bool
    sensitive: bool
    kernel: str | None
    description: str

    @property
    def tag_hex(self) -> str:
        """The tag as uppercase hex, e.g. ``"9F26"``."""
        return f"{self.tag:02X}" if self.tag <= 0xFF else f"{self.tag:X}"


_BOOK3 = "EMV 4.4 Book 3 Annex A"
_BOOKA = "EMV Contactless Book A §5.7"
_BOOKB = "EMV Contactless Book B"
_C2 = "EMV Contactless Book C-2 Annex A"
_C3 = "EMV Contactless Book C-3 Annex A"
_C4 = "EMV Contactless Book C-4"
_C6 = "EMV Contactless Book C-6"
_TOKENISATION = "EMV Payment Tokenisation Specification"
_VIS = "Visa Integrated Circuit Card Specification (VIS) 1.5 Appendix A"
_VCPS = "Visa Contactless Payment Specification (VCPS) 2.2"

_MC, _VISA, _AMEX, _DISC = "mastercard", "visa", "amex", "discover"

_SENSITIVE = frozenset({0x56, 0x57, 0x5A, 0x5F20, 0x9F0B, 0x9F1F, 0x9F20, 0x9F6B})

# (tag, name, format, source, min length, max length, kernel, cited source, description)
_ROWS: tuple[tuple[int, str, str, str, int, int, str | None, str, str], ...] = (
    (0x42, "Issuer Identification Number (IIN)", "n", "ICC", 3, 3, None, _BOOK3,
     "Leading digits of the PAN that identify the issuer"),
    (0x4F, "Application Identifier (AID) – card", "b", "ICC", 5, 16, None, _BOOK3,
     "RID and PIX of the application, as in ISO/IEC 7816-4"),
    (0x50, "Application Label", "ans", "ICC", 1, 16, None, _BOOK3,
     "Mnemonic of the application shown to the cardholder"),
    (0x52, "Command to Perform", "b", "Issuer", 0, 255, None, _BOOK3,
     "A command APDU inside an issuer script"),
    (0x56, "Track 1 Data", "ans", "ICC", 0, 76, None, _C2,
     "Track 1 of the magnetic stripe (ISO/IEC 7813 structure B) without sentinels and LRC"),
    (0x57, "Track 2 Equivalent Data", "b", "ICC", 0, 19, None, _BOOK3,
     "PAN, separator D, expiry YYMM, service code and discretionary data, F-padded"),
    (0x5A, "Application Primary Account Number (PAN)", "cn", "ICC", 0, 10, None, _BOOK3,
     "The account number, F-padded"),
    (0x61, "Application Template", "b", "ICC", 0, 252, None, _BOOK3,
     "One application entry of a directory (PSE/PPSE)"),
    (0x6F, "File Control Information (FCI) Template", "b", "ICC", 0, 252, None, _BOOK3,
     "Returned by SELECT"),
    (0x70, "READ RECORD Response Message Template", "b", "ICC", 0, 252, None, _BOOK3,
     "EMV proprietary template of a record"),
    (0x71, "Issuer Script Template 1", "b", "Issuer", 0, 255, None, _BOOK3,
     "Issuer script commands applied before the final GENERATE AC"),
    (0x72, "Issuer Script Template 2", "b", "Issuer", 0, 255, None, _BOOK3,
     "Issuer script commands applied after the final GENERATE AC"),
    (0x73, "Directory Discretionary Template", "b", "ICC", 0, 252, None, _BOOK3,
     "Issuer discretionary data of a directory entry"),
    (0x77, "Response Message Template Format 2", "b", "ICC", 0, 253, None, _BOOK3,
     "BER-TLV coded response of GPO, GENERATE AC, INTERNAL AUTHENTICATE"),
    (0x80, "Response Message Template Format 1", "b", "ICC", 0, 253, None, _BOOK3,
     "Fixed-layout response of GPO, GENERATE AC, INTERNAL AUTHENTICATE"),
    (0x81, "Amount, Authorised (Binary)", "b", "Terminal", 4, 4, None, _BOOK3,
     "Authorised amount as a binary number of minor units"),
    (0x82, "Application Interchange Profile (AIP)", "b", "ICC", 2, 2, None, _BOOK3,
     "Functions the application supports (Annex C1)"),
    (0x83, "Command Template", "b", "Terminal", 0, 255, None, _BOOK3,
     "Data field of GET PROCESSING OPTIONS"),
    (0x84, "Dedicated File (DF) Name", "b", "ICC", 5, 16, None, _BOOK3,
     "Name of the DF (AID or PPSE name) in the FCI"),
    (0x86, "Issuer Script Command", "b", "Issuer", 0, 261, None, _BOOK3,
     "A command of an issuer script"),
    (0x87, "Application Priority Indicator", "b", "ICC", 1, 1, None, _BOOK3,
     "Priority among applications and whether confirmation is required"),
    (0x88, "Short File Identifier (SFI)", "b", "ICC", 1, 1, None, _BOOK3,
     "SFI of the directory elementary file"),
    (0x89, "Authorisation Code", "ans", "Issuer", 6, 6, None, _BOOK3,
     "Code from the issuer for an approved transaction"),
    (0x8A, "Authorisation Response Code", "an", "Issuer", 2, 2, None, _BOOK3,
     "Disposition of the authorisation (issuer or terminal)"),
    (0x8C, "Card Risk Management Data Object List 1 (CDOL1)", "b", "ICC", 0, 252, None, _BOOK3,
     "Data the card wants in the first GENERATE AC"),
    (0x8D, "Card Risk Management Data Object List 2 (CDOL2)", "b", "ICC", 0, 252, None, _BOOK3,
     "Data the card wants in the second GENERATE AC"),
    (0x8E, "Cardholder Verification Method (CVM) List", "b", "ICC", 10, 252, None, _BOOK3,
     "Amounts X and Y and the CV Rules in order of preference (Annex C3)"),
    (0x8F, "Certification Authority Public Key Index", "b", "ICC", 1, 1, None, _BOOK3,
     "Which CA public key certifies the issuer key"),
    (0x90, "Issuer Public Key Certificate", "b", "ICC", 0, 248, None, _BOOK3,
     "Issuer public key signed by the certification authority"),
    (0x91, "Issuer Authentication Data", "b", "Issuer", 8, 16, None, _BOOK3,
     "ARPC and response code for issuer authentication"),
    (0x92, "Issuer Public Key Remainder", "b", "ICC", 0, 248, None, _BOOK3,
     "Part of the issuer key that does not fit in the certificate"),
    (0x93, "Signed Static Application Data", "b", "ICC", 0, 248, None, _BOOK3,
     "Issuer signature over static data, for SDA"),
    (0x94, "Application File Locator (AFL)", "b", "ICC", 0, 252, None, _BOOK3,
     "Files and records to read: SFI, first, last, records for ODA (§10.2)"),
    (0x95, "Terminal Verification Results (TVR)", "b", "Terminal", 5, 5, None, _BOOK3,
     "Status of the terminal's checks (Annex C5)"),
    (0x97, "Transaction Certificate Data Object List (TDOL)", "b", "ICC", 0, 252, None, _BOOK3,
     "Data for the TC Hash Value"),
    (0x98, "Transaction Certificate (TC) Hash Value", "b", "Terminal", 20, 20, None, _BOOK3,
     "SHA-1 of the TDOL data"),
    (0x99, "Transaction Personal Identification Number (PIN) Data", "b", "Terminal", 0, 255, None,
     _BOOK3, "Data entered by the cardholder for PIN verification"),
    (0x9A, "Transaction Date", "n", "Terminal", 3, 3, None, _BOOK3, "Local date, YYMMDD"),
    (0x9B, "Transaction Status Information (TSI)", "b", "Terminal", 2, 2, None, _BOOK3,
     "Functions the terminal performed (Annex C6)"),
    (0x9C, "Transaction Type", "n", "Terminal", 1, 1, None, _BOOK3,
     "First two digits of the ISO 8583 processing code (00 purchase, 01 cash, 09 cashback, 20 refund)"),
    (0x9D, "Directory Definition File (DDF) Name", "b", "ICC", 5, 16, None, _BOOK3,
     "Name of a DDF"),
    (0xA5, "File Control Information (FCI) Proprietary Template", "b", "ICC", 0, 252, None, _BOOK3,
     "EMV data inside the FCI"),
    (0x5F20, "Cardholder Name", "ans", "ICC", 2, 26, None, _BOOK3,
     "Name of the cardholder, as on track 1"),
    (0x5F24, "Application Expiration Date", "n", "ICC", 3, 3, None, _BOOK3,
     "Last day the application may be used, YYMMDD"),
    (0x5F25, "Application Effective Date", "n", "ICC", 3, 3, None, _BOOK3,
     "First day the application may be used, YYMMDD"),
    (0x5F28, "Issuer Country Code", "n", "ICC", 2, 2, None, _BOOK3,
     "Country of the issuer, ISO 3166-1 numeric"),
    (0x5F2A, "Transaction Currency Code", "n", "Terminal", 2, 2, None, _BOOK3,
     "Currency of the transaction, ISO 4217 numeric"),
    (0x5F2D, "Language Preference", "an", "ICC", 2, 8, None, _BOOK3,
     "One to four ISO 639-1 language codes in order of preference"),
    (0x5F30, "Service Code", "n", "ICC", 2, 2, None, _BOOK3,
     "Service code of the magnetic stripe (ISO/IEC 7813)"),
    (0x5F34, "Application PAN Sequence Number", "n", "ICC", 1, 1, None, _BOOK3,
     "Distinguishes cards with the same PAN"),
    (0x5F36, "Transaction Currency Exponent", "n", "Terminal", 1, 1, None, _BOOK3,
     "Position of the decimal point in the transaction amount"),
    (0x5F50, "Issuer URL", "ans", "ICC", 0, 255, None, _BOOK3, "Address of the issuer's server"),
    (0x5F53, "International Bank Account Number (IBAN)", "b", "ICC", 0, 34, None, _BOOK3,
     "IBAN of the account, ISO 13616"),
    (0x5F54, "Bank Identifier Code (BIC)", "b", "ICC", 8, 11, None, _BOOK3,
     "BIC of the issuer, ISO 9362"),
    (0x5F55, "Issuer Country Code (alpha2 format)", "a", "ICC", 2, 2, None, _BOOK3,
     "Country of the issuer, ISO 3166-1 alpha-2"),
    (0x5F56, "Issuer Country Code (alpha3 format)", "a", "ICC", 3, 3, None, _BOOK3,
     "Country of the issuer, ISO 3166-1 alpha-3"),
    (0x5F57, "Account Type", "n", "Terminal", 1, 1, None, _BOOK3,
     "Type of account chosen by the cardholder (00 default, 10 savings, 20 cheque, 30 credit)"),
    (0x9F01, "Acquirer Identifier", "n", "Terminal", 6, 6, None, _BOOK3, "Identifies the acquirer"),
    (0x9F02, "Amount, Authorised (Numeric)", "n", "Terminal", 6, 6, None, _BOOK3,
     "Authorised amount in minor units of the transaction currency"),
    (0x9F03, "Amount, Other (Numeric)", "n", "Terminal", 6, 6, None, _BOOK3,
     "Cashback amount in minor units"),
    (0x9F04, "Amount, Other (Binary)", "b", "Terminal", 4, 4, None, _BOOK3,
     "Cashback amount as a binary number"),
    (0x9F05, "Application Discretionary Data", "b", "ICC", 1, 32, None, _BOOK3,
     "Issuer or payment system data of the application"),
    (0x9F06, "Application Identifier (AID) – terminal", "b", "Terminal", 5, 16, None, _BOOK3,
     "An AID the terminal supports"),
    (0x9F07, "Application Usage Control (AUC)", "b", "ICC", 2, 2, None, _BOOK3,
     "Issuer restrictions on geography and services (Annex C2)"),
    (0x9F08, "Application Version Number (card)", "b", "ICC", 2, 2, None, _BOOK3,
     "Version of the application in the card"),
    (0x9F09, "Application Version Number (terminal)", "b", "Terminal", 2, 2, None, _BOOK3,
     "Version of the application in the terminal"),
    (0x9F0A, "Application Selection Registered Proprietary Data (ASRPD)", "b", "ICC", 0, 255, None,
     _BOOK3, "Registered proprietary data used during application selection (Book 1 §12.5)"),
    (0x9F0B, "Cardholder Name Extended", "ans", "ICC", 27, 45, None, _BOOK3,
     "Cardholder name when longer than 26 characters"),
    (0x9F0D, "Issuer Action Code – Default", "b", "ICC", 5, 5, None, _BOOK3,
     "TVR bits that make the terminal decline when it cannot go online"),
    (0x9F0E, "Issuer Action Code – Denial", "b", "ICC", 5, 5, None, _BOOK3,
     "TVR bits that make the terminal decline offline"),
    (0x9F0F, "Issuer Action Code – Online", "b", "ICC", 5, 5, None, _BOOK3,
     "TVR bits that make the terminal go online"),
    (0x9F10, "Issuer Application Data (IAD)", "b", "ICC", 0, 32, None, _BOOK3,
     "Proprietary data for the issuer: key index, CVN, CVR, counters"),
    (0x9F11, "Issuer Code Table Index", "n", "ICC", 1, 1, None, _BOOK3,
     "ISO/IEC 8859 part used for the Application Preferred Name"),
    (0x9F12, "Application Preferred Name", "ans", "ICC", 1, 16, None, _BOOK3,
     "Application name in the issuer's code table"),
    (0x9F13, "Last Online Application Transaction Counter (ATC) Register", "b", "ICC", 2, 2, None,
     _BOOK3, "ATC of the last transaction that went online"),
    (0x9F14, "Lower Consecutive Offline Limit", "b", "ICC", 1, 1, None, _BOOK3,
     "Offline transactions allowed before the terminal should go online"),
    (0x9F15, "Merchant Category Code", "n", "Terminal", 2, 2, None, _BOOK3,
     "ISO 18245 category of the merchant"),
    (0x9F16, "Merchant Identifier", "ans", "Terminal", 15, 15, None, _BOOK3,
     "Identifies the merchant to the acquirer"),
    (0x9F17, "PIN Try Counter", "b", "ICC", 1, 1, None, _BOOK3, "Offline PIN tries left"),
    (0x9F18, "Issuer Script Identifier", "b", "Issuer", 4, 4, None, _BOOK3,
     "Identifies an issuer script"),
    (0x9F19, "Token Requestor ID", "n", "ICC", 6, 6, None, _TOKENISATION,
     "Identifies the token requestor of a payment token"),
    (0x9F1A, "Terminal Country Code", "n", "Terminal", 2, 2, None, _BOOK3,
     "Country of the terminal, ISO 3166-1 numeric"),
    (0x9F1B, "Terminal Floor Limit", "b", "Terminal", 4, 4, None, _BOOK3,
     "Amount above which the terminal goes online"),
    (0x9F1C, "Terminal Identification", "an", "Terminal", 8, 8, None, _BOOK3,
     "Identifies the terminal at the acquirer"),
    (0x9F1D, "Terminal Risk Management Data", "b", "Terminal", 1, 8, None, _BOOK3,
     "Terminal data for the card's risk management"),
    (0x9F1E, "Interface Device (IFD) Serial Number", "an", "Terminal", 8, 8, None, _BOOK3,
     "Serial number of the reader"),
    (0x9F1F, "Track 1 Discretionary Data", "ans", "ICC", 0, 255, None, _BOOK3,
     "Discretionary part of track 1"),
    (0x9F20, "Track 2 Discretionary Data", "cn", "ICC", 0, 255, None, _BOOK3,
     "Discretionary part of track 2"),
    (0x9F21, "Transaction Time", "n", "Terminal", 3, 3, None, _BOOK3, "Local time, HHMMSS"),
    (0x9F22, "Certification Authority Public Key Index (terminal)", "b", "Terminal", 1, 1, None,
     _BOOK3, "CA public key index held by the terminal"),
    (0x9F23, "Upper Consecutive Offline Limit", "b", "ICC", 1, 1, None, _BOOK3,
     "Offline transactions allowed before the card must go online"),
    (0x9F24, "Payment Account Reference (PAR)", "an", "ICC", 29, 29, None, _TOKENISATION,
     "Reference that links a PAN and its tokens without being either"),
    (0x9F25, "Last 4 Digits of PAN", "n", "ICC", 2, 2, None, _TOKENISATION,
     "Last four digits of the funding PAN of a token"),
    (0x9F26, "Application Cryptogram", "b", "ICC", 8, 8, None, _BOOK3,
     "ARQC, TC or AAC returned by GENERATE AC (or GPO in qVSDC)"),
    (0x9F27, "Cryptogram Information Data (CID)", "b", "ICC", 1, 1, None, _BOOK3,
     "Type of the cryptogram and advice (§6.5.5.4, Table 15)"),
    (0x9F29, "Extended Selection", "b", "ICC", 0, 11, None, _BOOKB,
     "Appended to the AID in SELECT by Entry Point"),
    (0x9F2A, "Kernel Identifier", "b", "ICC", 1, 8, None, _BOOKB,
     "Kernel the card asks Entry Point to use"),
    (0x9F2D, "ICC PIN Encipherment Public Key Certificate", "b", "ICC", 0, 248, None, _BOOK3,
     "Certificate of the key that enciphers offline PINs"),
    (0x9F2E, "ICC PIN Encipherment Public Key Exponent", "b", "ICC", 1, 3, None, _BOOK3,
     "Exponent of the PIN encipherment key"),
    (0x9F2F, "ICC PIN Encipherment Public Key Remainder", "b", "ICC", 0, 248, None, _BOOK3,
     "Remainder of the PIN encipherment key"),
    (0x9F32, "Issuer Public Key Exponent", "b", "ICC", 1, 3, None, _BOOK3,
     "Exponent of the issuer public key"),
    (0x9F33, "Terminal Capabilities", "b", "Terminal", 3, 3, None, _BOOK3,
     "Card data input, CVM and security capabilities (Book 4 Annex A2)"),
    (0x9F34, "Cardholder Verification Method (CVM) Results", "b", "Terminal", 3, 3, None, _BOOK3,
     "Method performed, its condition and its result (Book 4 Annex A4)"),
    (0x9F35, "Terminal Type", "n", "Terminal", 1, 1, None, _BOOK3,
     "Environment, operator and communication of the terminal (Book 4 Annex A1)"),
    (0x9F36, "Application Transaction Counter (ATC)", "b", "ICC", 2, 2, None, _BOOK3,
     "Counter of transactions, kept by the card"),
    (0x9F37, "Unpredictable Number", "b", "Terminal", 4, 4, None, _BOOK3,
     "Terminal nonce for the cryptogram"),
    (0x9F38, "Processing Options Data Object List (PDOL)", "b", "ICC", 0, 252, None, _BOOK3,
     "Data the card wants in GET PROCESSING OPTIONS"),
    (0x9F39, "Point-of-Service (POS) Entry Mode", "n", "Terminal", 1, 1, None, _BOOK3,
     "How the PAN was read (ISO 8583 field 22 first digits; 07 contactless chip)"),
    (0x9F3A, "Amount, Reference Currency", "b", "Terminal", 4, 4, None, _BOOK3,
     "Authorised amount in the reference currency"),
    (0x9F3B, "Application Reference Currency", "n", "ICC", 2, 8, None, _BOOK3,
     "One to four reference currencies, ISO 4217 numeric"),
    (0x9F3C, "Transaction Reference Currency Code", "n", "Terminal", 2, 2, None, _BOOK3,
     "Reference currency of the transaction"),
    (0x9F3D, "Transaction Reference Currency Exponent", "n", "Terminal", 1, 1, None, _BOOK3,
     "Exponent of the reference currency"),
    (0x9F40, "Additional Terminal Capabilities", "b", "Terminal", 5, 5, None, _BOOK3,
     "Transaction types, data input and output of the terminal (Book 4 Annex A3)"),
    (0x9F41, "Transaction Sequence Counter", "n", "Terminal", 2, 4, None, _BOOK3,
     "Counter of transactions, kept by the terminal"),
    (0x9F42, "Application Currency Code", "n", "ICC", 2, 2, None, _BOOK3,
     "Currency of the account, ISO 4217 numeric"),
    (0x9F43, "Application Reference Currency Exponent", "n", "ICC", 1, 4, None, _BOOK3,
     "Exponents of the reference currencies"),
    (0x9F44, "Application Currency Exponent", "n", "ICC", 1, 1, None, _BOOK3,
     "Exponent of the application currency"),
    (0x9F45, "Data Authentication Code", "b", "ICC", 2, 2, None, _BOOK3,
     "Issuer code recovered during SDA"),
    (0x9F46, "ICC Public Key Certificate", "b", "ICC", 0, 248, None, _BOOK3,
     "Card public key signed by the issuer"),
    (0x9F47, "ICC Public Key Exponent", "b", "ICC", 1, 3, None, _BOOK3,
     "Exponent of the card public key"),
    (0x9F48, "ICC Public Key Remainder", "b", "ICC", 0, 248, None, _BOOK3,
     "Remainder of the card public key"),
    (0x9F49, "Dynamic Data Authentication Data Object List (DDOL)", "b", "ICC", 0, 252, None,
     _BOOK3, "Data the card wants in INTERNAL AUTHENTICATE"),
    (0x9F4A, "Static Data Authentication Tag List", "b", "ICC", 0, 252, None, _BOOK3,
     "Tags whose values join the static data to authenticate"),
    (0x9F4B, "Signed Dynamic Application Data", "b", "ICC", 0, 248, None, _BOOK3,
     "Card signature for DDA or CDA"),
    (0x9F4C, "ICC Dynamic Number", "b", "ICC", 2, 8, None, _BOOK3,
     "Card nonce inside the signed dynamic data"),
    (0x9F4D, "Log Entry", "b", "ICC", 2, 2, None, _BOOK3,
     "SFI and number of records of the transaction log"),
    (0x9F4E, "Merchant Name and Location", "ans", "Terminal", 0, 255, None, _BOOK3,
     "Name and location of the merchant"),
    (0x9F4F, "Log Format", "b", "ICC", 0, 255, None, _BOOK3,
     "DOL that describes the records of the transaction log"),
    (0x9F66, "Terminal Transaction Qualifiers (TTQ)", "b", "Terminal", 4, 4, None, _BOOKA,
     "Reader capabilities and requirements for this transaction (Kernels 3, 6, 7)"),
    (0x9F6B, "Track 2 Data", "b", "ICC", 0, 19, None, _C2,
     "Track 2 for mag-stripe mode, before the reader inserts CVC3 and UN"),
    (0xBF0C, "File Control Information (FCI) Issuer Discretionary Data", "b", "ICC", 0, 222, None,
     _BOOK3, "Issuer data in the FCI; in a PPSE, the directory entries"),
    # Visa: EMV Contactless Book C-3, VCPS, VIS
    (0x9F6C, "Card Transaction Qualifiers (CTQ)", "b", "ICC", 2, 2, _VISA, _C3,
     "Card requirements on CVM and interface (Annex A.2)"),
    (0x9F6E, "Form Factor Indicator (FFI)", "b", "ICC", 4, 4, _VISA, _C3,
     "Form factor and features of the consumer device"),
    (0x9F7C, "Customer Exclusive Data (CED)", "b", "ICC", 0, 32, _VISA, _C3,
     "Issuer data passed to the issuer in the authorisation"),
    (0x9F5D, "Available Offline Spending Amount (AOSA)", "n", "ICC", 6, 6, _VISA, _C3,
     "Offline spending left on the card"),
    (0x9F69, "Card Authentication Related Data", "b", "ICC", 5, 16, _VISA, _C3,
     "fDDA version, card unpredictable number and CTQ, signed in fDDA"),
    (0x9F5A, "Application Program Identifier (Program ID)", "b", "ICC", 1, 16, _VISA, _C3,
     "Selects reader limits per issuer program"),
    (0x9F68, "Card Additional Processes", "b", "ICC", 4, 4, _VISA, _VCPS,
     "Card processing requirements and preferences for contactless"),
    (0x9F6B, "Card CVM Limit", "n", "ICC", 6, 6, _VISA, _VCPS,
     "Amount above which the card asks for a CVM"),
    (0x9F6D, "VLP Reset Threshold", "n", "ICC", 6, 6, _VISA, _VIS,
     "Low-value payment funds below which an online reset is wanted"),
    (0x9F5B, "Issuer Script Results", "b", "Terminal", 0, 255, _VISA, _VIS,
     "Results of issuer script processing, sent to the issuer"),
    (0x9F51, "Application Currency Code", "n", "ICC", 2, 2, _VISA, _VIS,
     "Currency of the Visa offline counters"),
    (0x9F52, "Application Default Action (ADA)", "b", "ICC", 2, 2, _VISA, _VIS,
     "Issuer choices for when issuer authentication fails or is not performed"),
    (0x9F53, "Consecutive Transaction Limit (International)", "b", "ICC", 1, 1, _VISA, _VIS,
     "Offline international transactions allowed"),
    (0x9F54, "Cumulative Total Transaction Amount Limit (CTTAL)", "n", "ICC", 6, 6, _VISA, _VIS,
     "Offline amount allowed before going online"),
    (0x9F55, "Geographic Indicator", "b", "ICC", 1, 1, _VISA, _VIS,
     "Which countries count as domestic"),
    (0x9F56, "Issuer Authentication Indicator", "b", "ICC", 1, 1, _VISA, _VIS,
     "Whether issuer authentication is mandatory"),
    (0x9F57, "Issuer Country Code", "n", "ICC", 2, 2, _VISA, _VIS,
     "Issuer country for the Visa offline counters"),
    (0x9F58, "Lower Consecutive Offline Limit (Card Check)", "b", "ICC", 1, 1, _VISA, _VIS,
     "Lower offline limit checked by the card"),
    (0x9F59, "Upper Consecutive Offline Limit (Card Check)", "b", "ICC", 1, 1, _VISA, _VIS,
     "Upper offline limit checked by the card"),
    (0x9F5C, "Cumulative Total Transaction Amount Upper Limit (CTTAUL)", "n", "ICC", 6, 6, _VISA,
     _VIS, "Offline amount above which the card declines offline"),
    (0x9F5E, "Consecutive Transaction International Upper Limit (CTIUL)", "b", "ICC", 1, 1, _VISA,
     _VIS, "Upper limit of offline international transactions"),
    (0x9F72, "Consecutive Transaction Limit (International – Country)", "b", "ICC", 1, 1, _VISA,
     _VIS, "Offline transactions outside the issuer country"),
    (0x9F73, "Currency Conversion Factor", "b", "ICC", 4, 4, _VISA, _VIS,
     "Rate to convert the secondary currency into the application currency"),
    (0x9F74, "VLP Issuer Authorisation Code", "a", "ICC", 6, 6, _VISA, _VIS,
     "Authorisation code of an offline low-value payment"),
    (0x9F75, "Cumulative Total Transaction Amount Limit – Dual Currency", "n", "ICC", 6, 6, _VISA,
     _VIS, "Offline amount limit in both currencies"),
    (0x9F76, "Secondary Application Currency Code", "n", "ICC", 2, 2, _VISA, _VIS,
     "Second currency counted in the offline totals"),
    (0x9F77, "VLP Funds Limit", "n", "ICC", 6, 6, _VISA, _VIS, "Low-value payment funds limit"),
    (0x9F78, "VLP Single Transaction Limit", "n", "ICC", 6, 6, _VISA, _VIS,
     "Largest low-value payment allowed"),
    (0x9F79, "VLP Available Funds", "n", "ICC", 6, 6, _VISA, _VIS,
     "Low-value payment funds left"),
    (0x9F7A, "VLP Terminal Support Indicator", "b", "Terminal", 1, 1, _VISA, _VIS,
     "Whether the terminal supports low-value payments"),
    (0x9F7B, "VLP Terminal Transaction Limit", "n", "Terminal", 6, 6, _VISA, _VIS,
     "Terminal limit for low-value payments"),
    (0x9F7F, "Card Production Life Cycle (CPLC) Data", "b", "ICC", 0, 45, _VISA, _VIS,
     "Chip and personalisation history, read with GET DATA"),
    # Mastercard: EMV Contactless Book C-2
    (0x9F50, "Offline Accumulator Balance", "n", "ICC", 6, 6, _MC, _C2,
     "Balance of the offline accumulator"),
    (0x9F51, "DRDOL", "b", "ICC", 0, 252, _MC, _C2,
     "Data the card wants in the relay resistance and balance reading"),
    (0x9F53, "Transaction Category Code", "an", "Terminal", 1, 1, _MC, _C2,
     "Type of merchant transaction (e.g. R retail, H hotel)"),
    (0x9F54, "DS ODS Card", "b", "ICC", 0, 160, _MC, _C2, "Operator data of the data storage slot"),
    (0x9F5B, "DSDOL", "b", "ICC", 0, 252, _MC, _C2, "Data storage data object list"),
    (0x9F5C, "DS Requested Operator ID", "b", "Terminal", 8, 8, _MC, _C2,
     "Operator whose data storage slot the reader asks for"),
    (0x9F5D, "Application Capabilities Information", "b", "ICC", 3, 3, _MC, _C2,
     "Card features beyond payment: data storage version, support for fields"),
    (0x9F5E, "DS ID", "b", "ICC", 8, 11, _MC, _C2, "Identifier of the card's data storage"),
    (0x9F5F, "DS Slot Availability", "b", "ICC", 1, 1, _MC, _C2,
     "Whether a data storage slot is free"),
    (0x9F60, "CVC3 (Track1)", "b", "ICC", 2, 2, _MC, _C2, "Dynamic CVC for track 1"),
    (0x9F61, "CVC3 (Track2)", "b", "ICC", 2, 2, _MC, _C2, "Dynamic CVC for track 2"),
    (0x9F62, "PCVC3 (Track1)", "b", "ICC", 6, 6, _MC, _C2,
     "Bitmap of where CVC3 goes in track 1 discretionary data"),
    (0x9F63, "PUNATC (Track1)", "b", "ICC", 6, 6, _MC, _C2,
     "Bitmap of where UN and ATC go in track 1 discretionary data"),
    (0x9F64, "NATC (Track1)", "b", "ICC", 1, 1, _MC, _C2,
     "Number of ATC digits in track 1 discretionary data"),
    (0x9F65, "PCVC3 (Track2)", "b", "ICC", 2, 2, _MC, _C2,
     "Bitmap of where CVC3 goes in track 2 discretionary data"),
    (0x9F66, "PUNATC (Track2)", "b", "ICC", 2, 2, _MC, _C2,
     "Bitmap of where UN and ATC go in track 2 discretionary data"),
    (0x9F67, "NATC (Track2)", "b", "ICC", 1, 1, _MC, _C2,
     "Number of ATC digits in track 2 discretionary data"),
    (0x9F68, "Mag-stripe CVM List", "b", "ICC", 10, 32, _MC, _C2,
     "CVM list the card gives for mag-stripe mode: amounts X and Y, then CV rules"),
    (0x9F69, "UDOL", "b", "ICC", 0, 252, _MC, _C2,
     "Data the card wants in COMPUTE CRYPTOGRAPHIC CHECKSUM"),
    (0x9F6A, "Unpredictable Number (Numeric)", "n", "Terminal", 4, 4, _MC, _C2,
     "Reader nonce for mag-stripe mode"),
    (0x9F6C, "Mag-stripe Application Version Number (Card)", "b", "ICC", 2, 2, _MC, _C2,
     "Version of the card's mag-stripe application"),
    (0x9F6D, "Mag-stripe Application Version Number (Reader)", "b", "Terminal", 2, 2, _MC, _C2,
     "Version of the reader's mag-stripe application"),
    (0x9F6E, "Third Party Data", "b", "ICC", 5, 32, _MC, _C2,
     "Country, unique identifier, device type and proprietary data of a third party"),
    (0x9F6F, "DS Slot Management Control", "b", "ICC", 1, 1, _MC, _C2,
     "Status of the slot of the requested operator"),
    (0x9F70, "Protected Data Envelope 1", "b", "ICC", 0, 192, _MC, _C2,
     "Issuer data, writable only with the issuer's authority"),
    (0x9F71, "Protected Data Envelope 2", "b", "ICC", 0, 192, _MC, _C2, "As Protected Data Envelope 1"),
    (0x9F72, "Protected Data Envelope 3", "b", "ICC", 0, 192, _MC, _C2, "As Protected Data Envelope 1"),
    (0x9F73, "Protected Data Envelope 4", "b", "ICC", 0, 192, _MC, _C2, "As Protected Data Envelope 1"),
    (0x9F74, "Protected Data Envelope 5", "b", "ICC", 0, 192, _MC, _C2, "As Protected Data Envelope 1"),
    (0x9F75, "Unprotected Data Envelope 1", "b", "ICC", 0, 192, _MC, _C2,
     "Data the reader may write with PUT DATA"),
    (0x9F76, "Unprotected Data Envelope 2", "b", "ICC", 0, 192, _MC, _C2, "As Unprotected Data Envelope 1"),
    (0x9F77, "Unprotected Data Envelope 3", "b", "ICC", 0, 192, _MC, _C2, "As Unprotected Data Envelope 1"),
    (0x9F78, "Unprotected Data Envelope 4", "b", "ICC", 0, 192, _MC, _C2, "As Unprotected Data Envelope 1"),
    (0x9F79, "Unprotected Data Envelope 5", "b", "ICC", 0, 192, _MC, _C2, "As Unprotected Data Envelope 1"),
    (0x9F7C, "Merchant Custom Data", "b", "Terminal", 20, 20, _MC, _C2,
     "Merchant data passed to the card"),
    (0x9F7D, "DS Summary 1", "b", "ICC", 8, 16, _MC, _C2,
     "Digest of the data storage before the transaction"),
    (0x9F7E, "Mobile Support Indicator", "b", "Terminal", 1, 1, _MC, _C2,
     "Whether the reader supports mobile devices and on-device CVM"),
    (0x9F7F, "DS Unpredictable Number", "b", "Terminal", 4, 4, _MC, _C2, "Nonce for data storage"),
    (0xDF4B, "POS Cardholder Interaction Information", "b", "ICC", 3, 3, _MC, _C2,
     "What the cardholder must do on the device (e.g. authenticate and tap again)"),
    (0xDF60, "DS Input (Card)", "b", "Terminal", 8, 8, _MC, _C2, "Input to the data storage digest"),
    (0xDF61, "DS Digest H", "b", "Terminal", 8, 8, _MC, _C2, "Digest over the data storage input"),
    (0xDF62, "DS ODS Info", "b", "Terminal", 1, 1, _MC, _C2, "How the reader writes operator data"),
    (0xDF63, "DS ODS Term", "b", "Terminal", 0, 160, _MC, _C2, "Operator data the reader writes"),
    (0xDF8101, "DS Summary 2", "b", "ICC", 8, 16, _MC, _C2, "Digest of the data storage, signed"),
    (0xDF8102, "DS Summary 3", "b", "ICC", 8, 16, _MC, _C2,
     "Digest of the data storage after the transaction"),
    (0xDF8104, "Balance Read Before Gen AC", "n", "ICC", 6, 6, _MC, _C2,
     "Offline balance read before GENERATE AC"),
    (0xDF8105, "Balance Read After Gen AC", "n", "ICC", 6, 6, _MC, _C2,
     "Offline balance read after GENERATE AC"),
    (0xDF8106, "Data Needed", "b", "Terminal", 0, 255, _MC, _C2, "Tags the kernel asks the terminal for"),
    (0xDF8107, "CDOL1 Related Data", "b", "Terminal", 0, 255, _MC, _C2, "Data sent in GENERATE AC"),
    (0xDF8108, "DS AC Type", "b", "Terminal", 1, 1, _MC, _C2, "AC type needed for data storage"),
    (0xDF8109, "DS Input (Term)", "b", "Terminal", 8, 8, _MC, _C2, "Terminal input to data storage"),
    (0xDF810A, "DS ODS Info For Reader", "b", "Terminal", 1, 1, _MC, _C2,
     "Reader's data storage instructions"),
    (0xDF810B, "DS Summary Status", "b", "Terminal", 1, 1, _MC, _C2,
     "Whether the data storage digests match"),
    (0xDF810C, "Kernel ID", "b", "Terminal", 1, 1, _MC, _C2, "Identifier of the kernel (2 for C-2)"),
    (0xDF810D, "DSVN Term", "b", "Terminal", 0, 255, _MC, _C2, "Data storage versions the reader supports"),
    (0xDF810E, "Post-Gen AC Put Data Status", "b", "Terminal", 1, 1, _MC, _C2,
     "Whether PUT DATA after GENERATE AC succeeded"),
    (0xDF810F, "Pre-Gen AC Put Data Status", "b", "Terminal", 1, 1, _MC, _C2,
     "Whether PUT DATA before GENERATE AC succeeded"),
    (0xDF8110, "Proceed To First Write Flag", "b", "Terminal", 1, 1, _MC, _C2,
     "Whether the kernel may proceed to the first write"),
    (0xDF8111, "PDOL Related Data", "b", "Terminal", 0, 255, _MC, _C2, "Data sent in GET PROCESSING OPTIONS"),
    (0xDF8112, "Tags To Read", "b", "Terminal", 0, 255, _MC, _C2,
     "Tags the terminal wants read from the card"),
    (0xDF8113, "DRDOL Related Data", "b", "Terminal", 0, 255, _MC, _C2, "Data built from the DRDOL"),
    (0xDF8114, "Reference Control Parameter", "b", "Terminal", 1, 1, _MC, _C2, "P1 of GENERATE AC"),
    (0xDF8115, "Error Indication", "b", "Terminal", 6, 6, _MC, _C2, "Why the kernel stopped"),
    (0xDF8116, "User Interface Request Data", "b", "Terminal", 22, 22, _MC, _C2,
     "Message, status, hold time, language and amount to display"),
    (0xDF8117, "Card Data Input Capability", "b", "Terminal", 1, 1, _MC, _C2,
     "Byte 1 of Terminal Capabilities for this kernel"),
    (0xDF8118, "CVM Capability – CVM Required", "b", "Terminal", 1, 1, _MC, _C2,
     "Byte 2 of Terminal Capabilities above the CVM required limit"),
    (0xDF8119, "CVM Capability – No CVM Required", "b", "Terminal", 1, 1, _MC, _C2,
     "Byte 2 of Terminal Capabilities below the CVM required limit"),
    (0xDF811A, "Default UDOL", "b", "Terminal", 3, 3, _MC, _C2, "UDOL used when the card has none"),
    (0xDF811B, "Kernel Configuration", "b", "Terminal", 1, 1, _MC, _C2,
     "Modes and options of the kernel (mag-stripe, EMV, on-device CVM, relay resistance)"),
    (0xDF811C, "Max Lifetime of Torn Transaction Log Record", "b", "Terminal", 2, 2, _MC, _C2,
     "Seconds a torn record is kept"),
    (0xDF811D, "Max Number of Torn Transaction Log Records", "b", "Terminal", 1, 1, _MC, _C2,
     "Size of the torn transaction log"),
    (0xDF811E, "Mag-stripe CVM Capability – CVM Required", "b", "Terminal", 1, 1, _MC, _C2,
     "CVM capability in mag-stripe mode above the CVM required limit"),
    (0xDF811F, "Security Capability", "b", "Terminal", 1, 1, _MC, _C2,
     "Byte 3 of Terminal Capabilities for this kernel"),
    (0xDF8120, "Terminal Action Code – Default", "b", "Terminal", 5, 5, _MC, _C2,
     "TVR bits that decline when online is not possible"),
    (0xDF8121, "Terminal Action Code – Denial", "b", "Terminal", 5, 5, _MC, _C2,
     "TVR bits that decline offline"),
    (0xDF8122, "Terminal Action Code – Online", "b", "Terminal", 5, 5, _MC, _C2,
     "TVR bits that send the transaction online"),
    (0xDF8123, "Reader Contactless Floor Limit", "n", "Terminal", 6, 6, _MC, _C2,
     "Amount above which the reader goes online"),
    (0xDF8124, "Reader Contactless Transaction Limit (No On-device CVM)", "n", "Terminal", 6, 6, _MC,
     _C2, "Largest amount without on-device CVM"),
    (0xDF8125, "Reader Contactless Transaction Limit (On-device CVM)", "n", "Terminal", 6, 6, _MC,
     _C2, "Largest amount with on-device CVM"),
    (0xDF8126, "Reader CVM Required Limit", "n", "Terminal", 6, 6, _MC, _C2,
     "Amount above which a CVM is required"),
    (0xDF8127, "Time Out Value", "b", "Terminal", 2, 2, _MC, _C2, "Milliseconds the kernel waits for data"),
    (0xDF8128, "IDS Status", "b", "Terminal", 1, 1, _MC, _C2, "Whether data storage is read or written"),
    (0xDF8129, "Outcome Parameter Set", "b", "Terminal", 8, 8, _MC, _C2,
     "Outcome of the kernel to Entry Point"),
    (0xDF812A, "DD Card (Track1)", "ans", "Terminal", 0, 56, _MC, _C2,
     "Track 1 discretionary data built by the kernel"),
    (0xDF812B, "DD Card (Track2)", "b", "Terminal", 0, 8, _MC, _C2,
     "Track 2 discretionary data built by the kernel"),
    (0xDF812C, "Mag-stripe CVM Capability – No CVM Required", "b", "Terminal", 1, 1, _MC, _C2,
     "CVM capability in mag-stripe mode below the CVM required limit"),
    (0xDF812D, "Message Hold Time", "n", "Terminal", 3, 3, _MC, _C2, "Hundreds of ms a message stays shown"),
    (0xDF8130, "Hold Time Value", "b", "Terminal", 1, 1, _MC, _C2,
     "Hundreds of ms the field stays off after an on-device CVM request"),
    (0xDF8131, "Phone Message Table", "b", "Terminal", 0, 255, _MC, _C2,
     "Messages to show for the POS Cardholder Interaction Information"),
    (0xDF8132, "Minimum Relay Resistance Grace Period", "b", "Terminal", 2, 2, _MC, _C2,
     "Relay resistance: minimum grace period, hundreds of µs"),
    (0xDF8133, "Maximum Relay Resistance Grace Period", "b", "Terminal", 2, 2, _MC, _C2,
     "Relay resistance: maximum grace period, hundreds of µs"),
    (0xDF8134, "Terminal Expected Transmission Time For Relay Resistance C-APDU", "b", "Terminal", 2,
     2, _MC, _C2, "Relay resistance: expected command time"),
    (0xDF8135, "Terminal Expected Transmission Time For Relay Resistance R-APDU", "b", "Terminal", 2,
     2, _MC, _C2, "Relay resistance: expected response time"),
    (0xDF8136, "Relay Resistance Accuracy Threshold", "b", "Terminal", 2, 2, _MC, _C2,
     "Relay resistance: accepted measurement error"),
    (0xDF8137, "Relay Resistance Transmission Time Mismatch Threshold", "b", "Terminal", 1, 1, _MC,
     _C2, "Relay resistance: accepted mismatch, percent"),
    (0xDF8301, "Terminal Relay Resistance Entropy", "b", "Terminal", 4, 4, _MC, _C2,
     "Reader nonce of EXCHANGE RELAY RESISTANCE DATA"),
    (0xDF8302, "Device Relay Resistance Entropy", "b", "ICC", 4, 4, _MC, _C2,
     "Card nonce of EXCHANGE RELAY RESISTANCE DATA"),
    (0xDF8303, "Min Time For Processing Relay Resistance APDU", "b", "ICC", 2, 2, _MC, _C2,
     "Card's minimum processing time"),
    (0xDF8304, "Max Time For Processing Relay Resistance APDU", "b", "ICC", 2, 2, _MC, _C2,
     "Card's maximum processing time"),
    (0xDF8305, "Device Estimated Transmission Time For Relay Resistance R-APDU", "b", "ICC", 2, 2,
     _MC, _C2, "Card's estimate of the response time"),
    (0xDF8306, "Measured Relay Resistance Processing Time", "b", "Terminal", 2, 2, _MC, _C2,
     "Time the reader measured"),
    (0xDF8307, "RRP Counter", "b", "Terminal", 1, 1, _MC, _C2, "Relay resistance attempts made"),
    (0xFF8101, "Torn Record", "b", "Terminal", 0, 255, _MC, _C2, "Data of a torn transaction"),
    (0xFF8102, "Tags To Write Before Gen AC", "b", "Terminal", 0, 255, _MC, _C2,
     "Data the terminal writes before GENERATE AC"),
    (0xFF8103, "Tags To Write After Gen AC", "b", "Terminal", 0, 255, _MC, _C2,
     "Data the terminal writes after GENERATE AC"),
    (0xFF8104, "Data To Send", "b", "Terminal", 0, 255, _MC, _C2, "Data the kernel sends to the terminal"),
    (0xFF8105, "Data Record", "b", "Terminal", 0, 255, _MC, _C2, "Data for the authorisation or clearing"),
    (0xFF8106, "Discretionary Data", "b", "Terminal", 0, 255, _MC, _C2, "Additional kernel output"),
    # American Express: EMV Contactless Book C-4
    (0x9F6D, "Contactless Reader Capabilities", "b", "Terminal", 1, 1, _AMEX, _C4 + " §4.3.3",
     "Reader kind: mag-stripe only, EMV and mag-stripe, EMV only"),
    (0x9F6E, "Enhanced Contactless Reader Capabilities", "b", "Terminal", 4, 4, _AMEX,
     _C4 + " §4.3.4", "Interfaces, CVMs and options of the reader"),
    (0x9F70, "Card Interface and Payment Capabilities", "b", "ICC", 2, 2, _AMEX, _C4,
     "Interfaces and payment features the card supports"),
    (0x9F71, "Mobile CVM Results", "b", "ICC", 3, 3, _AMEX, _C4,
     "CVM performed on the mobile device and its result"),
    # Discover: EMV Contactless Book C-6
    (0x9F71, "Card Processing Requirements (CPR)", "b", "ICC", 2, 2, _DISC, _C6,
     "Card requirements on CVM, interface and online processing"),
    (0xDF3C, "Extended Logging Data", "b", "Terminal", 1, 32, _DISC, _C6,
     "Terminal data the card logs"),
)


def _info(raw: tuple[int, str, str, str, int, int, str | None, str, str]) -> TagInfo:
    tag, label, fmt, src, lo, hi, kernel, cite, text = raw
    first = tag >> (8 * ((tag.bit_length() - 1) // 8))
    return TagInfo(
        tag=tag,
        name=label,
        format=fmt,
        source=src,
        min_length=lo,
        max_length=hi,
        constructed=bool(first & 0x20),
        sensitive=tag in _SENSITIVE and kernel is None,
        kernel=kernel,
        description=f"{text} ({cite})",
    )


# The index is built from the raw rows at import; a row becomes a TagInfo when first looked up
# (and every row when TAGS is first read), so that importing the dictionary costs little.
_BY_KEY: dict[tuple[int, str | None], int] = {}
_FIRST: dict[int, int] = {}
for _index, _raw in enumerate(_ROWS):
    _BY_KEY.setdefault((_raw[0], _raw[6]), _index)
    _FIRST.setdefault(_raw[0], _index)
_SENSITIVE_TAGS = frozenset(raw[0] for raw in _ROWS if raw[0] in _SENSITIVE and raw[6] is None)
_MADE: dict[int, TagInfo] = {}

_KERNELS = frozenset(raw[6] for raw in _ROWS if raw[6] is not None)

def _row(index: int | None) -> TagInfo | None:
    if index is None:
        return None
    info = _MADE.get(index)
    if info is None:
        info = _MADE[index] = _info(_ROWS[index])
    return info


if TYPE_CHECKING:
    TAGS: tuple[TagInfo, ...]
    """Every row of the dictionary, in table order (generic meanings first, then per kernel)."""


def __getattr__(name: str) -> Any:
    """``TAGS``, made on first use (PEP 562): the same :class:`TagInfo` objects :func:`lookup` returns."""
    if name != "TAGS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    rows = tuple(_row(index) for index in range(len(_ROWS)))
    globals()["TAGS"] = rows
    return rows


def lookup(tag: int, kernel: str | None = None) -> TagInfo | None:
    """The row for ``tag``: the kernel's own row, else the generic row, else the first row.

    ``kernel`` is ``"visa"``, ``"mastercard"``, ``"amex"``, ``"discover"`` or ``None``; other
    names (``"jcb"``, ``"unionpay"``) fall back to the generic meaning. A tag that one of those
    four kernels does not define and that has no generic meaning is unknown for it (``None``):
    another kernel's meaning is never lent (9F68 is Visa's Card Additional Processes, but a
    Mastercard card's Mag-stripe CVM List).

    >>> lookup(0x9F6E, "amex").name
    'Enhanced Contactless Reader Capabilities'
    >>> lookup(0x9F6E).kernel
    'visa'
    >>> lookup(0x9F66, "mastercard").name, lookup(0x9F66, "visa").name
    ('PUNATC (Track2)', 'Terminal Transaction Qualifiers (TTQ)')
    >>> lookup(0xDF7F) is None
    True
    """
    if kernel is not None:
        index = _BY_KEY.get((tag, kernel))
        if index is not None:
            return _row(index)
        if kernel in _KERNELS:
            return _row(_BY_KEY.get((tag, None)))
    index = _BY_KEY.get((tag, None))
    return _row(_FIRST.get(tag) if index is None else index)


def name(tag: int, kernel: str | None = None) -> str:
    """The name of ``tag`` (EMV 4.4 Book 3 Annex A), or ``"Unknown tag 9F7F"``-style text.

    >>> name(0x57)
    'Track 2 Equivalent Data'
    >>> name(0xDF7F)
    'Unknown tag DF7F'
    """
    row = lookup(tag, kernel)
    if row is not None:
        return row.name
    return f"Unknown tag {tag:02X}"


def format_of(tag: int, kernel: str | None = None) -> str:
    """The format of ``tag`` (``b``, ``n``, ``cn``, ``a``, ``an``, ``ans``); ``"b"`` if unknown.

    This is the format that DOL building pads and truncates by (EMV 4.4 Book 3 §5.4).

    >>> format_of(0x9F02), format_of(0x5A), format_of(0xDF7F)
    ('n', 'cn', 'b')
    """
    row = lookup(tag, kernel)
    return row.format if row is not None else "b"


def is_sensitive(tag: int) -> bool:
    """Whether ``tag`` carries cardholder data that traces mask (PAN, track data, names).

    True for 5A, 57, 56, 9F6B, 9F1F, 9F20, 5F20 and 9F0B; the expiry date alone, the
    PCVC3/PUNATC bitmaps, keys and cryptograms are not sensitive in this sense.

    >>> [is_sensitive(t) for t in (0x5A, 0x57, 0x9F26, 0x5F24)]
    [True, True, False, False]
    """
    return tag in _SENSITIVE_TAGS


# --------------------------------------------------------------------------- reference tables


COUNTRIES: dict[int, str] = {
    32: "AR", 36: "AU", 40: "AT", 48: "BH", 50: "BD", 56: "BE", 76: "BR", 100: "BG", 124: "CA",
    152: "CL", 156: "CN", 170: "CO", 191: "HR", 196: "CY", 203: "CZ", 208: "DK", 233: "EE",
    246: "FI", 250: "FR", 276: "DE", 300: "GR", 344: "HK", 348: "HU", 352: "IS", 356: "IN",
    360: "ID", 372: "IE", 376: "IL", 380: "IT", 392: "JP", 398: "KZ", 404: "KE", 410: "KR",
    414: "KW", 428: "LV", 440: "LT", 442: "LU", 458: "MY", 470: "MT", 484: "MX", 504: "MA",
    512: "OM", 528: "NL", 554: "NZ", 566: "NG", 578: "NO", 586: "PK", 604: "PE", 608: "PH",
    616: "PL", 620: "PT", 634: "QA", 642: "RO", 643: "RU", 682: "SA", 688: "RS", 702: "SG",
    703: "SK", 704: "VN", 705: "SI", 710: "ZA", 724: "ES", 752: "SE", 756: "CH", 158: "TW",
    764: "TH", 784: "AE", 788: "TN", 792: "TR", 804: "UA", 818: "EG", 826: "GB", 840: "US",
    858: "UY",
}
"""ISO 3166-1 numeric code → alpha-2 code, for the common countries."""

#: The data objects of an authorization's ICC data (ISO 8583 field 55), in the order they are
#: sent, as networks specify it: the cryptogram and the data it covers first, then terminal
#: data, then the card's identification. A sender picks the ones it has, in this order.
FIELD_55_TAGS: tuple[int, ...] = (
    0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x82, 0x9F37, 0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A,
    0x9C, 0x9F66, 0x9F6C, 0x9F34, 0x9F33, 0x9F35, 0x9F09, 0x84, 0x9F6E, 0x9F7C, 0x5F34, 0x57,
    0x5A, 0x5F24,
)


@dataclass(frozen=True, slots=True)
class AidInfo:
    """A registered application identifier: scheme, product and the contactless kernel.

    Kernels are named after EMV Contactless Books C-2 (``mastercard``), C-3 (``visa``),
    C-4 (``amex``), C-5 (``jcb``), C-6 (``discover``) and C-7 (``unionpay``).
    """

    aid: bytes
    scheme: str
    product: str
    kernel: str | None


AIDS: tuple[AidInfo, ...] = tuple(
    AidInfo(bytes.fromhex(aid), scheme, product, kernel)
    for aid, scheme, product, kernel in (
        ("A0000000031010", "Visa", "Visa credit/debit", "visa"),
        ("A0000000032010", "Visa", "Visa Electron", "visa"),
        ("A0000000032020", "Visa", "V PAY", "visa"),
        ("A0000000033010", "Visa", "Visa Interlink", "visa"),
        ("A0000000038010", "Visa", "Visa Plus", "visa"),
        ("A0000000980840", "Visa", "Visa US Common Debit", "visa"),
        ("A0000000041010", "Mastercard", "Mastercard credit/debit", "mastercard"),
        ("A0000000042203", "Mastercard", "Mastercard US Maestro", "mastercard"),
        ("A0000000043060", "Mastercard", "Maestro", "mastercard"),
        ("A0000000046000", "Mastercard", "Cirrus", "mastercard"),
        ("A00000002501", "American Express", "American Express", "amex"),
        ("A0000001523010", "Discover", "Discover / Diners Club", "discover"),
        ("A0000001524010", "Discover", "Discover US Common Debit", "discover"),
        ("A0000000651010", "JCB", "JCB", "jcb"),
        ("A000000333010101", "UnionPay", "UnionPay debit", "unionpay"),
        ("A000000333010102", "UnionPay", "UnionPay credit", "unionpay"),
        ("A000000333010103", "UnionPay", "UnionPay quasi-credit", "unionpay"),
        ("A0000000421010", "Cartes Bancaires", "CB", None),
        ("A0000002771010", "Interac", "Interac", None),
        ("A0000005241010", "RuPay", "RuPay", None),
        ("A0000006581010", "Mir", "Mir", None),
    )
)
"""Well-known AIDs with scheme, product and default kernel (EMV Contactless Book B Table 3-6)."""

_RIDS: dict[bytes, tuple[str, str | None]] = {
    bytes.fromhex("A000000003"): ("Visa", "visa"),
    bytes.fromhex("A000000004"): ("Mastercard", "mastercard"),
    bytes.fromhex("A000000025"): ("American Express", "amex"),
    bytes.fromhex("A000000152"): ("Discover", "discover"),
    bytes.fromhex("A000000065"): ("JCB", "jcb"),
    bytes.fromhex("A000000333"): ("UnionPay", "unionpay"),
    bytes.fromhex("A000000042"): ("Cartes Bancaires", None),
    bytes.fromhex("A000000277"): ("Interac", None),
    bytes.fromhex("A000000524"): ("RuPay", None),
    bytes.fromhex("A000000658"): ("Mir", None),
    bytes.fromhex("A000000098"): ("Visa", "visa"),
}


def _aid_entry(aid: bytes) -> AidInfo | None:
    best = None
    for entry in AIDS:
        if aid.startswith(entry.aid) and (best is None or len(entry.aid) > len(best.aid)):
            best = entry
    return best


def scheme_of(aid: bytes) -> str | None:
    """The payment scheme of an AID, by its RID (first five bytes, ISO/IEC 7816-4 §12.2.3).

    >>> scheme_of(bytes.fromhex("A0000000041010")), scheme_of(bytes.fromhex("A00000002501"))
    ('Mastercard', 'American Express')
    >>> scheme_of(b"\\x01\\x02") is None
    True
    """
    entry = _RIDS.get(bytes(aid[:5]))
    return entry[0] if entry else None


def kernel_for_aid(aid: bytes) -> str | None:
    """The contactless kernel for an AID (EMV Contactless Book B §3.3, by RID).

    >>> kernel_for_aid(bytes.fromhex("A0000000031010")), kernel_for_aid(bytes.fromhex("A000000333010101"))
    ('visa', 'unionpay')
    """
    entry = _RIDS.get(bytes(aid[:5]))
    return entry[1] if entry else None


# --------------------------------------------------------------------------- bitmaps


@dataclass(frozen=True, slots=True)
class Bitmap:
    """The meaning of each bit of a bitmap data element, with the section that defines it.

    ``bits`` holds ``(byte, bit, meaning)`` with bytes counted from 1 and bits from 8 (most
    significant) down to 1, as the EMV books write them. Bits absent from the table are RFU.
    """

    tag: int
    name: str
    source: str
    bits: tuple[tuple[int, int, str], ...]


_BITMAP_ROWS: tuple[tuple[int, str, str, tuple[tuple[int, int, str], ...]], ...] = (
    (0x82, "Application Interchange Profile", "EMV 4.4 Book 3 Annex C1 Table 37; Book C-2 Annex A", (
        (1, 7, "SDA supported"),
        (1, 6, "DDA supported"),
        (1, 5, "Cardholder verification is supported"),
        (1, 4, "Terminal risk management is to be performed"),
        (1, 3, "Issuer authentication is supported"),
        (1, 2, "On device cardholder verification is supported (Book C-2)"),
        (1, 1, "CDA supported"),
        (2, 8, "EMV mode is supported (contactless)"),
        (2, 1, "Relay resistance protocol is supported (Book C-2)"),
    )),
    (0x9F07, "Application Usage Control", "EMV 4.4 Book 3 Annex C2 Table 38", (
        (1, 8, "Valid for domestic cash transactions"),
        (1, 7, "Valid for international cash transactions"),
        (1, 6, "Valid for domestic goods"),
        (1, 5, "Valid for international goods"),
        (1, 4, "Valid for domestic services"),
        (1, 3, "Valid for international services"),
        (1, 2, "Valid at ATMs"),
        (1, 1, "Valid at terminals other than ATMs"),
        (2, 8, "Domestic cashback allowed"),
        (2, 7, "International cashback allowed"),
    )),
    (0x95, "Terminal Verification Results", "EMV 4.4 Book 3 Annex C5 Table 42; Book C-2 Annex A", (
        (1, 8, "Offline data authentication was not performed"),
        (1, 7, "SDA failed"),
        (1, 6, "ICC data missing"),
        (1, 5, "Card appears on terminal exception file"),
        (1, 4, "DDA failed"),
        (1, 3, "CDA failed"),
        (1, 2, "SDA selected"),
        (2, 8, "ICC and terminal have different application versions"),
        (2, 7, "Expired application"),
        (2, 6, "Application not yet effective"),
        (2, 5, "Requested service not allowed for card product"),
        (2, 4, "New card"),
        (3, 8, "Cardholder verification was not successful"),
        (3, 7, "Unrecognised CVM"),
        (3, 6, "PIN Try Limit exceeded"),
        (3, 5, "PIN entry required and PIN pad not present or not working"),
        (3, 4, "PIN entry required, PIN pad present, but PIN was not entered"),
        (3, 3, "Online PIN entered"),
        (4, 8, "Transaction exceeds floor limit"),
        (4, 7, "Lower consecutive offline limit exceeded"),
        (4, 6, "Upper consecutive offline limit exceeded"),
        (4, 5, "Transaction selected randomly for online processing"),
        (4, 4, "Merchant forced transaction online"),
        (5, 8, "Default TDOL used"),
        (5, 7, "Issuer authentication failed"),
        (5, 6, "Script processing failed before final GENERATE AC"),
        (5, 5, "Script processing failed after final GENERATE AC"),
        (5, 4, "Relay resistance threshold exceeded (Book C-2)"),
        (5, 3, "Relay resistance time limits exceeded (Book C-2)"),
        (5, 2, "Relay resistance performed (Book C-2, bits 2-1 = 10)"),
        (5, 1, "Relay resistance not performed (Book C-2, bits 2-1 = 01)"),
    )),
    (0x9B, "Transaction Status Information", "EMV 4.4 Book 3 Annex C6 Table 43", (
        (1, 8, "Offline data authentication was performed"),
        (1, 7, "Cardholder verification was performed"),
        (1, 6, "Card risk management was performed"),
        (1, 5, "Issuer authentication was performed"),
        (1, 4, "Terminal risk management was performed"),
        (1, 3, "Script processing was performed"),
    )),
    (0x9F33, "Terminal Capabilities", "EMV 4.4 Book 4 Annex A2", (
        (1, 8, "Manual key entry"),
        (1, 7, "Magnetic stripe"),
        (1, 6, "IC with contacts"),
        (2, 8, "Plaintext PIN for ICC verification"),
        (2, 7, "Enciphered PIN for online verification"),
        (2, 6, "Signature (paper)"),
        (2, 5, "Enciphered PIN for offline verification"),
        (2, 4, "No CVM required"),
        (3, 8, "SDA"),
        (3, 7, "DDA"),
        (3, 6, "Card capture"),
        (3, 4, "CDA"),
    )),
    (0x9F40, "Additional Terminal Capabilities", "EMV 4.4 Book 4 Annex A3", (
        (1, 8, "Cash"),
        (1, 7, "Goods"),
        (1, 6, "Services"),
        (1, 5, "Cashback"),
        (1, 4, "Inquiry"),
        (1, 3, "Transfer"),
        (1, 2, "Payment"),
        (1, 1, "Administrative"),
        (2, 8, "Cash deposit"),
        (3, 8, "Numeric keys"),
        (3, 7, "Alphabetic and special characters keys"),
        (3, 6, "Command keys"),
        (3, 5, "Function keys"),
        (4, 8, "Print, attendant"),
        (4, 7, "Print, cardholder"),
        (4, 6, "Display, attendant"),
        (4, 5, "Display, cardholder"),
        (4, 2, "Code table 10"),
        (4, 1, "Code table 9"),
        (5, 8, "Code table 8"),
        (5, 7, "Code table 7"),
        (5, 6, "Code table 6"),
        (5, 5, "Code table 5"),
        (5, 4, "Code table 4"),
        (5, 3, "Code table 3"),
        (5, 2, "Code table 2"),
        (5, 1, "Code table 1"),
    )),
    (0x9F66, "Terminal Transaction Qualifiers", "EMV Contactless Book A §5.7 Table 5-4; Book C-3 Annex A", (
        (1, 8, "Mag-stripe mode supported"),
        (1, 6, "EMV mode supported"),
        (1, 5, "EMV contact chip supported"),
        (1, 4, "Offline-only reader"),
        (1, 3, "Online PIN supported"),
        (1, 2, "Signature supported"),
        (1, 1, "Offline Data Authentication for Online Authorizations supported"),
        (2, 8, "Online cryptogram required"),
        (2, 7, "CVM required"),
        (2, 6, "(Contact chip) Offline PIN supported"),
        (3, 8, "Issuer Update Processing supported"),
        (3, 7, "Consumer Device CVM supported"),
    )),
    (0x9F6C, "Card Transaction Qualifiers", "EMV Contactless Book C-3 Annex A.2", (
        (1, 8, "Online PIN required"),
        (1, 7, "Signature required"),
        (1, 6, "Go online if offline data authentication fails and reader is online capable"),
        (1, 5, "Switch interface if offline data authentication fails and reader supports contact chip"),
        (1, 4, "Go online if application expired"),
        (1, 3, "Switch interface for cash transactions"),
        (1, 2, "Switch interface for cashback transactions"),
        (2, 8, "Consumer Device CVM performed"),
        (2, 7, "Card supports Issuer Update Processing at the POS"),
    )),
)

BITMAPS: dict[int, Bitmap] = {
    tag: Bitmap(tag, label, source, bits) for tag, label, source, bits in _BITMAP_ROWS
}
"""Bit tables of the bitmaps people read, keyed by tag (their generic or Visa meaning)."""

_BITMAP_KERNELS: dict[int, frozenset[str | None]] = {
    0x9F66: frozenset({None, "visa", "discover"}),
    0x9F6C: frozenset({"visa"}),
}

_CVM_METHODS: dict[int, str] = {
    0x00: "Fail CVM processing",
    0x01: "Plaintext PIN verification performed by ICC",
    0x02: "Enciphered PIN verified online",
    0x03: "Plaintext PIN verification performed by ICC and signature (paper)",
    0x04: "Enciphered PIN verification performed by ICC",
    0x05: "Enciphered PIN verification performed by ICC and signature (paper)",
    0x1E: "Signature (paper)",
    0x1F: "No CVM required",
    0x3F: "No CVM performed",
}
"""CVM codes, EMV 4.4 Book 3 Annex C3 Table 39 (3F: 'not available for use', in CVM Results)."""

_CVM_CONDITIONS: dict[int, str] = {
    0x00: "Always",
    0x01: "If unattended cash",
    0x02: "If not unattended cash and not manual cash and not purchase with cashback",
    0x03: "If terminal supports the CVM",
    0x04: "If manual cash",
    0x05: "If purchase with cashback",
    0x06: "If transaction is in the application currency and is under X value",
    0x07: "If transaction is in the application currency and is over X value",
    0x08: "If transaction is in the application currency and is under Y value",
    0x09: "If transaction is in the application currency and is over Y value",
}
"""CVM condition codes, EMV 4.4 Book 3 Annex C3 Table 40."""

_CVM_RESULTS = {0: "Unknown", 1: "Failed", 2: "Successful"}



def _cvm_method(code: int) -> str:
    method = code & 0x3F
    if method in _CVM_METHODS:
        return _CVM_METHODS[method]
    if 0x20 <= method <= 0x2F:
        return f"Payment system method {method:02X}"
    if 0x30 <= method <= 0x3E:
        return f"Issuer method {method:02X}"
    return f"RFU method {method:02X}"


def _cvm_condition(code: int) -> str:
    if code in _CVM_CONDITIONS:
        return _CVM_CONDITIONS[code]
    if code >= 0x80:
        return f"Payment system condition {code:02X}"
    return f"RFU condition {code:02X}"


def _explain_table(table: Bitmap, value: bytes) -> list[str]:
    known = {(byte, bit): text for byte, bit, text in table.bits}
    out = []
    for index, octet in enumerate(value, start=1):
        for bit in range(8, 0, -1):
            if octet & (1 << (bit - 1)):
                out.append(f"byte {index} bit {bit}: {known.get((index, bit), 'RFU')}")
    return out


def _explain_cvm_results(value: bytes) -> list[str]:
    out = []
    if len(value) >= 1:
        out.append(f"method: {_cvm_method(value[0])}")
        if value[0] & 0x40 and value[0] & 0x3F != 0x3F:
            out.append("apply succeeding CV Rule if this CVM is unsuccessful")
    if len(value) >= 2:
        out.append(f"condition: {_cvm_condition(value[1])}")
    if len(value) >= 3:
        out.append(f"result: {_CVM_RESULTS.get(value[2], f'RFU ({value[2]:02X})')}")
    return out


def _bitmap_for(tag: int, kernel: str | None) -> Bitmap | None:
    table = BITMAPS.get(tag)
    if table is None:
        return None
    allowed = _BITMAP_KERNELS.get(tag)
    row = lookup(tag, kernel)
    if allowed is not None and row is not None and row.kernel not in allowed:
        return None
    return table


def explain_bits(tag: int, value: bytes, kernel: str | None = None) -> list[str]:
    """The meaning of each set bit of a bitmap data element; ``[]`` for tags without one.

    Covers AIP (82), AUC (9F07), TVR (95), TSI (9B), CVM Results (9F34: method, condition,
    result), CID (9F27), TTQ (9F66), CTQ (9F6C), Terminal Capabilities (9F33) and Additional
    Terminal Capabilities (9F40); see :data:`BITMAPS` for the sections cited. A tag whose meaning
    for ``kernel`` is not the bitmap (9F66 for Mastercard is PUNATC) gives ``[]``. Set bits
    without a meaning, and bytes beyond the defined length, read as RFU. Never raises.

    >>> explain_bits(0x95, bytes.fromhex("0000008000"))
    ['byte 4 bit 8: Transaction exceeds floor limit']
    >>> explain_bits(0x9F27, b"\\x80")
    ['bits 8-7: ARQC']
    >>> explain_bits(0x9F34, bytes.fromhex("1F0002"))
    ['method: No CVM required', 'condition: Always', 'result: Successful']
    """
    data = bytes(value)
    if tag == 0x9F27:
        return explain_cid(data)
    if tag == 0x9F34:
        return _explain_cvm_results(data)
    table = _bitmap_for(tag, kernel)
    return _explain_table(table, data) if table is not None else []


# --------------------------------------------------------------------------- interpretation

_TERMINAL_OPERATOR = {"1": "financial institution", "2": "merchant", "3": "cardholder"}
_TERMINAL_ENV = {
    "1": "attended, online only",
    "2": "attended, offline with online capability",
    "3": "attended, offline only",
    "4": "unattended, online only",
    "5": "unattended, offline with online capability",
    "6": "unattended, offline only",
}
_TRANSACTION_TYPES = {
    "00": "purchase", "01": "cash", "09": "purchase with cashback", "20": "refund",
    "30": "balance inquiry", "31": "balance inquiry",
}
_DATE_TAGS = frozenset({0x9A, 0x5F24, 0x5F25})
_CURRENCY_TAGS = frozenset({0x5F2A, 0x9F42, 0x9F3C})
_COUNTRY_TAGS = frozenset({0x5F28, 0x9F1A})
_AMOUNT_TAGS = frozenset({0x9F02, 0x9F03})
_AID_TAGS = frozenset({0x4F, 0x84, 0x9F06})


def _printable(data: bytes) -> str:
    if data and all(0x20 <= b < 0x7F for b in data):
        return data.decode("ascii")
    return data.hex().upper()


def _date(data: bytes) -> str | None:
    digits = n_digits(data)
    if digits is None or len(digits) != 6:
        return None
    yy, mm, dd = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    if not (1 <= mm <= 12 and 1 <= dd <= 31):
        return None
    year = 2000 + yy if yy < 50 else 1900 + yy
    return f"{year:04d}-{mm:02d}-{dd:02d}"


def _afl(data: bytes) -> str:
    if not data or len(data) % 4:
        return f"{data.hex().upper()} (not a multiple of 4 bytes)"
    parts = []
    for i in range(0, len(data), 4):
        sfi, first, last, oda = data[i] >> 3, data[i + 1], data[i + 2], data[i + 3]
        records = f"record {first}" if first == last else f"records {first}–{last}"
        parts.append(f"SFI {sfi} {records} ({oda} for ODA)")
    return "; ".join(parts)


def _cvm_list(data: bytes) -> str:
    if len(data) < 8:
        return data.hex().upper()
    x, y = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
    rules = []
    body = data[8:]
    for i in range(0, len(body) - 1, 2):
        code, cond = body[i], body[i + 1]
        then = ", else next" if code & 0x40 else ""
        rules.append(f"{_cvm_method(code)} — {_cvm_condition(cond)}{then}")
    if len(body) % 2:
        rules.append(f"trailing byte {body[-1]:02X}")
    return f"X={x} Y={y}; " + "; ".join(rules) if rules else f"X={x} Y={y}; no rules"


def _track2(data: bytes) -> str:
    text = data.hex().upper().rstrip("F")
    if "D" not in text:
        return text
    pan, rest = text.split("D", 1)
    out = f"PAN {pan}"
    if len(rest) >= 4 and rest[:4].isdigit():
        out += f", expiry 20{rest[:2]}-{rest[2:4]}"
    if len(rest) >= 7 and rest[4:7].isdigit():
        out += f", service code {rest[4:7]}"
    if len(rest) > 7:
        out += f", discretionary {rest[7:]}"
    return out


def _cvn(byte: int) -> str:
    return f"CVN {byte} ({byte:02X})"


def _iad(data: bytes, kernel: str | None) -> str:
    n = len(data)
    if kernel in (None, "visa") and n >= 7 and data[0] == 0x06:
        return (f"Visa IAD format 0/1: DKI {data[1]:02X}, {_cvn(data[2])}, CVR {data[3:7].hex().upper()}"
                + (f", issuer discretionary {data[7:].hex().upper()}" if n > 7 else ""))
    if kernel in (None, "visa") and n == 32 and data[0] == 0x1F:
        return (f"Visa IAD 32-byte format: {_cvn(data[1])}, DKI {data[2]:02X}, "
                f"CVR {data[3:8].hex().upper()}, issuer discretionary {data[8:].hex().upper()}")
    if kernel in (None, "mastercard") and n in (18, 26, 34):
        return (f"Mastercard IAD: DKI {data[0]:02X}, {_cvn(data[1])}, CVR {data[2:8].hex().upper()}, "
                f"DAC/IDN {data[8:10].hex().upper()}, counters {data[10:18].hex().upper()}"
                + (f", {data[18:].hex().upper()}" if n > 18 else ""))
    return f"{n} bytes: {data.hex().upper()}"


def _aid(data: bytes) -> str:
    hexed = data.hex().upper()
    entry = _aid_entry(data)
    if entry is not None:
        return f"{hexed} ({entry.product})"
    scheme = scheme_of(data)
    return f"{hexed} ({scheme})" if scheme else hexed


def _numeric(tag: int, data: bytes) -> str:
    digits = n_digits(data)
    if digits is None:
        return f"{data.hex().upper()} (not BCD)"
    if tag in _AMOUNT_TAGS:
        return f"{int(digits)} minor units ({digits})"
    if tag in _DATE_TAGS:
        return _date(data) or f"{digits} (not a date)"
    if tag == 0x9F21 and len(digits) == 6:
        return f"{digits[:2]}:{digits[2:4]}:{digits[4:]}"
    if tag in _CURRENCY_TAGS:
        entry = currency(int(digits)) if digits else None
        return f"{digits} {entry.code}" if entry else digits
    if tag in _COUNTRY_TAGS:
        country = COUNTRIES.get(int(digits)) if digits else None
        return f"{digits} {country}" if country else digits
    if tag == 0x9F35 and len(digits) == 2:
        who, env = _TERMINAL_OPERATOR.get(digits[0]), _TERMINAL_ENV.get(digits[1])
        if who and env:
            return f"{digits}: {env}, operated by {who}"
    if tag == 0x9C and digits in _TRANSACTION_TYPES:
        return f"{digits} ({_TRANSACTION_TYPES[digits]})"
    return digits


def _interpret(tag: int, data: bytes, kernel: str | None) -> str:
    row = lookup(tag, kernel)
    fmt = row.format if row is not None else "b"
    if row is not None and row.constructed:
        return f"constructed, {len(data)} bytes"
    if not data:
        return "(empty)"
    if tag == 0x9F27:
        return f"{data.hex().upper()}: " + ", ".join(explain_cid(data))
    if tag == 0x94:
        return _afl(data)
    if tag == 0x8E:
        return _cvm_list(data)
    if tag in (0x57, 0x9F6B) and (row is None or row.kernel != "visa"):
        return _track2(data)
    if tag == 0x9F10:
        return _iad(data, kernel)
    if tag in _AID_TAGS:
        return _aid(data)
    if tag == 0x9F34 or _bitmap_for(tag, kernel) is not None:
        bits = explain_bits(tag, data, kernel)
        return f"{data.hex().upper()}: " + ("; ".join(bits) if bits else "no bits set")
    if fmt == "n":
        return _numeric(tag, data)
    if fmt == "cn":
        digits = decode_cn(data)
        return digits if digits is not None else data.hex().upper()
    if fmt in ("a", "an", "ans"):
        return _printable(data)
    return data.hex().upper()


def interpret(tag: int, value: bytes, kernel: str | None = None) -> str:
    """A short human reading of a primitive value, by the tag's format and meaning.

    Numbers (n) as digits, amounts as minor units, dates as ``YYYY-MM-DD``, currencies and
    countries with their ISO alphabetic codes, text formats as text (hex when not printable),
    AFL, CVM List, CID, AIDs with their scheme, Terminal Type, IAD (Visa formats 0/1 and 2,
    Mastercard 18 bytes), bitmaps through :func:`explain_bits`, anything else as hex. Sources
    as in EMV 4.4 Book 3 Annex A and Annex C. Never raises.

    >>> interpret(0x9F02, bytes.fromhex("000000001000"))
    '1000 minor units (000000001000)'
    >>> interpret(0x5F24, bytes.fromhex("251231"))
    '2025-12-31'
    >>> interpret(0x94, bytes.fromhex("08010200"))
    'SFI 1 records 1–2 (0 for ODA)'
    >>> interpret(0x50, b"VISA DEBIT")
    'VISA DEBIT'
    >>> interpret(0x4F, bytes.fromhex("A0000000041010"))
    'A0000000041010 (Mastercard credit/debit)'
    """
    return _interpret(tag, bytes(value), kernel)
