"""The sans-I/O terminal kernel: emits the next C-APDU and consumes the R-APDU."""
