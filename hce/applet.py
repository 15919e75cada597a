"""The sans-I/O payment applet: ``CardApplet.process(c_apdu: bytes) -> bytes``."""
