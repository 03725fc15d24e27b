"""The ECS-shifted listener rule's handler (stages/components/listener_rule/index.py) against moto's load
balancer and Secrets Manager, answering a real HTTP server as CloudFormation's response URL.

The point of the resource: once ECS has shifted a rule's weights, no CloudFormation update may put them
back (aws/aws-cdk#36649). Each test shifts the weights the way ECS does, then sends an update.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stages.components.ecs_listener_rules import HANDLER
from tests.conftest import load_file

REGION = "us-west-2"
CONTEXT = SimpleNamespace(log_stream_name="stream")


def load_handler() -> ModuleType:
    return load_file("listener_rule", HANDLER)


@dataclass
class Balancer:
    """A load balancer with two listeners, the blue/green pair of target groups, and two secrets."""

    elbv2: Any
    listener: str
    other_listener: str
    blue: str
    green: str
    secret: str
    rotated_secret: str


@pytest.fixture
def balancer() -> Iterator[Balancer]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
                "Subnet"
            ]["SubnetId"]
            for i, zone in enumerate("ab")
        ]
        elbv2 = boto3.client("elbv2", region_name=REGION)
        lb = elbv2.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
        blue, green = (
            elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip")[
                "TargetGroups"
            ][0]["TargetGroupArn"]
            for name in ("blue", "green")
        )
        forbidden = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "403"}}]
        listener, other = (
            elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port, DefaultActions=forbidden)[
                "Listeners"
            ][0]["ListenerArn"]
            for port in (443, 8443)
        )
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secret, rotated = (
            secrets.create_secret(Name=name, SecretString=value)["ARN"]
            for name, value in (("origin-verify", "first-value"), ("origin-verify-2", "second-value"))
        )
        yield Balancer(elbv2, listener, other, blue, green, secret, rotated)


def properties(balancer: Balancer, **changes: Any) -> dict[str, Any]:
    # CloudFormation hands a custom resource every scalar as a string.
    base = {
        "ServiceToken": "arn:aws:lambda:us-west-2:111111111111:function:rules",
        "ListenerArn": balancer.listener,
        "Priority": "10",
        "PrimaryTargetGroupArn": balancer.blue,
        "AlternateTargetGroupArn": balancer.green,
        "HeaderName": "X-Origin-Verify",
        "HeaderSecretArn": balancer.secret,
    }
    return {**base, **changes}


def request(
    kind: str, url: str, new: dict[str, Any], old: dict[str, Any] | None = None, rule: str = ""
) -> dict:
    event: dict[str, Any] = {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "stack",
        "RequestId": "request-1",
        "LogicalResourceId": "ProductionRule",
        "ResourceProperties": new,
    }
    if old is not None:
        event["OldResourceProperties"] = old
    if rule:
        event["PhysicalResourceId"] = rule
    return event


def live(balancer: Balancer, rule: str) -> dict[str, Any]:
    [found] = balancer.elbv2.describe_rules(RuleArns=[rule])["Rules"]
    return found


def weights(balancer: Balancer, rule: str) -> dict[str, int]:
    [forward] = live(balancer, rule)["Actions"]
    return {group["TargetGroupArn"]: group["Weight"] for group in forward["ForwardConfig"]["TargetGroups"]}


def header_values(balancer: Balancer, rule: str) -> list[str]:
    [condition] = [c for c in live(balancer, rule)["Conditions"] if c["Field"] == "http-header"]
    return list(condition["HttpHeaderConfig"]["Values"])


def only_default_rules(balancer: Balancer, listener: str) -> bool:
    return all(r["IsDefault"] for r in balancer.elbv2.describe_rules(ListenerArn=listener)["Rules"])


def ecs_shifts_everything_to_green(balancer: Balancer, rule: str) -> None:
    """What ECS does at the end of a deployment: the green group gets all traffic, blue none."""
    balancer.elbv2.modify_rule(
        RuleArn=rule,
        Actions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": balancer.blue, "Weight": 0},
                        {"TargetGroupArn": balancer.green, "Weight": 100},
                    ]
                },
            }
        ],
    )


def create(balancer: Balancer, url: str, received: list[dict[str, Any]], **changes: Any) -> str:
    load_handler().handler(request("Create", url, properties(balancer, **changes)), CONTEXT)
    assert received[-1]["Status"] == "SUCCESS", received[-1]
    rule = str(received[-1]["PhysicalResourceId"])
    assert received[-1]["Data"] == {"RuleArn": rule}
    return rule


def test_create_sends_everything_to_the_primary_group_and_requires_the_secret(
    balancer: Balancer, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = responses
    rule = create(balancer, url, received)
    assert rule.startswith("arn:aws:elasticloadbalancing:")
    assert live(balancer, rule)["Priority"] == "10"
    assert weights(balancer, rule) == {balancer.blue: 100, balancer.green: 0}
    assert header_values(balancer, rule) == ["first-value"]


def test_an_update_after_a_deployment_keeps_ecs_weights(
    balancer: Balancer, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    """aws/aws-cdk#36649: a rotated origin secret and a new priority change the rule, never its traffic."""
    url, received = responses
    rule = create(balancer, url, received)
    ecs_shifts_everything_to_green(balancer, rule)

    old = properties(balancer)
    new = properties(balancer, HeaderSecretArn=balancer.rotated_secret, Priority="12")
    load_handler().handler(request("Update", url, new, old, rule), CONTEXT)

    assert received[-1]["Status"] == "SUCCESS", received[-1]
    assert received[-1]["PhysicalResourceId"] == rule
    assert header_values(balancer, rule) == ["second-value"]
    assert live(balancer, rule)["Priority"] == "12"
    assert weights(balancer, rule) == {balancer.blue: 0, balancer.green: 100}


