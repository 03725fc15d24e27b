"""Alarms, their topic and the dashboard."""

from __future__ import annotations

from typing import Any

from tests.templates import StageTemplates, Synthesized


def alarms(stage: StageTemplates) -> dict[str, dict[str, Any]]:
    """Alarm properties by alarm name (names are set from config, so they are stable)."""
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in stage.resources("App", "AWS::CloudWatch::Alarm").values()
    }


def test_alarms_and_thresholds(stage: StageTemplates) -> None:
    config = stage.config
    thresholds = config.alarm_thresholds
    prefix = f"yoctogram-{config.name}-"
    expected = {
        "target-5xx": ("HTTPCode_Target_5XX_Count", "AWS/ApplicationELB", thresholds.target_5xx_per_minute),
        "load-balancer-5xx": ("HTTPCode_ELB_5XX_Count", "AWS/ApplicationELB", thresholds.elb_5xx_per_minute),
        "target-response-time": (
            "TargetResponseTime",
            "AWS/ApplicationELB",
            thresholds.target_response_time_p95_seconds,
        ),
        "unhealthy-hosts": ("UnHealthyHostCount", "AWS/ApplicationELB", 1),
        "service-cpu": ("CPUUtilization", "AWS/ECS", thresholds.service_cpu_percent),
        "database-capacity-at-max": ("ServerlessDatabaseCapacity", "AWS/RDS", config.aurora_max_acu),
        "event-queue-age": (
            "ApproximateAgeOfOldestMessage",
            "AWS/SQS",
            thresholds.queue_oldest_message_seconds,
        ),
        "event-dead-letters": ("ApproximateNumberOfMessagesVisible", "AWS/SQS", 1),
        "compressor-failures": ("ApproximateNumberOfMessagesVisible", "AWS/SQS", 1),
        "pending-cleanup-failed": ("FailedInvocations", "AWS/Events", 1),
        # The web service's two target groups, each judged on its own (tests/test_deployments.py).
        **{
            f"revision-5xx-ratio-{group}": (
                "HTTPCode_Target_5XX_Count",
                "AWS/ApplicationELB",
                config.web_deployment.rollback_5xx_percent,
            )
            for group in "ab"
        },
        **{
            f"revision-p95-{group}": (
                "TargetResponseTime",
                "AWS/ApplicationELB",
                config.web_deployment.rollback_p95_seconds,
            )
            for group in "ab"
        },
    }
    found = alarms(stage)
    assert set(found) == {prefix + name for name in expected}
    for name, (metric, namespace, threshold) in expected.items():
        alarm = found[prefix + name]
        # A plain metric, or metric math whose metrics include it.
        metrics = [
            (q["MetricStat"]["Metric"]["MetricName"], q["MetricStat"]["Metric"]["Namespace"])
            for q in alarm.get("Metrics", [])
            if "MetricStat" in q
        ] or [(alarm["MetricName"], alarm["Namespace"])]
        assert (metric, namespace) in metrics, name
        assert alarm["Threshold"] == threshold, name
        assert alarm["TreatMissingData"] == "notBreaching"
        assert len(alarm["AlarmActions"]) == 1 and alarm["OKActions"] == alarm["AlarmActions"]
    assert found[prefix + "target-response-time"]["ExtendedStatistic"] == "p95"


def test_dead_letter_alarm_watches_the_dead_letter_queue(stage: StageTemplates) -> None:
    [dlq_id] = [
        k
        for k, q in stage.resources("Data", "AWS::SQS::Queue").items()
        if "RedrivePolicy" not in q["Properties"]
    ]
    alarm = alarms(stage)[f"yoctogram-{stage.config.name}-event-dead-letters"]
    [dimension] = alarm["Dimensions"]
    assert dimension["Name"] == "QueueName"
    assert stage.owner("App", dimension["Value"]) == ("Data", dlq_id)


def test_compressor_failure_alarm_watches_its_failure_queue(stage: StageTemplates) -> None:
    [failures] = stage.resources("App", "AWS::SQS::Queue")
    alarm = alarms(stage)[f"yoctogram-{stage.config.name}-compressor-failures"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [failures, "QueueName"]}}]
    assert alarm["EvaluationPeriods"] == 1


