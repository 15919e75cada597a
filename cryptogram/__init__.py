"""EMV cryptograms: key derivation, session keys, ARQC/TC/AAC, ARPC and MACs.

The one place where the card side (``hce``) and the issuer side (``tsp_backend``) share the same
mathematics. Every function is bytes in, bytes out, on top of the ``cryptography`` package.
"""
