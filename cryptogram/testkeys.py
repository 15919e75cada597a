"""Published test keys for offline data authentication: public on purpose, never for real use.

hcekit needs a whole certificate chain to test offline data authentication end to end with keys
it made itself (EMV 4.4 Book 2 §5-§6): a certification authority, an issuer certified by it, and
cards certified by the issuer. Real CA private keys are, of course, nobody's to publish, so the
chain here starts from the *hcekit test CA*, whose public key the terminal's CA table lists under
index :data:`TEST_CA_INDEX` of each network's RID, marked as a test key. A terminal that trusts it
accepts cards certified by the token service; a real acquirer declines them, as it must.

Like the published test issuer master key of :mod:`hce.testcard`, these keys are in the source so
that every part of the project (card, terminal, token service, tests) agrees on them without any
set-up. The token service can be given its own CA and issuer keys instead.
"""

from __future__ import annotations

from functools import cache

from cryptogram.rsa import RsaPrivateKey

__all__ = ["TEST_CA_INDEX", "oda_test_key"]

TEST_CA_INDEX = 0xE1
"""The CA public key index (8F) of the hcekit test CA under every RID it is listed for."""

TEST_CA_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIIEkQIBADANBgkqhkiG9w0BAQEFAASCBHswggR3AgEAAoH5ALU70U5JH0DmHNFe
bcC5ZO2ktf/we3D2dNoW13ojxNU9g029fy+03X7kjPKX/RPe8N/xVgCYrwusHF3i
LEgw0hqAZE+RlbSjdXsNj0rqZQ7a/ZejiYfxz2S9EZA/w6JU15QHgtFkGInldfUS
q97QEIFJosPO92O0VmJPfB3YrUya6ZoWSj++Pihvy5y0okc3OMXCRT6p8qoQQDfa
yN+L9oU6KgWVNiADCztHYqAEcVSwkUL7cZThfyKHwtj9vYJX0ubZJXAPhod3OD/E
5FIGt19SR0KKMHepjcPhAykAh3Fb85E8NRr+1mm1lAipUoKdt5zE0Q0qU1DPAgED
AoH4eNKLiYYU1e694OmegHuYnm3OqqBSS074kWSPpsKDONOs3n5UyniTqe2zTGVT
YpSglUuOqxB0snK9k+wdhXXhZwBC37ZjzcJOUgkKMfGYtJH+ZRexBUvfmH4LtX/X
wY3lDVpXNkK7Bpj5TgxylIq1q4Zsgon6Qng5lt+oEsUdgZqUt2ATjSudaSjty1Gh
+YIKkbnNso0LEeAPclEC7hNBhLDDbNyblKqL66igIxM3/MnOEnznAHBoiAQJL39z
aXMUBkkW3oePLkJgmIIeX7lXuFoYGz+g9Lqv9get0bot0zg3zURfRoZM/64raq3o
ED3RbMhjqQgZqksCfQDuWXitFco6X4Imj/uY6ExLhjwdtWh7C4kSrLLkecSbwGSc
VL7FIxVruMBaFDiMNwtcyTrocXV9jeWAuWahs5+5h6U3Xaerxjy+QBuPkfOFagp1
VsvRN/s1JSZQvtv3KEYzDHkC32oG5L8Mdfmt6sDWyje80JyUBJ4QyhypAn0AwqeR
hfS8y81p1kIPGX6fbqkU1nOCsIUpw7VcW69HxYQV0r9/a+HM3pQAqSUhPjtgCtQe
mWqxwokuuCjv4AFyBQi+89c1v7zlhe+mhBVnfEy3+1z++esedZniQMb23lYoNjY7
hMBzTsFyKOzwgmgnzawyhCzdBDbxjWK0twJ9AJ7mUHNj3CbqVsRf/RCa3Yeu0r54
8FIHsLcdzJhRLb0q7b2N1INsuPJ7Kua4JbLPXOiGJ0Wg+P5emQB7mcEianuvw3o+
b8fZfdQqvQphTQOcBvjkh+DP/M4YxDXUkqTFhCIIUKyU8Vnt1LL5UR6cgI8xen3g
aGKtvrXcExsCfQCBxQuuoyiH3kaO1rS7qb+fG2M5olcgWMaCeOg9H4UuWA6Mf6pH
693puABww2t+0kAHOBRmRyEsW3R6xfVAAPauBdSij3kqfe5ZSm8CuO+oMyVSPf9R
R2mju+wrL08+5BrOztJYgEzfK6FwnfWsRW/ecsxYHeitefZeQc3PAnx7L9xHu2ZV
vqi9hf0fdwmK8c4uyUqQt6HE1UcfCRSvame6VpT714PHhLSSZVHbHXOQg4dGbyAV
qTcsG966o8TU1ypiETws4V6u9B67fzkrQAaVRo3MGEuCGfluU/wBzbgmnijMWSMt
gT3zRqLkhWI5loLBquvUoPaTFOeK
-----END PRIVATE KEY-----
"""
"""The hcekit test certification authority (1984 bits, e = 3)."""

TEST_ISSUER_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIIEkgIBADANBgkqhkiG9w0BAQEFAASCBHwwggR4AgEAAoH5AMIr4Sh+1rw35y7v
j7d0W1V9TTF8kGJ+eJYME1XzrlZ6wMZxA1PBJ65dUF1mj+lC4XksIC6r4L+tTIxe
f/QxufLtTEFUv9tp+jWEWbRueQJKbaLAX4LEIxI6GCriLaEbB0e1FtWAtbmxGh+h
ozb0r+GzCTlMIQhx4ZeelP54vIfTqclfr/QIas9AUxux7E9ZEnwTmX60E82VgbGP
px/8CjEZFw3f7x0e1B0O7kokLFFWx7btaTx+YR4a25pUlpTw+0MPJT3xmE+CQvaY
v2or/3B7lgqK1fVx/JYPU/c7kdcy3XtMh9S1iviTteobncCKJhjSnDKhn1rrAgED
AoH5AIFylhr/OdLP73SftST4POOo3iD9tZb++w6yt46idDmnKy72AjfWGnQ+NZOZ
tUYsllDIFXRyldUeMwg+//ghJqHziCuN1TzxUXkC5nhJpgGG88HVlQHYF2F8EByW
yRYSBNp4ueOrI9EgvBUWbM9NypZ3W3uIFgWhQQ+/Df3QMveSZ+Kkgnrmg8tyhzY+
yOFpGesj8yemhcaIvaVVXrZZF+bu/IfOHJsn6lHk599LiUi9F+ogB3iN7ObuciRk
pElNstGqV8//uTahf4YpBp4lvAnwC+rXrACcqEsut6+Qe6cl3HdxZ0tyuAedAXsv
Pm5Ccsa5nWUmhudbAn0A+APBY0MC5thLhl4hWl7cWfGVSYMAlzxOyDQnrk25o8oB
tnqkQEwmB0pJ2iwHFtnTkhovKLXfKG/1PgwHFegxxEDFs0OFN963xT/OAjO0JEKy
vRxb9aHB/gBFdbgd0XLRVvU/55TtMeAwboOw+QCixl1PDlXxDRedTMIsjQJ9AMhs
UxTK8oIT8ChG/LopbfnNZ/HomsZwdHIW/BoXf+vPDL/rsnJQHCN56ojImyC4p6DE
NRJt+JTuEmtxvJ9IMflfYUkrg1fCzizCr43P+TbyyjZJBZ3iaElTrxFIB3fNnovj
HJJ92vCMsxrzPC8zDo5izBgj/a8YfZsS01cCfQClV9ZCLKyZ5Yeu6WuRlJLmoQ4x
AgBk0t8wIsUe3nvChqvO/G2AMsQE3DE8HVoPO+JhZsobI+oa9U4pXVoOmsvYKy53
gljP6c/Y1TQBd81tgcx+Euf5FoFUAC5Oer6LoeDko3/vuJ4hQCBJrSCmAGyEPjS0
OUteD74zLB2zAn0AhZ2MuIdMVrf1cC9TJsZJUTOaoUW8hEr4TA9SvA+qnTSzKp0h
oYq9bPvxsIW8wHsaay14tvP7DfQMR6EoajAhUOpA23JXj9c0Hdcfs9/7efcxeYYD
vpbwMOJ0tjAE+okUXUITDFPnSwh3Z0zSyiIJtEHdZW1TyhBTvLc3jwJ8CXNo3F8s
SlBVEKB8sAMBuru8/wrmZQFilm1kO0NWKoHLQOeBqh10URdsFcW/0H+QE2euSplo
v3m5cWSPKz5eytknzuhPl3DbX1eJpasnYWRj5M/XP4bgCtuz19Q8vWfZgx81TUIU
6ipFYtbT5Rksyp0b59j89lZrz/Ic+w==
-----END PRIVATE KEY-----
"""
"""The test issuer key the token service certifies cards with (1984 bits, e = 3)."""

