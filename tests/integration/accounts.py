"""An account with a device, made through the token service's HTTP API (as a phone wallet does)."""

from __future__ import annotations

import base64

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from cryptogram.sealing import point_bytes


def account_with_device(
    http: httpx.Client, email: str, password: str, device_name: str
) -> tuple[str, ec.EllipticCurvePrivateKey, int]:
    """Register and log in, then register a device with a fresh P-256 key.

    Returns the session's bearer token, the device's private key (it opens the profiles sealed to
    the device) and the device's id. The session cookie is dropped, so requests carry the token.
    """
    creds = {"email": email, "password": password}
    assert http.post("/api/auth/register", json=creds).status_code == 201
    token = str(http.post("/api/auth/login", json=creds).json()["token"])
    http.cookies.clear()
    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(point_bytes(key.public_key())).decode()
    device = http.post(
        "/api/devices",
        json={"name": device_name, "publicKey": public},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert device.status_code == 201, device.text
    return token, key, int(device.json()["id"])