def test_alarm_topic_encrypted_and_tls_only(stage: StageTemplates) -> None:
    [topic] = stage.resources("App", "AWS::SNS::Topic").values()
    key_ref = topic["Properties"]["KmsMasterKeyId"]
    [key_id] = stage.resources("App", "AWS::KMS::Key")
    assert key_ref == {"Fn::GetAtt": [key_id, "Arn"]} or key_ref == {"Ref": key_id}
    key = stage.resources("App", "AWS::KMS::Key")[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    services: set[str] = set()
    for statement in key["KeyPolicy"]["Statement"]:
        service = statement["Principal"].get("Service", [])
        services |= {service} if isinstance(service, str) else set(service)
    # CloudWatch alarms and EventBridge (a failed cleanup run) publish to the topic.
    assert services == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    [policy] = stage.resources("App", "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_dashboard(stage: StageTemplates) -> None:
    [dashboard] = stage.resources("App", "AWS::CloudWatch::Dashboard").values()
    body = str(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "HTTPCode_Target_5XX_Count",
        "TargetResponseTime",
        "CPUUtilization",
        "ServerlessDatabaseCapacity",
    ):
        assert metric in body


def test_cleanup_alarm_watches_the_schedule(stage: StageTemplates) -> None:
    [rule_id] = [
        k
        for k, r in stage.resources("App", "AWS::Events::Rule").items()
        if "ScheduleExpression" in r["Properties"]
    ]
    alarm = alarms(stage)[f"yoctogram-{stage.config.name}-pending-cleanup-failed"]
    assert alarm["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": rule_id}}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 3600, 1)


# Who publishes to a topic, by what points at it: an alarm action, an EventBridge rule's target, a CodeStar
# notification rule's target.
PUBLISHERS = {
    ("AWS::CloudWatch::Alarm", "AlarmActions"): "cloudwatch.amazonaws.com",
    ("AWS::CloudWatch::Alarm", "OKActions"): "cloudwatch.amazonaws.com",
    ("AWS::CloudWatch::Alarm", "InsufficientDataActions"): "cloudwatch.amazonaws.com",
    ("AWS::Events::Rule", "Targets"): "events.amazonaws.com",
    ("AWS::CodeStarNotifications::NotificationRule", "Targets"): "codestar-notifications.amazonaws.com",
}


def topic_publishers(template: dict[str, Any]) -> dict[str, set[str]]:
    """Topic logical id -> the services that some resource of the template makes publish to it."""
    topics = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"}
    found: dict[str, set[str]] = {topic: set() for topic in topics}
    for resource in template["Resources"].values():
        for (kind, field), service in PUBLISHERS.items():
            if resource["Type"] != kind:
                continue
            for target in resource["Properties"].get(field, []):
                if isinstance(target, dict) and ("Arn" in target or "TargetAddress" in target):
                    target = target.get("Arn", target.get("TargetAddress"))
                ref = target.get("Ref") if isinstance(target, dict) else None
                if ref in topics:
                    found[ref].add(service)
    return found


def service_allowed(statements: list[dict[str, Any]], service: str, action: str) -> bool:
    for statement in statements:
        principals = statement.get("Principal", {})
        services = principals.get("Service", []) if isinstance(principals, dict) else []
        services = [services] if isinstance(services, str) else services
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if (
            statement["Effect"] == "Allow"
            and service in services
            and any(a == action or (a.endswith("*") and action.startswith(a[:-1])) for a in actions)
        ):
            return True
    return False


def every_template(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    found = {f"{name}/{unit}": t for name, s in synthesized.stages.items() for unit, t in s.raw.items()}
    assert synthesized.top is not None
    return {**found, **synthesized.top.raw}


def test_every_topic_lets_its_publishers_publish(synthesized: Synthesized) -> None:
    """A topic policy replaces SNS's default, and an encrypted topic needs its key: whatever publishes to a
    topic (alarms, rules, notification rules) must be allowed by both, or its messages vanish."""
    checked = 0
    for name, template in every_template(synthesized).items():
        resources = template["Resources"]
        for topic, services in topic_publishers(template).items():
            policies = [
                r["Properties"]["PolicyDocument"]["Statement"]
                for r in resources.values()
                if r["Type"] == "AWS::SNS::TopicPolicy" and {"Ref": topic} in r["Properties"]["Topics"]
            ]
            key = resources[topic]["Properties"].get("KmsMasterKeyId")
            key_id = (key.get("Ref") or key.get("Fn::GetAtt", [None])[0]) if isinstance(key, dict) else None
            for service in services:
                checked += 1
                for statements in policies:
                    assert service_allowed(statements, service, "sns:Publish"), (name, topic, service)
                if key_id is not None:
                    key_statements = resources[key_id]["Properties"]["KeyPolicy"]["Statement"]
                    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
                        assert service_allowed(key_statements, service, action), (
                            name,
                            topic,
                            service,
                            action,
                        )
    assert checked >= 4  # both stages' alarms and cleanup rule, the pipeline's notifications


def test_alarms_may_publish_only_from_this_environment(stage: StageTemplates) -> None:
    [policy] = stage.resources("App", "AWS::SNS::TopicPolicy").values()
    [statement] = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if isinstance(s["Principal"], dict) and s["Principal"].get("Service") == "cloudwatch.amazonaws.com"
    ]
    source = statement["Condition"]["ArnLike"]["aws:SourceArn"]
    assert source == (
        f"arn:aws:cloudwatch:{stage.config.region}:{stage.config.account}:alarm:yoctogram-{stage.config.name}-*"
    )
    for alarm_name in alarms(stage):
        assert alarm_name.startswith(f"yoctogram-{stage.config.name}-")