TEST_ICC_VISA_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIICdQIBADANBgkqhkiG9w0BAQEFAASCAl8wggJbAgEAAoGBALffBzsPA80SBavk
Mp6CAJIkCLWFetIsLV4BpHPFRdqmyeD+nMwbu89IB2kWJuRw1+IqFLRZ0q+eduMo
u7gYAmzjqt27i6cn5Uo7GwjVxQy/xx5XIL+sigqB/n+R3WaDzXJ2DspkLXLBBCxY
QjxMOM/vVhVGquQu49c4YfitOxTtAgEDAoGAepSvfLStM2FZHULMaawAYW1bI65R
4XLI6VZtooOD5xnb61RoiBJ9NNqvm2QZ7aCP7BwNzZE3H7757MXSerqsR3Vt2/Rc
OfvGSygEdyXbWRMVKHQmbIZ2OVJiimEAPF4QpWYRu/Cs2Ryfi1hjKJUXQVK6/fOP
4hblu8wNyEZEflMCQQDscuip75md8XCniODRAmSbR7Msg8Eu+bedpusBcIxB2VRn
e82wrdMkIgcba/smgO8zXHnrXsjr5h3OnPJMUs0rAkEAxxMrIxG2kEpo14t1S/mi
h9+ufGNbs9786MPE/ux/tNsl9XhiynxZ8fLUOEGERhT+v+EebfRIIKUft7BZ94GK
RwJBAJ2h8HFKZmlLoG+wleCsQxIvzMhX1h9RJRPEnKugXYE7jZpSiSBz4hgWr2ed
UhmrSiI9ppzp20fuvom99t2MiMcCQQCEt3IXYSRgMZs6XPjdURcFP8moQj0ilKib
LS3/SFUjPMP4+uyG/ZFL9zglgQLZY1R/62meotrAbhUlIDv6VlwvAkAEtHu6Jpnn
N5eydNa9FMBAQebufrHPruGGA+LaqR2gM2ejMrzGD7kXcS1ZibvQZCMABZiicJmh
mm3BoC6E54kV
-----END PRIVATE KEY-----
"""
"""The built-in Visa test card's ICC key (1024 bits, e = 3)."""

