"""The host-card-emulation payment card: a sans-I/O EMV contactless applet, its profile and keys.

Modules: :mod:`hce.applet` (``CardApplet.process(c_apdu) -> bytes``), :mod:`hce.states` (the
transition tables), :mod:`hce.profile` (the validated card profile), :mod:`hce.keys`
(limited-use keys and durable counters), :mod:`hce.files` (FCI and records),
:mod:`hce.testcard` (the built-in test card). Card-side transports live in
:mod:`hce.transports`; the applet itself never does I/O.

Exceptions (:mod:`hce.errors`)::

    HCEError
     ├── ProfileError
     ├── CounterError ── CounterExhausted, CounterStoreError
     └── TransportError
"""
