"""Aurora Serverless v2, the images buckets, the event queue and the generated secrets."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from stages.components.images_buckets import images_bucket_name
from stages.components.network import ISOLATED
from tests.templates import UNITS, StageTemplates, subnet_tiers


def test_aurora_serverless_v2_scaling_from_config(stage: StageTemplates) -> None:
    config = stage.config
    stage.template("Data").has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "ServerlessV2ScalingConfiguration": {
                "MinCapacity": config.aurora_min_acu,
                "MaxCapacity": config.aurora_max_acu,
            },
            "StorageEncrypted": True,
            "EnableIAMDatabaseAuthentication": True,
            "Port": config.database_port,
            "DatabaseName": config.database_name,
            "BackupRetentionPeriod": config.backup_retention_days,
            "DeletionProtection": config.retain_data,
            "EnableCloudwatchLogsExports": ["postgresql"],
        },
    )


def test_writer_plus_configured_readers_all_serverless(stage: StageTemplates) -> None:
    instances = stage.resources("Data", "AWS::RDS::DBInstance").values()
    assert len(instances) == 1 + stage.config.aurora_readers
    for instance in instances:
        assert instance["Properties"]["DBInstanceClass"] == "db.serverless"
        assert instance["Properties"]["PubliclyAccessible"] is False


def test_database_in_isolated_subnets(stage: StageTemplates) -> None:
    [group] = stage.resources("Data", "AWS::RDS::DBSubnetGroup").values()
    tiers = subnet_tiers(stage)
    subnet_refs = [stage.resolve("Data", subnet) for subnet in group["Properties"]["SubnetIds"]]
    assert len(subnet_refs) == 2
    assert {tiers[value["Ref"]] for _, value in subnet_refs} == {ISOLATED.subnet_group_name}


def test_database_retained_only_where_configured(stage: StageTemplates) -> None:
    [cluster] = stage.resources("Data", "AWS::RDS::DBCluster").values()
    assert cluster["DeletionPolicy"] == ("Retain" if stage.config.retain_data else "Snapshot")
    [secret] = [
        s
        for s in stage.resources("Data", "AWS::SecretsManager::Secret").values()
        if s["Properties"]["Name"] == f"yoctogram/{stage.config.name}/database"
    ]
    assert secret["DeletionPolicy"] == ("Retain" if stage.config.retain_data else "Delete")
    assert stage.stack_properties("Data").get("terminationProtection", False) is stage.config.retain_data


def test_database_credentials_generated_with_dbname(stage: StageTemplates) -> None:
    stage.template("Data").has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": f"yoctogram/{stage.config.name}/database",
            "GenerateSecretString": Match.object_like(
                {
                    "GenerateStringKey": "password",
                    "SecretStringTemplate": Match.serialized_json(
                        {"username": "yoctogram", "dbname": stage.config.database_name}
                    ),
                }
            ),
        },
    )
    stage.template("Data").resource_count_is("AWS::SecretsManager::SecretTargetAttachment", 1)


def test_database_reachable_only_from_the_tasks_and_the_rotation(stage: StageTemplates) -> None:
    ingress = [r["Properties"] for r in stage.resources("Data", "AWS::EC2::SecurityGroupIngress").values()]
    sources = {}
    for rule in ingress:
        unit, source = stage.resolve("Data", rule["SourceSecurityGroupId"])
        sources[unit, json.dumps(source)] = rule
    [rotation_sg] = [
        k for k in stage.resources("Data", "AWS::EC2::SecurityGroup") if "RotationSingleUser" in k
    ]
    tasks = stage.raw["Network"]["Outputs"]["TaskSecurityGroupId"]["Value"]
    assert set(sources) == {
        ("Network", json.dumps(tasks)),
        ("Data", json.dumps({"Fn::GetAtt": [rotation_sg, "GroupId"]})),
    }
    assert sources["Network", json.dumps(tasks)]["FromPort"] == stage.config.database_port
    for rule in ingress:  # one port (the cluster's, by value or by reference)
        assert rule["IpProtocol"] == "tcp" and rule["FromPort"] == rule["ToPort"]


def test_database_password_rotates_from_the_private_subnets(stage: StageTemplates) -> None:
    [schedule] = stage.resources("Data", "AWS::SecretsManager::RotationSchedule").values()
    [attachment] = stage.resources("Data", "AWS::SecretsManager::SecretTargetAttachment")
    assert schedule["Properties"]["SecretId"] == {"Ref": attachment}
    assert schedule["Properties"]["RotationRules"] == {
        "ScheduleExpression": f"rate({stage.config.database_rotation_days} days)"
    }
    [application] = stage.resources("Data", "AWS::Serverless::Application").values()
    assert "RotationSingleUser" in json.dumps(stage.raw["Data"]["Mappings"])  # AWS's single-user function
    subnets = application["Properties"]["Parameters"]["vpcSubnetIds"]["Fn::Join"][1][::2]
    outputs = [stage.resolve("Data", s)[1] for s in subnets]
    private = [
        {"Ref": k}
        for k, v in stage.resources("Network", "AWS::EC2::Subnet").items()
        if {"Key": "aws-cdk:subnet-name", "Value": "Private"} in v["Properties"]["Tags"]
    ]
    assert sorted(map(json.dumps, outputs)) == sorted(map(json.dumps, private))


def test_secret_key_is_generated(stage: StageTemplates) -> None:
    stage.template("Data").has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "Name": f"yoctogram/{stage.config.name}/secret-key",
            "GenerateSecretString": {"ExcludePunctuation": True, "PasswordLength": 64},
        },
    )


def images_buckets(stage: StageTemplates) -> dict[str, dict]:
    names = {images_bucket_name(stage.config, privacy) for privacy in ("public", "private")}
    buckets = stage.resources("Data", "AWS::S3::Bucket").values()
    found = {b["Properties"]["BucketName"]: b for b in buckets if b["Properties"].get("BucketName") in names}
    assert set(found) == names
    return found


def test_images_buckets_settings(stage: StageTemplates) -> None:
    for name, bucket in images_buckets(stage).items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        [encryption] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert props["NotificationConfiguration"] == {
            "EventBridgeConfiguration": {"EventBridgeEnabled": True}
        }
        assert props["CorsConfiguration"]["CorsRules"] == [
            {
                "AllowedHeaders": ["*"],
                "AllowedMethods": ["POST"],
                "AllowedOrigins": [stage.config.site_url],
                "MaxAge": 3000,
            }
        ]
        assert {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}.items() <= next(
            iter(props["LifecycleConfiguration"]["Rules"])
        ).items()
        assert props["LoggingConfiguration"]["LogFilePrefix"] == f"s3/{name}/"
        assert bucket["DeletionPolicy"] == ("Retain" if stage.config.retain_data else "Delete")


def bucket_policies(stage: StageTemplates) -> dict[str, dict[str, Any]]:
    """Every bucket policy of the stage by the bucket it governs (name, or logical id when generated)."""
    found = {}
    for unit in UNITS:
        for policy in stage.resources(unit, "AWS::S3::BucketPolicy").values():
            bucket = policy["Properties"]["Bucket"]
            key = bucket if isinstance(bucket, str) else bucket["Ref"]
            assert key not in found, f"two policies for {key}: the last one deployed would replace the other"
            found[key] = policy
    return found


def test_every_bucket_denies_requests_without_tls(stage: StageTemplates) -> None:
    policies = bucket_policies(stage)
    buckets = {
        body["Properties"].get("BucketName", logical_id)
        for unit in UNITS
        for logical_id, body in stage.resources(unit, "AWS::S3::Bucket").items()
    }
    assert buckets == set(policies)
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_event_queue_with_dead_letters(stage: StageTemplates) -> None:
    queues = stage.resources("Data", "AWS::SQS::Queue")
    [main] = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    redrive = main["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 5
    assert (
        queues[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]["MessageRetentionPeriod"]
        == 1209600
    )
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    policies = stage.resources("Data", "AWS::SQS::QueuePolicy").values()
    assert len(policies) == len(queues)
    [rule] = stage.resources("Data", "AWS::Events::Rule")
    for policy in policies:
        deny, allow = policy["Properties"]["PolicyDocument"]["Statement"]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        # EventBridge may send, and only for the images rule (the dead-letter queue: what it failed to deliver).
        actions = set(allow["Action"]) if isinstance(allow["Action"], list) else {allow["Action"]}
        assert allow["Effect"] == "Allow" and "sqs:SendMessage" in actions
        assert actions <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}}


def test_cloudfront_reads_images_under_their_privacy_for_this_distribution_only(
    stage: StageTemplates,
) -> None:
    """The app stack, which owns the distribution, writes the images buckets' policies (no cycle), and
    they name that one distribution, not every distribution of the account."""
    config = stage.config
    [distribution_id] = stage.resources("App", "AWS::CloudFront::Distribution")
    for privacy in ("public", "private"):
        name = images_bucket_name(config, privacy)
        policy = bucket_policies(stage)[name]
        assert policy["DeletionPolicy"] == "Retain"  # deleting the app stack keeps the TLS rule
        [statement] = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
        ]
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "s3:GetObject"
        assert sorted(statement["Resource"]) == [
            f"arn:aws:s3:::{name}/{privacy}/{folder}/*" for folder in ("originals", "renditions")
        ]
        source = statement["Condition"]["StringEquals"]["AWS:SourceArn"]
        assert "*" not in json.dumps(source) and {"Ref": distribution_id} in source["Fn::Join"][1]


def test_prod_photos_stay_recoverable_and_staging_buckets_can_be_deleted(stage: StageTemplates) -> None:
    config = stage.config
    for privacy in ("public", "private"):
        [bucket] = [
            b["Properties"]
            for b in stage.resources("Data", "AWS::S3::Bucket").values()
            if b["Properties"].get("BucketName") == images_bucket_name(config, privacy)
        ]
        rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
        if config.images_recoverable_days is None:
            assert "VersioningConfiguration" not in bucket and "ExpireDeletedVersions" not in rules
        else:
            assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
            expiry = rules["ExpireDeletedVersions"]["NoncurrentVersionExpiration"]["NoncurrentDays"]
            assert expiry == config.images_recoverable_days
    # Without retain_data, every bucket of the stage is emptied before CloudFormation deletes it.
    emptied = {
        stage.owner(unit, r["Properties"]["BucketName"])
        for unit in UNITS
        for r in stage.resources(unit, "Custom::EmptiedOnDelete").values()
    }
    buckets = {
        (unit, logical_id) for unit in UNITS for logical_id in stage.resources(unit, "AWS::S3::Bucket")
    }
    assert emptied == (set() if config.retain_data else buckets)


def test_access_logs_accept_cloudfront_standard_logs(stage: StageTemplates) -> None:
    """CloudFront's standard logs are delivered with an object ACL, so the log bucket keeps ACLs on."""
    [log_bucket] = [
        b["Properties"]
        for b in stage.resources("Data", "AWS::S3::Bucket").values()
        if "BucketName" not in b["Properties"]
    ]
    assert log_bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}
    assert log_bucket["PublicAccessBlockConfiguration"]["BlockPublicAcls"] is True