TEST_ICC_MASTERCARD_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAKzWvDaJPlL13rGq
Nx9NW+EA06J2hKllxOiAf/yOHWLxSBI8P4IJBXJfg/HTDgpGGBYdIB5KTj0yHare
emrFLtwnVVStYhLkMayTNYmGhuR7IL/WpQ14I0GAmDXCggK804HTzisYA0PzqLGK
90F2LDeqBlD4LymCBO/H02uxEMaFAgEDAoGAcznSzwYpjKPpy8bPajOSlgCNFvmt
xkPYmwBVUwlo7KDattLVAVtY9upX9oy0BtllZBNqvtw0KMwTxz78Ry4fPFY7dU+m
hNqF9qHLmxejRNP+tXQAqF9LyTcvYlJkXbaDmPvJXwb6v23TziEME3vwMetUKhc/
PHWxDnbAd6BGOfMCQQDjdQiUjaxWAZIBHLKyDJfaR0Wm5LTzWSA7Cux6aJST1Bi6
BMeGUw7Q+0T1p+0T1ZtenPA9JLUT3MIq+SpR82EnAkEAwoccIVqfRmcon2duMQVl
YttqAb9b9dhzcsY1zILhlzoDoBtVBzgV/e+3Y703KG5RamshmCuZvZ6X6rmN7rQO
cwJBAJejWw2zyDlWYVYTIcwIZTwvg8SYeKI7atIHSFGbDbfiuyat2lmMtItSLfka
ng05Ej8TStNtzg091sdQxuFM628CQQCBr2gWPGou73BqRPQgrkOXPPFWf5Kj5aJM
hCPdrJZk0VfAEjiverlT9STtKM9wSYucR2u6x7vTvw/x0QlJzV73AkEAofEZMZNl
RZVMhydFAA87m/Cvb1Wc/fnepAdZBLFjj8d3hsFPJsQUuLSJoO8DwzeBAmijFh40
nNf0QgIrm9pXLg==
-----END PRIVATE KEY-----
"""
"""The built-in Mastercard test card's ICC key (1024 bits, e = 3)."""


_KEYS = {
    "ca": TEST_CA_PEM,
    "issuer": TEST_ISSUER_PEM,
    "icc-visa": TEST_ICC_VISA_PEM,
    "icc-mastercard": TEST_ICC_MASTERCARD_PEM,
}


@cache
def oda_test_key(name: str) -> RsaPrivateKey:
    """One of the test keys by name: ``ca``, ``issuer``, ``icc-visa`` or ``icc-mastercard``."""
    return RsaPrivateKey.from_pem(_KEYS[name])
