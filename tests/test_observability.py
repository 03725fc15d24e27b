"""Alarms, their topic and the dashboard."""

from __future__ import annotations

from typing import Any

from tests.templates import StageTemplates


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
    }
    found = alarms(stage)
    assert set(found) == {prefix + name for name in expected}
    for name, (metric, namespace, threshold) in expected.items():
        alarm = found[prefix + name]
        assert (alarm["MetricName"], alarm["Namespace"], alarm["Threshold"]) == (
            metric,
            namespace,
            threshold,
        ), name
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
    assert stage.resolve("App", dimension["Value"])[1] == {"Fn::GetAtt": [dlq_id, "QueueName"]}


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
