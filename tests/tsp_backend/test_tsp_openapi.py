"""/openapi.json: a valid OpenAPI 3.1 document whose schemas match what the service really answers."""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.tsp_backend.tsp_helpers import (
    PASSWORD,
    Wallet,
    dispose,
    make_config,
    make_wallet,
    new_device_key,
)
from tests.tsp_backend.tsp_pay_helpers import applet, in_app_emv, provision_profile, terminal_key
from tsp_backend.app import create_app
from tsp_backend.errors import PROBLEM_MEDIA_TYPE

openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
jsonschema = pytest.importorskip("jsonschema")


def api_path(rule: str) -> str:
    """A Flask rule in the document's spelling (every path parameter is ``{id}``)."""
    converters = ("<int:card_id>", "<int:device_id>", "<int:key_id>", "<int:action_id>", "<string:txn_id>")
    for converter in converters:
        rule = rule.replace(converter, "{id}")
    return rule


class Checker:
    """Validates real answers against the document's response schemas; counts what it checked."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.checked: set[tuple[str, str, str]] = set()

    def schema_for(self, method: str, path: str, status: int) -> tuple[str, dict[str, Any] | None]:
        """The media type and schema the document gives for this answer."""
        responses = self.document["paths"][path][method.lower()]["responses"]
        answer = responses.get(str(status)) or responses[f"{str(status)[0]}XX"]
        if "$ref" in answer:
            answer = self.document["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
        content = answer.get("content")
        if not content:
            return "", None
        media_type, entry = next(iter(content.items()))
        return media_type, entry["schema"]

    def __call__(self, method: str, path: str, response: Any) -> Any:
        """Assert that ``response`` is what the document says; return its JSON."""
        media_type, schema = self.schema_for(method, path, response.status_code)
        self.checked.add((method.lower(), path, str(response.status_code)))
        if schema is None:
            assert not response.data, (method, path)
            return None
        assert response.mimetype == media_type, (method, path, response.status_code, response.mimetype)
        body = response.get_json()
        root = {**schema, "components": self.document["components"]}
        jsonschema.Draft202012Validator(root).validate(body)
        return body


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    """The served document."""
    served: dict[str, Any] = client.get("/openapi.json").get_json()
    return served


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    """openapi-spec-validator accepts the document as OpenAPI 3.1."""
    openapi_spec_validator.validate(document)
    assert document["openapi"] == "3.1.0"


def test_document_and_app_have_the_same_routes(app: Flask, document: dict[str, Any]) -> None:
    """Every JSON route of the app is described, and every described route exists."""
    served = {
        (rule_path, method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api") or rule.rule == "/healthz"
        for rule_path in [api_path(rule.rule)]
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert described == served


def test_every_operation_has_bodies_problems_and_security(document: dict[str, Any]) -> None:
    """Each operation names its success schema, RFC 9457 problems and its security requirement."""
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"sessionBearer", "sessionCookie", "csrfHeader", "terminalKey"}
    assert schemes["csrfHeader"] == {**schemes["csrfHeader"], "in": "header", "name": "X-CSRF-Token"}
    problem = document["components"]["responses"]["Problem"]["content"]
    assert list(problem) == [PROBLEM_MEDIA_TYPE]
    assert set(document["components"]["schemas"]["Problem"]["required"]) == {
        "type",
        "title",
        "status",
        "detail",
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert responses["4XX"] == responses["5XX"] == {"$ref": "#/components/responses/Problem"}
            success = [s for s in responses if s[0] == "2"]
            assert success, (method, path)
            for status in success:
                if status != "204":
                    assert "application/json" in responses[status]["content"], (method, path, status)
            if method in ("post", "put") and path not in NO_BODY:
                assert "requestBody" in operation, (method, path)
            security = operation["security"]
            if security and method != "get" and security != [{"terminalKey": []}]:
                assert {"sessionCookie": [], "csrfHeader": []} in security, (method, path)


NO_BODY = {
    "/api/auth/logout",
    "/api/devices/{id}/lost",
    "/api/cards/{id}/default",
    "/api/cards/{id}/keys",
    "/api/cards/{id}/issuer-scripts",
    "/api/admin/reconcile",
}
"""The POST/PUT routes that take no request body."""


def idempotent_operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, path) of the operations whose Idempotency-Key header is required."""
    return [
        (method, path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if any(p.get("name") == "Idempotency-Key" and p["required"] for p in operation.get("parameters", []))
    ]


def test_documented_idempotency_keys_are_enforced(wallet: Wallet, document: dict[str, Any]) -> None:
    """Each route documented with Idempotency-Key refuses a request without one (400), no more."""
    documented = idempotent_operations(document)
    assert sorted(documented) == [
        ("post", "/api/authorize"),
        ("post", "/api/cards"),
        ("post", "/api/cards/{id}/issuer-actions"),
        ("post", "/api/cards/{id}/issuer-scripts"),
        ("post", "/api/cards/{id}/profile"),
        ("post", "/api/payments/in-app"),
    ]
    api_key = terminal_key(wallet)
    for method, path in documented:
        token = api_key if path == "/api/authorize" else wallet.token
        response = wallet.client.open(
            path.replace("{id}", "1"),
            method=method.upper(),
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 400, (path, response.get_json())
        assert response.get_json()["type"].endswith("/idempotency-key-missing")


def test_request_schemas_are_the_validating_models(document: dict[str, Any]) -> None:
    """The request schemas are the pydantic models that validate the bodies (payments included)."""
    schemas = document["components"]["schemas"]
    assert schemas["AuthorizeBody"]["properties"]["emv"]["pattern"] == r"^(?:[0-9A-Fa-f]{2})+$"
    assert set(schemas["PaymentRequestBody"]["required"]) >= {"cardId", "amount", "currency", "emv"}
    assert schemas["PickupBody"]["additionalProperties"] is False
    assert schemas["PickupBody"]["properties"]["move"]["type"] == "boolean"
    pay = document["paths"]["/api/payments/in-app"]["post"]["requestBody"]
    assert pay["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PaymentRequestBody"}


def test_real_answers_match_the_document(app: Flask, client: FlaskClient, document: dict[str, Any]) -> None:
    """A whole journey through the API: every answer, success or problem, matches its schema."""
    check = Checker(document)
    email = f"openapi-{uuid.uuid4().hex[:8]}@example.com"
    check(
        "post",
        "/api/auth/register",
        client.post("/api/auth/register", json={"email": email, "password": PASSWORD}),
    )
    login = check(
        "post", "/api/auth/login", client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    )
    client.delete_cookie("hcekit_session")
    wallet = make_wallet(client)
    bearer = {"Authorization": f"Bearer {login['token']}"}
    check("get", "/api/me", client.get("/api/me", headers=wallet.headers))
    check("get", "/api/auth/me", client.get("/api/auth/me", headers=wallet.headers))
    _, public = new_device_key()
    check("post", "/api/devices", wallet.post("/api/devices", {"name": "watch", "publicKey": public}))
    check("get", "/api/devices", client.get("/api/devices", headers=wallet.headers))
    check("get", "/api/devices/{id}", client.get(f"/api/devices/{wallet.device_id}", headers=wallet.headers))

    card_id, profile = provision_profile(wallet)
    created = wallet.provision("5555555555554444")
    check("post", "/api/cards", created)
    pending = check("post", "/api/cards", wallet.provision("4012888888881881"))
    pending_id = pending["card"]["id"]
    check(
        "post",
        "/api/cards/{id}/verify",
        wallet.post(f"/api/cards/{pending_id}/verify", {"method": "otp_email"}),
    )
    check("get", "/api/dev/outbox", wallet.get("/api/dev/outbox"))
    code = wallet.outbox_code(pending_id)
    check("post", "/api/cards/{id}/verify", wallet.post(f"/api/cards/{pending_id}/verify", {"code": code}))
    check("get", "/api/cards", wallet.get("/api/cards"))
    check("get", "/api/cards/{id}", wallet.get(f"/api/cards/{card_id}"))
    check(
        "post",
        "/api/cards/{id}/profile",
        wallet.post(f"/api/cards/{card_id}/profile", {"deviceId": wallet.device_id}, key="k-1"),
    )
    check("post", "/api/cards/{id}/keys", wallet.post(f"/api/cards/{card_id}/keys"))
    check("put", "/api/cards/{id}/default", wallet.put(f"/api/cards/{card_id}/default"))
    check("get", "/api/cards/{id}/controls", wallet.get(f"/api/cards/{card_id}/controls"))
    check(
        "put",
        "/api/cards/{id}/controls",
        client.put(
            f"/api/cards/{card_id}/controls",
            json={"channels": ["contactless", "in_app"]},
            headers=wallet.headers,
        ),
    )

    actions = f"/api/cards/{card_id}/issuer-actions"
    check("post", "/api/cards/{id}/issuer-actions", wallet.post(actions, {"action": "block"}, key="ia-1"))
    emv = in_app_emv(applet(profile), 1999)
    paid = {"cardId": card_id, "amount": 1999, "currency": "EUR", "merchantId": "M-42", "emv": emv}
    check("post", "/api/payments/in-app", wallet.post("/api/payments/in-app", paid, key="pay-1"))
    check("get", "/api/cards/{id}/issuer-actions", wallet.get(actions))
    scripts = f"/api/cards/{card_id}/issuer-scripts"
    delivered = check("post", "/api/cards/{id}/issuer-scripts", wallet.post(scripts, key="is-1"))["items"]
    assert [item["action"] for item in delivered] == ["block"]
    result = f"/api/issuer-scripts/{delivered[0]['id']}/result"
    check("post", "/api/issuer-scripts/{id}/result", wallet.post(result, {"sw": "9000"}))
    api_key = check("post", "/api/terminals", wallet.post("/api/terminals", {"name": "T-1"}))["apiKey"]
    tap = {"emv": emv, "amount": 1999, "currency": "EUR", "merchant": {"id": "M-1", "mcc": "5814"}}
    check(
        "post",
        "/api/authorize",
        client.post(
            "/api/authorize",
            json=tap,
            headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": "a-1"},
        ),
    )
    page = check("get", "/api/transactions", wallet.get("/api/transactions?limit=1"))
    assert page["nextCursor"] is not None
    check("get", "/api/transactions/{id}", wallet.get(f"/api/transactions/{page['items'][0]['id']}"))
    check("post", "/api/admin/reconcile", wallet.post("/api/admin/reconcile"))
    revoked = wallet.post("/api/terminals", {"name": "T-2"}).get_json()["id"]
    check("delete", "/api/terminals/{id}", wallet.delete(f"/api/terminals/{revoked}"))
    check("get", "/healthz", client.get("/healthz"))

    check(
        "post",
        "/api/cards/{id}/suspend",
        wallet.post(f"/api/cards/{card_id}/suspend", {"reason": "CUSTOMER_REQUEST"}),
    )
    check(
        "post",
        "/api/cards/{id}/reactivate",
        wallet.post(f"/api/cards/{card_id}/reactivate", {"reason": "CUSTOMER_REQUEST"}),
    )
    check("delete", "/api/cards/{id}", wallet.delete(f"/api/cards/{card_id}"))
    check("post", "/api/devices/{id}/lost", wallet.post(f"/api/devices/{wallet.device_id}/lost"))
    check("post", "/api/auth/logout", client.post("/api/auth/logout", headers=bearer))

    problems = [
        ("get", "/api/cards", client.get("/api/cards")),  # 401
        ("get", "/api/cards/{id}", wallet.get("/api/cards/99999")),  # 404
        ("post", "/api/cards", wallet.post("/api/cards", {"pan": "1"}, key="bad")),  # 400
        ("post", "/api/cards/{id}/reactivate", wallet.post(f"/api/cards/{card_id}/reactivate", {})),  # 409
        (
            "post",
            "/api/auth/login",
            client.post("/api/auth/login", json={"email": email, "password": "wrong-one"}),
        ),  # 401
        ("get", "/api/transactions", wallet.get("/api/transactions?cursor=%%%")),  # 400
    ]
    for method, path, response in problems:
        assert 400 <= response.status_code < 500
        check(method, path, response)
    described = {(m, p) for p, item in document["paths"].items() for m in item}
    answered = {(m, p) for m, p, _ in check.checked}
    assert described - answered == set()


schemathesis = pytest.importorskip("schemathesis")

EXAMPLES = 20
"""Generated requests per operation and mode (bounded so a mode runs well under a minute)."""

SEMANTIC_REFUSALS = ["2xx", "401", "403", "404", "409", "422", "429"]
"""What a schema-valid request may get: success, or a refusal for what it means — never 400."""


WHOLE_FLOAT_REFUSALS = {"request-validation", "idempotency-key-reused"}
"""How a body spelling an integer as ``2.0`` is refused: by validation, or — when its
Idempotency-Key was already used with another body — before the body is read."""


@dataclass
class Fuzzed:
    """What one schemathesis run sent and found."""

    operations: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    whole_floats: int = 0
    """Positive cases that spelled a documented integer as a whole float (``2.0``): refused, 400."""


def _essence(failure: BaseException) -> str:
    """A failure's title and the problem it was answered with, without the reproduction."""
    text = str(failure)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if line.startswith(("-", "`", "Expected", "Valid", "Invalid"))]
    return " | ".join(kept)[:700] or text[:700]


def has_float(value: Any) -> bool:
    """Whether a JSON value holds a float anywhere (the request bodies document no ``number``)."""
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(has_float(v) for v in value)
    return False


def fuzz(app: Flask, wallet: Wallet, mode: str) -> Fuzzed:
    """Every operation of the served document, ``EXAMPLES`` generated requests each, in ``mode``.

    Checks: no server error, status codes and content types the document names, response bodies
    that match its schemas, and positive data accepted (never 400) or negative data refused.
    Requests carry the credentials the operation's security names; a logout is followed by a
    fresh login so the run keeps its session.
    """
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks

    provision_profile(wallet)
    credentials = {"session": wallet.token, "terminal": terminal_key(wallet)}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    schema.config.checks.positive_data_acceptance.expected_statuses = SEMANTIC_REFUSALS
    generation = schemathesis.GenerationMode(mode)
    acceptance = (
        checks.positive_data_acceptance
        if generation is schemathesis.GenerationMode.POSITIVE
        else checks.negative_data_rejection
    )
    response_checks = [
        not_a_server_error,
        checks.status_code_conformance,
        checks.content_type_conformance,
        checks.response_schema_conformance,
        acceptance,
    ]
    found = Fuzzed()

    def runner(operation: Any, auth: str | None) -> Any:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=generation))
        def run(case: Any) -> None:
            headers = {"Authorization": f"Bearer {credentials[auth]}"} if auth else {}
            response = case.call(headers=headers)
            found.cases += 1
            found.statuses[response.status_code] += 1
            label = f"{operation.label} [{mode}] {response.status_code}"
            if generation is schemathesis.GenerationMode.POSITIVE and has_float(case.body):
                # JSON Schema cannot tell 2.0 from 2; the service takes only the integer spelling
                found.whole_floats += 1
                problem = response.json() if response.status_code >= 400 else {}
                if problem.get("type", "").rsplit("/", 1)[-1] not in WHOLE_FLOAT_REFUSALS:
                    found.failures.append(f"{label}: a whole float was not refused: {case.body!r}"[:800])
                return
            try:
                case.validate_response(response, checks=response_checks, headers=headers)
            except BaseException as failure:  # every check failure is recorded, none stops the run
                if isinstance(failure, (KeyboardInterrupt, SystemExit)):
                    raise
                found.failures.append(f"{label}: {_essence(failure)}")
            if operation.path == "/api/terminals/{id}" and response.status_code == 200:
                made = app.test_client().post(  # the run revoked its own key: make another
                    "/api/terminals",
                    json={"name": "fuzz"},
                    headers={"Authorization": f"Bearer {credentials['session']}"},
                )
                credentials["terminal"] = made.get_json()["apiKey"]
            if operation.path == "/api/auth/logout" and response.status_code == 204:
                login = app.test_client().post(
                    "/api/auth/login", json={"email": wallet.email, "password": PASSWORD}
                )
                credentials["session"] = login.get_json()["token"]

        return run

    for result in schema.get_all_operations():
        operation = result.ok()
        security = operation.definition.raw.get("security", [])
        scheme = next((name for requirement in security for name in requirement), None)
        auth = "terminal" if scheme == "terminalKey" else "session" if scheme else None
        found.operations += 1
        with contextlib.suppress(Unsatisfiable):
            runner(operation, auth)()
    return found


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_server_error_and_no_mismatch(
    backend: str, mode: str, tmp_path: Path, request: pytest.FixtureRequest, record_property: Any
) -> None:
    """Generated requests, schema-valid (positive) or not (negative), on every operation: no 5xx,
    every answer as documented, valid data never refused as malformed, invalid data refused.

    Rate limits are off for the run (a generated burst of logins would only meet 429s).
    """
    app = create_app(make_config(backend, tmp_path, request, ratelimit_enabled=False))
    app.testing = True
    try:
        found = fuzz(app, make_wallet(app.test_client()), mode)
    finally:
        dispose(app)
    summary = (
        f"schemathesis {backend} {mode}: {found.operations} operations, {found.cases} cases, "
        f"{len(found.failures)} failures, {found.whole_floats} whole-float integers refused, "
        f"statuses {dict(sorted(found.statuses.items()))}"
    )
    record_property("schemathesis", summary)
    print(summary)
    assert found.operations == len(
        {
            (m, p)
            for p, item in app.test_client().get("/openapi.json").get_json()["paths"].items()
            for m in item
        }
    )
    assert found.cases >= found.operations
    assert not found.failures, "\n\n".join(sorted(set(found.failures))[:30])
    assert not any(status >= 500 for status in found.statuses)
