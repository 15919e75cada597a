"""The host-card-emulation payment card: a sans-I/O EMV contactless applet, its profile and keys.

Card-side transports live in :mod:`hce.transports`; the applet itself never does I/O.
"""
