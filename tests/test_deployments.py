"""Gradual deploys of the web service: strategy and bake times, the blue/green pair and its rules, the
smoke-check hook and its narrow rights, and alarms and scaling that cover both target groups."""

from __future__ import annotations

import json
from typing import Any

from stages.components.deployment_hook import ATTEMPTS, HANDLER, RETRY_SECONDS, VPC_ACCESS
from stages.components.ecs_listener_rules import HANDLER as RULE_HANDLER
from stages.components.ecs_listener_rules import RESOURCE_TYPE
from stages.config import PROD, STAGING
from tests.templates import StageTemplates, subnet_tiers
from tests.test_services import permissions, service

LISTENER_RULE = "AWS::ElasticLoadBalancingV2::ListenerRule"


def rights(stage: StageTemplates, role: str) -> set[tuple[str, str]]:
    """The role's (action, resource) pairs, each resource as JSON (references are dicts)."""
    return {(action, json.dumps(r, sort_keys=True)) for action, r in permissions(stage, "App", role)}


def js(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def resource(stage: StageTemplates, logical_id: str) -> dict[str, Any]:
    found: dict[str, Any] = stage.raw["App"]["Resources"][logical_id]
    return found


def ref(value: Any) -> str:
    """The logical id a `Ref` or `Fn::GetAtt` points at."""
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


def target_groups(stage: StageTemplates) -> tuple[str, str]:
    """(primary, alternate) target group logical ids, as the web service names them."""
    [balanced] = service(stage, "app")["LoadBalancers"]
    return ref(balanced["TargetGroupArn"]), ref(balanced["AdvancedConfiguration"]["AlternateTargetGroupArn"])


def listeners(stage: StageTemplates) -> dict[int, str]:
    return {
        listener["Properties"]["Port"]: logical_id
        for logical_id, listener in stage.resources("App", "AWS::ElasticLoadBalancingV2::Listener").items()
    }


def hook_function(stage: StageTemplates) -> str:
    [hook] = service(stage, "app")["DeploymentConfiguration"]["LifecycleHooks"]
    return ref(hook["HookTargetArn"])


def alarms(stage: StageTemplates) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"].removeprefix(f"yoctogram-{stage.config.name}-"): a["Properties"]
        for a in stage.resources("App", "AWS::CloudWatch::Alarm").values()
    }


def metric_target_groups(alarm: dict[str, Any]) -> list[str]:
    """The target groups (logical ids) whose metrics a metric-math alarm reads."""
    found = []
    for query in alarm.get("Metrics", []):
        for dimension in query.get("MetricStat", {}).get("Metric", {}).get("Dimensions", []):
            if dimension["Name"] == "TargetGroup":
                found.append(ref(dimension["Value"]))
    return found


