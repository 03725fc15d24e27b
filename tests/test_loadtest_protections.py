"""The load tests never trip the app's own protections: every shape and profile, as configured, stays
inside the login throttling the backend runs with and the WAF rate rules the stages deploy.

Both sides are read from where they are configured: the backend's settings (its defaults, and whatever the
synthesized web task sets), the synthesized staging WAF rules, and the shapes and the pipeline's load-test
step. loadtests/protections.py computes the worst case (see its docstring for what that assumes) and mirrors
the limits for the load-test step, which does not install the CDK: the mirror must agree too.
"""

from __future__ import annotations

from typing import Any

import pytest

from app.core.config import Settings
from loadtests import protections, shapes
from loadtests.common.personas import PERSONAS
from pipeline.commands import LOAD_TEST
from stages.components.backend_settings import CLIENT_ADDRESS_HEADER
from tests.templates import StageTemplates, Synthesized

LOGIN_SETTINGS = {
    "LOGIN_THROTTLE_WINDOW_SECONDS": "login_window_s",
    "LOGIN_MAX_ATTEMPTS_PER_ACCOUNT": "login_per_account",
    "LOGIN_MAX_ATTEMPTS_PER_ADDRESS": "login_per_address",
}
WAF_RULES = {"AuthRateLimit": ("waf_auth", "/api/v1/auth/"), "ApiRateLimit": ("waf_api", "/api/")}


def web_environment(stage: StageTemplates) -> dict[str, Any]:
    for task in stage.resources("App", "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            if container["Name"] == "app":
                return {e["Name"]: e["Value"] for e in container.get("Environment", [])}
    raise AssertionError("no web task")


def backend_limits(environment: dict[str, Any]) -> dict[str, int]:
    """The login throttling the backend runs with: its defaults, unless the environment sets them."""
    defaults = {name: Settings.model_fields[name].default for name in LOGIN_SETTINGS}
    return {field: int(environment.get(name, defaults[name])) for name, field in LOGIN_SETTINGS.items()}


def deployed_limits(stage: StageTemplates) -> protections.Limits:
    """The staging stage's limits, as synthesized: the web task's settings and the WAF's rate rules."""
    [acl] = stage.resources("Edge", "AWS::WAFv2::WebACL").values()
    waf: dict[str, int] = {}
    windows = set()
    for rule in acl["Properties"]["Rules"]:
        rate = rule["Statement"].get("RateBasedStatement")
        if rate is None:
            continue
        field, path = WAF_RULES[rule["Name"]]
        match = rate["ScopeDownStatement"]["ByteMatchStatement"]
        assert (match["SearchString"], match["PositionalConstraint"], rate["AggregateKeyType"]) == (
            path,
            "STARTS_WITH",
            "IP",  # one address: every load generator of the run
        )
        waf[field] = int(rate["Limit"])
        windows.add(int(rate["EvaluationWindowSec"]))
    [window] = windows
    return protections.Limits(**backend_limits(web_environment(stage)), waf_window_s=window, **waf)


@pytest.fixture(scope="module")
def staging(synthesized: Synthesized) -> StageTemplates:
    return synthesized.stages["staging"]


def test_the_mirrored_limits_are_the_configured_ones(staging: StageTemplates) -> None:
    assert protections.TARGETS["staging"] == deployed_limits(staging)
    assert protections.TARGETS["local"] == protections.Limits(**backend_limits({}))  # `make up`: defaults
    # The address counted is the one CloudFront saw: all of a run's load generators share it.
    assert web_environment(staging)["CLIENT_ADDRESS_HEADER"] == CLIENT_ADDRESS_HEADER


@pytest.mark.parametrize("target", ["local", "staging"])
@pytest.mark.parametrize("shape", sorted(shapes.BUILDERS))
def test_every_shape_stays_inside_every_protection(shape: str, target: str, staging: StageTemplates) -> None:
    limits = deployed_limits(staging) if target == "staging" else protections.Limits(**backend_limits({}))
    found = protections.evaluate(protections.Plan(shapes.build(shape), personas=PERSONAS), limits)
    assert len(found) == 4
    assert all(c.inside for c in found), [c.describe() for c in found]


def test_the_pipelines_load_test_stays_inside_stagings_protections(staging: StageTemplates) -> None:
    """The step as the pipeline runs it (its shape and run time, fresh accounts), with the 2x headroom
    of the login limits that a retried step within the same window would need."""
    env = LOAD_TEST.env
    shape = shapes.build(env["LOAD_SHAPE"], shapes.parse_duration(env["LOAD_RUN_TIME"]))
    limits = deployed_limits(staging)
    found = {c.name: c for c in protections.evaluate(protections.Plan(shape), limits)}
    assert all(c.inside for c in found.values()), [c.describe() for c in found.values()]
    assert 2 * found["login attempts per address"].worst <= limits.login_per_address
    assert 2 * found["WAF requests to /api/v1/auth/ per IP"].worst <= (limits.waf_auth or 0)
