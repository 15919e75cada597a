"""Card-side transports: plug the applet into vpcd (PC/SC) or an nfcpy ISO-DEP target."""