def test_database_parameters_tls_only_slow_queries_and_idle_transactions(stage: StageTemplates) -> None:
    [cluster] = stage.resources("Data", "AWS::RDS::DBCluster").values()
    group_ref = cluster["Properties"]["DBClusterParameterGroupName"]
    group = stage.resources("Data", "AWS::RDS::DBClusterParameterGroup")[group_ref["Ref"]]["Properties"]
    assert group["Parameters"] == {
        "rds.force_ssl": "1",
        "log_min_duration_statement": str(stage.config.slow_query_ms),
        "idle_in_transaction_session_timeout": "60000",
    }
    assert group["Family"] == "aurora-postgresql16"
    insights = {k: v for k, v in cluster["Properties"].items() if "Insights" in k}
    if stage.config.database_insights:
        assert insights == {
            "DatabaseInsightsMode": "advanced",
            "PerformanceInsightsEnabled": True,
            "PerformanceInsightsRetentionPeriod": 465,
        }
    else:
        assert (
            not insights.get("PerformanceInsightsEnabled")
            and insights.get("DatabaseInsightsMode") != "advanced"
        )


def test_the_first_rotation_waits_for_every_instance(stage: StageTemplates) -> None:
    """A rotation starts as soon as its schedule exists: before the writer accepts connections it fails
    half-way, and every later schedule change then fails too."""
    [schedule] = stage.resources("Data", "AWS::SecretsManager::RotationSchedule").values()
    instances = set(stage.resources("Data", "AWS::RDS::DBInstance"))
    assert len(instances) == 1 + stage.config.aurora_readers
    assert instances <= set(schedule.get("DependsOn", []))