def test_a_new_listener_gets_the_live_weights(
    balancer: Balancer, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = responses
    rule = create(balancer, url, received)
    ecs_shifts_everything_to_green(balancer, rule)

    old = properties(balancer)
    new = properties(balancer, ListenerArn=balancer.other_listener)
    load_handler().handler(request("Update", url, new, old, rule), CONTEXT)

    moved = str(received[-1]["PhysicalResourceId"])
    assert received[-1]["Status"] == "SUCCESS" and moved != rule  # CloudFormation then deletes the old one
    assert weights(balancer, moved) == {balancer.blue: 0, balancer.green: 100}
    load_handler().handler(request("Delete", url, old, rule=rule), CONTEXT)
    assert received[-1]["Status"] == "SUCCESS"
    assert only_default_rules(balancer, balancer.listener)


def test_changing_the_target_groups_in_place_is_refused(
    balancer: Balancer, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = responses
    rule = create(balancer, url, received)
    ecs_shifts_everything_to_green(balancer, rule)

    old = properties(balancer)
    new = properties(balancer, PrimaryTargetGroupArn=balancer.green, AlternateTargetGroupArn=balancer.blue)
    load_handler().handler(request("Update", url, new, old, rule), CONTEXT)

    assert received[-1]["Status"] == "FAILED"
    assert "target groups" in received[-1]["Reason"] and "web-deployments.md" in received[-1]["Reason"]
    assert received[-1]["PhysicalResourceId"] == rule
    assert weights(balancer, rule) == {balancer.blue: 0, balancer.green: 100}


def test_a_path_rule_and_deletes(balancer: Balancer, responses: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = responses
    test_rule = create(
        balancer,
        url,
        received,
        ListenerArn=balancer.other_listener,
        Priority="1",
        HeaderName="",
        HeaderSecretArn="",
        PathPatterns=["/*"],
    )
    [condition] = live(balancer, test_rule)["Conditions"]
    assert condition["Field"] == "path-pattern" and condition["PathPatternConfig"]["Values"] == ["/*"]

    handler = load_handler()
    handler.handler(request("Delete", url, properties(balancer), rule=test_rule), CONTEXT)
    handler.handler(request("Delete", url, properties(balancer), rule=test_rule), CONTEXT)  # already gone
    # A create that failed left no rule: its delete touches nothing.
    handler.handler(request("Delete", url, properties(balancer), rule="failed-request-0"), CONTEXT)
    assert [r["Status"] for r in received[-3:]] == ["SUCCESS", "SUCCESS", "SUCCESS"]
    assert only_default_rules(balancer, balancer.other_listener)


def test_a_failed_create_is_reported_with_a_placeholder_id(
    balancer: Balancer, responses: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = responses
    load_handler().handler(request("Create", url, properties(balancer, HeaderName="")), CONTEXT)
    assert received[-1]["Status"] == "FAILED"
    assert "needs a condition" in received[-1]["Reason"]
    assert received[-1]["PhysicalResourceId"] == "failed-request-1"
    assert received[-1]["Data"] == {}
