"""template.yaml matches the code: one function per route group, handlers that exist, a lean image."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import functions.handlers as handlers
from functions.app import ROUTE_GROUPS

ROOT = Path(__file__).resolve().parents[2]


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):  # CloudFormation short tags (!Ref, !GetAtt, !Sub) as plain values
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}


_Loader.add_multi_constructor("!", _tag)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)


def _functions(template: dict) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def test_one_function_per_route_group(template) -> None:
    commands = {f["Properties"]["ImageConfig"]["Command"][0] for f in _functions(template).values()}
    for group in ROUTE_GROUPS:
        assert f"functions.handlers.{group}" in commands, f"route group {group!r} has no function in template.yaml"
    for cmd in commands:
        name = cmd.rsplit(".", 1)[1]
        assert callable(getattr(handlers, name)), cmd


def _pattern(path: str) -> re.Pattern[str]:
    """An API Gateway route path as a regex ({proxy+} greedy, {name} one segment)."""
    rx = re.sub(r"\{[^/}]+\+\}", ".+", path)
    rx = re.sub(r"\{[^/}]+\}", "[^/]+", rx)
    return re.compile(f"^{rx}$")


def _routes(app) -> list[tuple[str, str]]:
    """(METHOD, path with parameters filled in) of every /api route of an app, from its OpenAPI document."""
    return [(m.upper(), re.sub(r"\{[^/}]+\}", "x", path)) for path, ops in app.openapi()["paths"].items()
            if path.startswith("/api/") for m in ops]


def test_http_routes_point_at_their_group(template) -> None:
    """Every API Gateway route reaches a function whose app serves it, and every API route has a gateway route."""
    from functions.app import create_app

    covered: set[tuple[str, str]] = set()
    for name, fn in _functions(template).items():
        group = fn["Properties"]["ImageConfig"]["Command"][0].rsplit(".", 1)[1]
        if group not in ROUTE_GROUPS:
            continue
        routes = _routes(create_app([group]))
        for ev in fn["Properties"].get("Events", {}).values():
            if ev["Type"] != "HttpApi":
                continue
            path, method = ev["Properties"]["Path"], ev["Properties"]["Method"]
            assert path.startswith("/api/"), (name, path)
            served = [(m, p) for m, p in routes if m == method and _pattern(path).match(p)]
            assert served, f"{name}: {method} {path} reaches group {group!r}, which serves no such route"
            covered.update(served)
    for group in ROUTE_GROUPS:
        for m, p in _routes(create_app([group])):
            assert (m, p) in covered, f"{m} {p} (group {group}) has no API Gateway route"


def test_image_and_installs_are_pinned() -> None:
    """Every dependency in pyproject (runtime and extras) has an exact version in constraints.txt, and the Lambda
    image and `make` install with it."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [*project["dependencies"], *(d for ds in project["optional-dependencies"].values() for d in ds)]
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    for dep in names:
        name = re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0]
        if name == "growthlens":
            continue
        assert pins.get(re.sub(r"[-_.]+", "-", name).lower()), f"{name} is not pinned in constraints.txt"
    assert "-c " in (ROOT / "infra" / "Dockerfile").read_text() and "constraints.txt" in (
        ROOT / "infra" / "Dockerfile").read_text()
    assert "-c constraints.txt" in (ROOT / "Makefile").read_text()


def test_runtime_and_bucket_hardening(template) -> None:
    docker = (ROOT / "infra" / "Dockerfile").read_text()
    assert re.search(r"FROM public\.ecr\.aws/lambda/python:3\.1[23]", docker)
    copied = re.findall(r"^COPY (\S+)", docker, flags=re.M)
    assert set(copied) <= {"pyproject.toml", "core", "functions"}, copied  # README.md rides with pyproject
    bucket = template["Resources"]["DataBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {k: True for k in (
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    policy = json.dumps(template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"])
    assert "aws:SecureTransport" in policy and '"Deny"' in policy


def test_runtime_dependencies_carry_no_dashboard() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    for heavy in ("panel", "holoviews", "hvplot", "bokeh", "pytest", "playwright"):
        assert heavy not in runtime


def test_sample_events_are_served(tmp_path, monkeypatch) -> None:
    """Every sample event for `sam local invoke` gets a real answer (not a 5xx) from its handler."""
    monkeypatch.setenv("GROWTHLENS_DATA_DIR", str(tmp_path))
    from functions import deps

    deps._store.cache_clear()
    for path in sorted((ROOT / "infra" / "events").glob("*.json")):
        event = json.loads(path.read_text())
        group = event["rawPath"].split("/")[2]
        resp = handlers.handler_for(group if group in ROUTE_GROUPS else "health")(event, None)
        assert resp["statusCode"] < 500, (path.name, resp)
    deps._store.cache_clear()


def test_refreshes_are_serialised_per_workspace_and_the_worker_is_bounded(template) -> None:
    """The jobs queue is FIFO (the code sends one message group per workspace and kind), its dead-letter queue
    too (SQS requires it), the worker's concurrency is bounded, and request bodies stay under API Gateway's 10 MB."""
    res = template["Resources"]
    assert res["JobsQueue"]["Properties"].get("FifoQueue") is True
    assert res["JobsDeadLetterQueue"]["Properties"].get("FifoQueue") is True
    assert 1 <= int(res["JobWorkerFunction"]["Properties"]["ReservedConcurrentExecutions"]) <= 10
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert int(env["GROWTHLENS_MAX_UPLOAD_BYTES"]) <= 10 * 1000 * 1000
    assert int(env["GROWTHLENS_MAX_WEBHOOK_BYTES"]) <= 1 << 20
    assert res["SyncFunction"]["Properties"]["Environment"]["Variables"]["GROWTHLENS_CDP_REFRESH"] == "job"
