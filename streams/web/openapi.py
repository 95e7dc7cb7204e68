"""The OpenAPI 3.1 document, built from the route table and the pydantic models it names.

Served at ``/api/v1/openapi.json``. Request schemas are the models' validation
schemas and response schemas their serialization schemas, so what the
document promises is what the handlers parse and answer.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from models.api import ErrorBody, Liveness

from .routes import ERROR_DESCRIPTIONS, PATH_PARAMS, Operation, Routes

_REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{(\w+)}")


def build_document(operations: list[Operation], version: str = "1") -> dict[str, Any]:
    """OpenAPI 3.1 for ``operations``."""
    keys: list[tuple[type[BaseModel], Any]] = [(ErrorBody, "serialization")]
    for op in operations:
        if op.query is not None:
            keys.append((op.query, "validation"))
        if op.body is not None:
            keys.append((op.body, "validation"))
        keys += [(model, "serialization") for model in op.responses.values() if _is_model(model)]
    unique = list(dict.fromkeys(keys))
    refs, top = models_json_schema(unique, ref_template=_REF)
    components: dict[str, Any] = dict(top.get("$defs", {}))

    def ref(model: type[BaseModel], mode: str) -> dict[str, Any]:
        return refs[(model, mode)]

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, ref, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Invite Service API",
            "version": version,
            "description": "Campaigns (tasks), their audiences (targets), execution, statistics and accounts."
                           " Every route but health and this document needs a JWT bearer token; its `sub`"
                           " is the owner, and another owner's ids answer 404.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearerAuth": []}],
    }


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _operation(op: Operation, ref: Any, components: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": _operation_id(op),
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": _parameters(op, components),
        "responses": {},
    }
    if op.description:
        doc["description"] = op.description
    if not op.auth:
        doc["security"] = []
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(op.body, "validation")}}}
    for status, answer in op.responses.items():
        doc["responses"][str(status)] = _response(answer, ref)
    for status in op.all_errors:
        doc["responses"].setdefault(str(status), {
            "description": ERROR_DESCRIPTIONS.get(status, "error"),
            "content": {"application/json": {"schema": ref(ErrorBody, "serialization")}},
        })
    return doc


def _response(answer: Any, ref: Any) -> dict[str, Any]:
    if _is_model(answer):
        return {"description": answer.__doc__.strip().splitlines()[0] if answer.__doc__ else answer.__name__,
                "content": {"application/json": {"schema": ref(answer, "serialization")}}}
    if isinstance(answer, str):
        schema = {"type": "object"} if answer == "application/json" else {"type": "string"}
        return {"description": answer, "content": {answer: {"schema": schema}}}
    return {"description": "no content"}


def _parameters(op: Operation, components: dict[str, Any]) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMS.get(name, {"type": "string"})}
        for name in _PARAM.findall(op.path)
    ]
    if op.query is not None:
        schema = components.get(op.query.__name__) or op.query.model_json_schema(ref_template=_REF)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            entry: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                     "schema": _not_null(prop)}
            if "description" in prop:
                entry["description"] = prop["description"]
            params.append(entry)
    return params


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is left out rather than null: drop the null branch of an Optional."""
    schema = {k: v for k, v in schema.items() if not (k == "default" and v is None)}
    branches = [b for b in schema.get("anyOf", []) if b != {"type": "null"}]
    if "anyOf" in schema and len(branches) == 1:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**branches[0], **rest}
    if "anyOf" in schema:
        schema["anyOf"] = branches
    return schema


def _operation_id(op: Operation) -> str:
    words = re.sub(r"[{}]", "", op.path.removeprefix("/api/v1/")).replace("/", "_").replace("-", "_").replace(".", "_")
    return f"{op.method.lower()}_{words or 'root'}"


def register(routes: Routes) -> None:
    """The document itself, built once on first request (after every module registered)."""
    cached: dict[str, Any] = {}

    async def openapi(view: Any, request: Any) -> Any:
        if "doc" not in cached:
            cached["doc"] = build_document(routes.operations)
        return view.json(cached["doc"])

    routes.add("GET", "/api/v1/openapi.json", openapi, summary="This document (OpenAPI 3.1)", tag="meta",
               responses={200: "application/json"}, auth=False)


__all__ = ["Liveness", "build_document", "register"]
