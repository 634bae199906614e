"""The OpenAPI document in the repository is the one served, lists exactly the routes, and
the live answers conform to it (a small validator for the subset of JSON Schema it uses)."""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.routing import Route

from flk.config import Config
from gateway.app import OPENAPI_PATH, create_app
from gateway.settings import load_settings
from infra.layout import Layout
from tests.gateway.helpers import read_token, signed_body

DOC: dict[str, Any] = yaml.safe_load(OPENAPI_PATH.read_text())


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        cur: Any = DOC
        for part in node["$ref"].lstrip("#/").split("/"):
            cur = cur[part]
        node = cur
    return node


def _errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    schema = _resolve(schema)
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: null not allowed"]
    out: list[str] = []
    if "allOf" in schema:
        for sub in schema["allOf"]:
            out += _errors(value, sub, where)
    if "oneOf" in schema:
        matches = [s for s in schema["oneOf"] if not _errors(value, s, where)]
        if len(matches) != 1:
            out.append(f"{where}: matches {len(matches)} of oneOf")
    kind = schema.get("type")
    types = {"object": dict, "string": str, "boolean": bool, "array": list}
    if kind in types and not isinstance(value, types[kind]):
        return [f"{where}: {value!r} is not {kind}"]
    if kind == "integer" and (type(value) is not int):
        return [f"{where}: {value!r} is not integer"]
    if kind == "number" and (type(value) not in (int, float)):
        return [f"{where}: {value!r} is not number"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} not in {schema['enum']}")
    if kind == "object":
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{where}: missing {name}")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                out += _errors(value[name], sub, f"{where}.{name}")
    return out


def check(response: httpx.Response, path: str, method: str) -> None:
    """`response` is documented for (path, method) and its JSON body matches the schema."""
    op = DOC["paths"][path][method]
    documented = op["responses"].get(str(response.status_code))
    assert documented is not None, f"{method.upper()} {path}: {response.status_code} undocumented"
    documented = _resolve(documented)
    content = documented.get("content", {})
    ctype = response.headers.get("content-type", "").split(";")[0]
    assert ctype in content, f"{path} {response.status_code}: content type {ctype}"
    for header in documented.get("headers", {}):
        if header.lower() in ("location",) and response.json().get("status") != "pending":
            continue
        assert header.lower() in response.headers, f"{path} {response.status_code}: {header}"
    if ctype == "application/json":
        errs = _errors(response.json(), content[ctype]["schema"])
        assert errs == [], errs


def test_document_lists_exactly_the_routes(tmp_path: Path) -> None:
    settings = load_settings("eu-west", 0, Config(None, environ={"FLK_HOME": str(tmp_path)}))
    app = create_app(settings)
    served = {(r.path, m.lower()) for r in app.routes if isinstance(r, Route)
              for m in (r.methods or []) if m != "HEAD"}  # fmt: skip
    documented = {(p, m) for p, ops in DOC["paths"].items() for m in ops}
    assert served == documented


@pytest.mark.platform
def test_served_document_is_the_repository_file(platform: Layout) -> None:
    url = platform.regions[0].gateway_url(0)
    assert httpx.get(url + "/openapi.yaml").text == OPENAPI_PATH.read_text()
    assert httpx.get(url + "/openapi.json").json() == DOC


@pytest.mark.platform
def test_live_answers_match_the_document(platform: Layout) -> None:
    region = platform.regions[0]
    url = region.gateway_url(1)
    sub = "/v1/pcs/submit"

    def post(body: bytes, **h: str) -> httpx.Response:
        return httpx.post(url + sub, content=body, headers=h, timeout=10)

    check(post(b"{}"), sub, "post")
    check(post(b"x" * (1024 * 1024 + 1)), sub, "post")
    check(post(b"{}", **{"X-Tenant-Id": "nobody-here"}), sub, "post")
    _, body = signed_body(platform.home, "default")
    rid = f"oa-{uuid.uuid4()}"
    pending = post(body, **{"Prefer": "respond-async", "X-Request-Id": rid})
    assert pending.status_code == 202
    check(pending, sub, "post")
    auth = {"Authorization": f"Bearer {read_token(platform.home, 'default')}"}
    check(httpx.get(url + f"/v1/requests/{rid}", headers=auth), "/v1/requests/{request_id}",
          "get")
    bad = post(b"[]", **{"X-Request-Id": f"oa-{uuid.uuid4()}"})
    check(httpx.get(url + f"/v1/requests/{bad.headers['x-request-id']}", headers=auth),
          "/v1/requests/{request_id}", "get")
    check(httpx.get(url + f"/v1/requests/nope-{uuid.uuid4()}", headers=auth),
          "/v1/requests/{request_id}", "get")
    check(httpx.get(url + "/v1/pcs/" + secrets.token_hex(32), headers=auth),
          "/v1/pcs/{pcs_id}", "get")
    check(httpx.get(url + "/v1/pcs/" + secrets.token_hex(32)), "/v1/pcs/{pcs_id}", "get")
    check(httpx.get(url + "/readyz"), "/readyz", "get")
    check(httpx.get(url + "/healthz"), "/healthz", "get")
    assert json.loads(httpx.get(url + "/openapi.json").text)["openapi"].startswith("3.")