# --- the strategy ---------------------------------------------------------------------------------------
def test_strategy_and_bake_times_from_config(stage: StageTemplates) -> None:
    deployment = stage.config.web_deployment
    config = service(stage, "app")["DeploymentConfiguration"]
    assert config["Strategy"] == deployment.strategy
    assert config["BakeTimeInMinutes"] == deployment.bake_minutes
    if deployment.strategy == "CANARY":
        assert config["CanaryConfiguration"] == {
            "CanaryPercent": deployment.shift_percent,
            "CanaryBakeTimeInMinutes": deployment.step_bake_minutes,
        }
        assert "LinearConfiguration" not in config
    else:
        assert config["LinearConfiguration"] == {
            "StepPercent": deployment.shift_percent,
            "StepBakeTimeInMinutes": deployment.step_bake_minutes,
        }
        assert "CanaryConfiguration" not in config
    # The circuit breaker still stops new tasks that never get healthy.
    assert config["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}


def test_staging_runs_prods_strategy_with_shorter_waits() -> None:
    staging, prod = STAGING.web_deployment, PROD.web_deployment
    assert (staging.strategy, staging.shift_percent) == (prod.strategy, prod.shift_percent)
    assert staging.step_bake_minutes < prod.step_bake_minutes
    assert staging.bake_minutes < prod.bake_minutes
    assert staging.longest_minutes <= 15 < prod.longest_minutes


# --- the blue/green pair and the rules ECS shifts ---------------------------------------------------------
def test_the_pair_and_the_rules_ecs_shifts(stage: StageTemplates) -> None:
    primary, alternate = target_groups(stage)
    assert primary != alternate
    assert set(stage.resources("App", "AWS::ElasticLoadBalancingV2::TargetGroup")) == {primary, alternate}
    for group in (primary, alternate):  # the same health check and drain on both
        properties = resource(stage, group)["Properties"]
        assert (properties["Port"], properties["TargetType"], properties["HealthCheckPath"]) == (
            8000,
            "ip",
            "/api/v1/health",
        )
    [balanced] = service(stage, "app")["LoadBalancers"]
    advanced = balanced["AdvancedConfiguration"]
    by_port = listeners(stage)
    assert set(by_port) == {443, 8443}

    production = resource(stage, ref(advanced["ProductionListenerRule"]))
    test = resource(stage, ref(advanced["TestListenerRule"]))
    assert production["Type"] == test["Type"] == RESOURCE_TYPE
    assert production["Properties"]["ListenerArn"] == {"Ref": by_port[443]}
    assert test["Properties"]["ListenerArn"] == {"Ref": by_port[8443]}
    for rule in (production, test):
        assert rule["Properties"]["PrimaryTargetGroupArn"] == {"Ref": primary}
        assert rule["Properties"]["AlternateTargetGroupArn"] == {"Ref": alternate}
    # Production traffic still needs CloudFront's secret header; the test listener takes any path.
    assert production["Properties"]["HeaderName"] == "X-Origin-Verify"
    [secret] = [
        k
        for k, s in stage.resources("App", "AWS::SecretsManager::Secret").items()
        if s["Properties"]["Name"] == f"yoctogram/{stage.config.name}/origin-verify"
    ]
    assert production["Properties"]["HeaderSecretArn"] == {"Ref": secret}
    assert test["Properties"]["PathPatterns"] == ["/*"]

    role = resource(stage, ref(advanced["RoleArn"]))["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ecs.amazonaws.com"}
    assert "AmazonECSInfrastructureRolePolicyForLoadBalancers" in str(role["ManagedPolicyArns"])


def test_no_stack_update_can_move_production_traffic(stage: StageTemplates) -> None:
    """aws/aws-cdk#36649: after a deployment, ECS's weights may send everything to the group the template
    calls alternate. CloudFormation rewrites the forward action of any rule or listener it updates, so no
    CloudFormation-owned rule or listener default may forward to the service's groups: the rules are
    custom resources whose properties hold no action (the function sets one at creation only; its update
    path is tested against a load balancer in tests/test_listener_rule.py)."""
    assert stage.resources("App", LISTENER_RULE) == {}
    for listener in stage.resources("App", "AWS::ElasticLoadBalancingV2::Listener").values():
        assert [action["Type"] for action in listener["Properties"]["DefaultActions"]] == ["fixed-response"]
    rules = stage.resources("App", RESOURCE_TYPE)
    assert len(rules) == 2
    for rule in rules.values():
        assert not {"Actions", "Weight", "Weights", "ForwardConfig"} & set(rule["Properties"])
        function = resource(stage, ref(rule["Properties"]["ServiceToken"]))["Properties"]
        assert function["Code"]["ZipFile"] == RULE_HANDLER.read_text()


def test_the_rule_function_touches_only_this_load_balancers_rules(stage: StageTemplates) -> None:
    [rule] = list(stage.resources("App", RESOURCE_TYPE).values())[:1]
    role = ref(resource(stage, ref(rule["Properties"]["ServiceToken"]))["Properties"]["Role"])
    allowed = rights(stage, role)
    by_port = listeners(stage)
    assert {r for a, r in allowed if a == "elasticloadbalancing:CreateRule"} == {
        js({"Ref": by_port[443]}),
        js({"Ref": by_port[8443]}),
    }
    [balancer] = stage.resources("App", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    config = stage.config
    rules_arn = {
        "Fn::Join": [
            "",
            [
                f"arn:aws:elasticloadbalancing:{config.region}:{config.account}:listener-rule/",
                {"Fn::GetAtt": [balancer, "LoadBalancerFullName"]},
                "/*",
            ],
        ]
    }
    for action in ("ModifyRule", "SetRulePriorities", "DeleteRule"):
        assert {r for a, r in allowed if a == f"elasticloadbalancing:{action}"} == {js(rules_arn)}
    assert {a for a, r in allowed if r == js("*")} == {"elasticloadbalancing:DescribeRules"}
    elb_actions = {a for a, _ in allowed if a.startswith("elasticloadbalancing:")}
    assert elb_actions == {
        "elasticloadbalancing:CreateRule",
        "elasticloadbalancing:ModifyRule",
        "elasticloadbalancing:SetRulePriorities",
        "elasticloadbalancing:DeleteRule",
        "elasticloadbalancing:DescribeRules",
    }


# --- the hook ----------------------------------------------------------------------------------------
def test_the_hook_runs_after_test_traffic_shifts_with_a_bounded_wait(stage: StageTemplates) -> None:
    [hook] = service(stage, "app")["DeploymentConfiguration"]["LifecycleHooks"]
    assert hook["LifecycleStages"] == ["POST_TEST_TRAFFIC_SHIFT"]
    assert hook["TimeoutConfiguration"] == {
        "TimeoutInMinutes": stage.config.web_deployment.hook_timeout_minutes,
        "Action": "ROLLBACK",
    }
    function = resource(stage, ref(hook["HookTargetArn"]))["Properties"]
    assert function["Code"]["ZipFile"] == HANDLER.read_text()  # stdlib-only, inline: no bundling
    assert function["Runtime"].startswith("python3")
    [balancer] = stage.resources("App", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    variables = function["Environment"]["Variables"]
    assert variables == {
        "LOAD_BALANCER": {"Fn::GetAtt": [balancer, "LoadBalancerFullName"]},
        "TEST_PORT": "8443",
        "SERVER_NAME": stage.config.origin_domain_name,
        "HOLD_PARAMETER": {"Ref": hold_parameter(stage)},
        "CONTAINER_NAME": "app",
        "ATTEMPTS": str(ATTEMPTS),
        "RETRY_SECONDS": str(RETRY_SECONDS),
    }
    # ECS invokes it with a role that may invoke this function, nothing else.
    invoke_role = ref(hook["RoleArn"])
    trust = resource(stage, invoke_role)["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "ecs.amazonaws.com"}]
    assert rights(stage, invoke_role) == {
        ("lambda:InvokeFunction", js({"Fn::GetAtt": [ref(hook["HookTargetArn"]), "Arn"]}))
    }


def hold_parameter(stage: StageTemplates) -> str:
    [parameter] = [
        k
        for k, p in stage.resources("App", "AWS::SSM::Parameter").items()
        if p["Properties"]["Name"] == f"/yoctogram/{stage.config.name}/web-deployment-hold"
    ]
    assert resource(stage, parameter)["Properties"]["Value"] == "release"
    return parameter


def test_the_hooks_rights_are_narrow(stage: StageTemplates) -> None:
    function = resource(stage, hook_function(stage))["Properties"]
    role = ref(function["Role"])
    config = stage.config
    allowed = rights(stage, role)
    log_group = ref(function["LoggingConfig"]["LogGroup"])
    assert {(a, r) for a, r in allowed if a.startswith("logs:")} == {
        (action, js({"Fn::GetAtt": [log_group, "Arn"]}))
        for action in ("logs:CreateLogStream", "logs:PutLogEvents")
    }
    parameter = {
        "Fn::Join": [
            "",
            [f"arn:aws:ssm:{config.region}:{config.account}:parameter", {"Ref": hold_parameter(stage)}],
        ]
    }
    revisions = f"arn:aws:ecs:{config.region}:{config.account}:service-revision/yoctogram-{config.name}/*"
    assert {(a, r) for a, r in allowed if not a.startswith(("ssm:", "logs:"))} == {
        *((action, js("*")) for action in VPC_ACCESS),
        ("ecs:DescribeServiceRevisions", js(revisions)),
    }
    assert {r for a, r in allowed if a.startswith("ssm:")} == {js(parameter)}
    assert {a for a, _ in allowed if a.startswith("ssm:")} <= {
        "ssm:DescribeParameters",
        "ssm:GetParameter",
        "ssm:GetParameters",
        "ssm:GetParameterHistory",
    }


def test_only_the_hook_reaches_the_test_listener(stage: StageTemplates) -> None:
    function = resource(stage, hook_function(stage))["Properties"]
    tiers = subnet_tiers(stage)
    subnets = [stage.resolve("App", s)[1]["Ref"] for s in function["VpcConfig"]["SubnetIds"]]
    assert sorted(tiers[s] for s in subnets) == ["Private", "Private"]
    [hook_group] = [ref(g) for g in function["VpcConfig"]["SecurityGroupIds"]]
    [balancer] = stage.resources("App", "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    [balancer_group] = [ref(g) for g in balancer["Properties"]["SecurityGroups"]]
    ingress = [
        r["Properties"]
        for r in stage.resources("App", "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [balancer_group, "GroupId"]}
    ]
    on_test_port = [r for r in ingress if r["FromPort"] <= 8443 <= r["ToPort"]]
    assert [(r["SourceSecurityGroupId"], r["ToPort"]) for r in on_test_port] == [
        ({"Fn::GetAtt": [hook_group, "GroupId"]}, 8443)
    ]
    assert not [r for r in ingress if "CidrIp" in r or "CidrIpv6" in r]
    egress = resource(stage, hook_group)["Properties"]["SecurityGroupEgress"]
    assert [(e["CidrIp"], e["FromPort"], e["ToPort"]) for e in egress] == [("0.0.0.0/0", 443, 443)]


# --- alarms, dashboard and scaling over both target groups ---------------------------------------------
def test_deployment_alarms_judge_each_target_groups_new_revision(stage: StageTemplates) -> None:
    deployment = stage.config.web_deployment
    found = alarms(stage)
    primary, alternate = target_groups(stage)
    for label, group in (("a", primary), ("b", alternate)):
        ratio, p95 = found[f"revision-5xx-ratio-{label}"], found[f"revision-p95-{label}"]
        assert set(metric_target_groups(ratio)) == set(metric_target_groups(p95)) == {group}
        assert (ratio["Threshold"], p95["Threshold"]) == (
            deployment.rollback_5xx_percent,
            deployment.rollback_p95_seconds,
        )
        for alarm in (ratio, p95):
            assert alarm["EvaluationPeriods"] == deployment.rollback_evaluation_minutes
            assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
            [expression] = [q["Expression"] for q in alarm["Metrics"] if "Expression" in q]
            # Too few requests to judge: the expression is 0, never over the threshold.
            assert expression.startswith(
                f"IF(requests_{label} >= {deployment.rollback_min_requests_per_minute},"
            )
        statistics = {q["Id"]: q["MetricStat"]["Stat"] for q in p95["Metrics"] if "MetricStat" in q}
        assert statistics == {f"requests_{label}": "Sum", f"latency_{label}": "p95"}
    names = service(stage, "app")["DeploymentConfiguration"]["Alarms"]["AlarmNames"]
    prefix = f"yoctogram-{stage.config.name}-"
    assert set(names) == {
        prefix + name
        for name in (
            "revision-5xx-ratio-a",
            "revision-5xx-ratio-b",
            "revision-p95-a",
            "revision-p95-b",
            "unhealthy-hosts",
        )
    }


def test_service_wide_alarms_cover_both_target_groups(stage: StageTemplates) -> None:
    found = alarms(stage)
    [balancer] = stage.resources("App", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    for name in ("target-5xx", "target-response-time"):
        # The load balancer's own figures: every target group it forwards to.
        assert found[name]["Dimensions"] == [
            {"Name": "LoadBalancer", "Value": {"Fn::GetAtt": [balancer, "LoadBalancerFullName"]}}
        ], name
    assert sorted(metric_target_groups(found["unhealthy-hosts"])) == sorted(target_groups(stage))


def test_request_scaling_counts_both_target_groups(stage: StageTemplates) -> None:
    [policy] = [
        p["Properties"]
        for p in stage.resources("App", "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if "CustomizedMetricSpecification" in p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    ]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == stage.config.scaling_requests_per_target
    queries = {q["Id"]: q for q in tracking["CustomizedMetricSpecification"]["Metrics"]}
    assert sorted(metric_target_groups({"Metrics": list(queries.values())})) == sorted(target_groups(stage))
    assert queries["tasks"]["MetricStat"]["Metric"]["MetricName"] == "DesiredTaskCount"
    assert queries["perTask"] == {
        "Id": "perTask",
        "Expression": "(FILL(a, 0) + FILL(b, 0)) / tasks",
        "Label": "Requests per task (both target groups)",
        "ReturnData": True,
    }
    # No predefined ALBRequestCountPerTarget policy: it would follow one group only.
    assert "ALBRequestCountPerTarget" not in str(
        stage.resources("App", "AWS::ApplicationAutoScaling::ScalingPolicy")
    )


def test_dashboard_shows_both_target_groups(stage: StageTemplates) -> None:
    [dashboard] = stage.resources("App", "AWS::CloudWatch::Dashboard").values()
    body = str(dashboard["Properties"]["DashboardBody"])
    for group in target_groups(stage):
        assert group in body
    for title in ("Requests by target group", "5xx % by target group", "p95 (s) by target group"):
        assert title in body
