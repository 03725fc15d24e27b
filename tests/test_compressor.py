"""The compressor Lambda and the EventBridge rules that feed it and the event worker (docs/design.md)."""

from __future__ import annotations

import json
import re
from typing import Any

from stages.components.images_buckets import images_bucket_name
from tests.templates import StageTemplates, Synthesized
from tests.test_services import expected_image_permissions, permissions


def compressor(stage: StageTemplates) -> tuple[str, dict[str, Any]]:
    [(logical_id, function)] = [
        (k, f)
        for k, f in stage.resources("App", "AWS::Lambda::Function").items()
        if f["Properties"].get("PackageType")
    ]
    return logical_id, function["Properties"]


def failures_queue(stage: StageTemplates) -> str:
    [queue] = stage.resources("App", "AWS::SQS::Queue")
    return queue


def event_rules(stage: StageTemplates, unit: str) -> dict[str, dict[str, Any]]:
    """The rules of `unit` that match S3 events (not the cleanup's schedule or its ECS task events)."""
    return {
        logical_id: resource
        for logical_id, resource in stage.resources(unit, "AWS::Events::Rule").items()
        if resource["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    }


def rule(stage: StageTemplates, unit: str) -> dict[str, Any]:
    [found] = event_rules(stage, unit).values()
    return found["Properties"]


def matched_prefixes(pattern: dict[str, Any]) -> dict[str, set[str]]:
    """Bucket name -> key prefixes an S3 `Object Created` pattern of ours matches."""
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    found: dict[str, set[str]] = {}
    for alternative in pattern["detail"]["$or"]:
        assert set(alternative) == {"bucket", "object"}
        [bucket] = alternative["bucket"]["name"]
        found[bucket] = {match["prefix"] for match in alternative["object"]["key"]}
    return found


def test_lambda_is_an_arm64_container_image(stage: StageTemplates, synthesized: Synthesized) -> None:
    settings = stage.config.compressor
    _, function = compressor(stage)
    assert function["PackageType"] == "Image"
    assert function["Architectures"] == ["arm64"]
    assert function["MemorySize"] == settings.memory_mib
    assert function["Timeout"] == settings.timeout_seconds
    # Only where config reserves some: a reservation the account's quota cannot spare fails the stack.
    assert function.get("ReservedConcurrentExecutions") == settings.reserved_concurrency
    assert function["FunctionName"] == f"yoctogram-{stage.config.name}-compressor"
    assert "VpcConfig" not in function  # it only talks to S3, over its public endpoint
    assert function["Environment"]["Variables"] == {
        "MAX_LONG_EDGE": str(settings.max_long_edge),
        "OUTPUT_FORMAT": settings.output_format,
        "WEBP_QUALITY": str(settings.webp_quality),
        "LOG_LEVEL": settings.log_level,
    }
    # The image is built from compressor/ (its Dockerfile), for arm64, without tests or tool caches.
    [tag] = re.findall(r":([0-9a-f]{64})$", function["Code"]["ImageUri"]["Fn::Sub"])
    context = synthesized.outdir / f"asset.{tag}"
    assert (context / "Dockerfile").is_file() and (context / "handler.py").is_file()
    assert not {p.name for p in context.iterdir()} & {
        "tests",
        ".mypy_cache",
        "__pycache__",
        "sample_images.py",
    }


def test_failures_have_a_dead_letter_path(stage: StageTemplates) -> None:
    settings = stage.config.compressor
    function_id, _ = compressor(stage)
    failures = failures_queue(stage)
    [invoke] = stage.resources("App", "AWS::Lambda::EventInvokeConfig").values()
    config = invoke["Properties"]
    assert config["FunctionName"] == {"Ref": function_id}
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [failures, "Arn"]}}}
    assert config["MaximumRetryAttempts"] == settings.retry_attempts
    assert config["MaximumEventAgeInSeconds"] == settings.max_event_age_minutes * 60
    # What EventBridge cannot deliver lands in the same queue.
    [target] = rule(stage, "App")["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [failures, "Arn"]}}
    queue = stage.resources("App", "AWS::SQS::Queue")[failures]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_lambda_rule_matches_originals_only_so_it_never_triggers_itself(stage: StageTemplates) -> None:
    config = stage.config
    prefixes = matched_prefixes(rule(stage, "App")["EventPattern"])
    assert prefixes == {
        images_bucket_name(config, "public"): {"public/originals/"},
        images_bucket_name(config, "private"): {"private/originals/"},
    }
    # Whatever the function may create (PutObject, also what a copy needs) lies outside every prefix
    # that triggers it. It deletes refused originals, but a deletion is no `Object Created` event.
    assert rule(stage, "App")["EventPattern"]["detail-type"] == ["Object Created"]
    _, function = compressor(stage)
    role = function["Role"]["Fn::GetAtt"][0]
    writes = [r for a, r in permissions(stage, "App", role) if a == "s3:PutObject"]
    assert writes
    for resource in writes:
        key_pattern = resource.split(":::", 1)[1].split("/", 1)[1]
        assert not any(key_pattern.startswith(p) for p_set in prefixes.values() for p in p_set), resource
    [permission] = stage.resources("App", "AWS::Lambda::Permission").values()
    [rule_id] = event_rules(stage, "App")
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"
    assert permission["Properties"]["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}


def test_event_queue_rule_matches_originals_and_renditions(stage: StageTemplates) -> None:
    config = stage.config
    properties = rule(stage, "Data")
    assert matched_prefixes(properties["EventPattern"]) == {
        images_bucket_name(config, privacy): {f"{privacy}/originals/", f"{privacy}/renditions/"}
        for privacy in ("public", "private")
    }
    queues = stage.resources("Data", "AWS::SQS::Queue")
    [main] = [k for k, q in queues.items() if "RedrivePolicy" in q["Properties"]]
    [dead_letters] = [k for k in queues if k != main]
    [target] = properties["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [main, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dead_letters, "Arn"]}}


def test_compressor_role_has_exactly_what_it_needs(stage: StageTemplates) -> None:
    _, function = compressor(stage)
    role = function["Role"]["Fn::GetAtt"][0]
    found = permissions(stage, "App", role)
    s3 = {(a, r) for a, r in found if a.startswith("s3:")}
    assert s3 == expected_image_permissions(
        stage,
        {
            "originals/*": {"s3:GetObject", "s3:DeleteObject"},
            "renditions/*": {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"},
            "quarantine/*": {"s3:PutObject"},  # a refused original is copied there, then deleted
        },
        list_buckets=True,
    )
    log_group = {"Fn::GetAtt": [function["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}
    failures = {"Fn::GetAtt": [failures_queue(stage), "Arn"]}
    assert {(a, json.dumps(r)) for a, r in found if not a.startswith("s3:")} == {
        ("logs:CreateLogStream", json.dumps(log_group)),
        ("logs:PutLogEvents", json.dumps(log_group)),
        ("sqs:SendMessage", json.dumps(failures)),  # the on-failure destination
        ("sqs:GetQueueAttributes", json.dumps(failures)),
        ("sqs:GetQueueUrl", json.dumps(failures)),
    }
    roles = stage.resources("App", "AWS::IAM::Role")[role]["Properties"]
    assert "ManagedPolicyArns" not in roles


def test_compressor_logs_with_retention(stage: StageTemplates) -> None:
    _, function = compressor(stage)
    log_group = function["LoggingConfig"]["LogGroup"]["Ref"]
    group = stage.resources("App", "AWS::Logs::LogGroup")[log_group]["Properties"]
    assert group["LogGroupName"] == f"/aws/lambda/yoctogram-{stage.config.name}-compressor"
    assert group["RetentionInDays"] == stage.config.log_retention_days
