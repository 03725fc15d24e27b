"""The web service, the event worker, the migration and cleanup tasks: placement, settings, secrets, safety."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match

from stages.components.backend_settings import DATABASE_SECRET_FIELDS
from stages.components.images_buckets import images_bucket_name
from tests.templates import ROOT, StageTemplates, subnet_tiers

PLAIN_SETTINGS = {
    "APP_ENV",
    "AWS_DEFAULT_REGION",
    "FORWARD_FACING_NAME",
    "MEDIA_BASE_URL",
    "MEDIA_SIGNING_KEY_ID",
    "PUBLIC_IMAGES_BUCKET",
    "PRIVATE_IMAGES_BUCKET",
    "EVENT_QUEUE_URL",
    "MAX_UPLOAD_BYTES",
    "WEB_CONCURRENCY",
    "HTTP_KEEP_ALIVE_SECONDS",
    "CLIENT_ADDRESS_HEADER",
    "POSTGRES_SSL_MODE",
    "POSTGRES_SSL_ROOT_CERT",
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "POSTGRES_PASSWORD_SECRET_ID",
}
SECRET_SETTINGS = {*DATABASE_SECRET_FIELDS, "SECRET_KEY", "MEDIA_SIGNING_PRIVATE_KEY"}
# (stack, main container) of every task definition that runs the backend image.
BACKEND_CONTAINERS = (("App", "app"), ("App", "worker"), ("App", "cleanup"), ("Migrations", "migrate"))


def containers(stage: StageTemplates, unit: str, main: str) -> dict[str, dict[str, Any]]:
    """Containers (by name) of the task definition of `unit` whose main container is `main`."""
    for task in stage.resources(unit, "AWS::ECS::TaskDefinition").values():
        found = {c["Name"]: c for c in task["Properties"]["ContainerDefinitions"]}
        if main in found:
            return found
    raise AssertionError(f"no task definition with a {main!r} container in {unit}")


def task_definition(stage: StageTemplates, unit: str, main: str) -> dict[str, Any]:
    for task in stage.resources(unit, "AWS::ECS::TaskDefinition").values():
        if any(c["Name"] == main for c in task["Properties"]["ContainerDefinitions"]):
            return task["Properties"]
    raise AssertionError(main)


def environment(container: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def secrets(container: dict[str, Any]) -> dict[str, Any]:
    return {s["Name"]: s["ValueFrom"] for s in container.get("Secrets", [])}


def permissions(stage: StageTemplates, unit: str, role: str | None = None) -> set[tuple[str, Any]]:
    """Every (action, resource) pair that the stack's IAM policies allow (those of `role`, a logical id,
    when given); resources that are references are hashable dicts."""
    pairs = set()
    for policy in stage.resources(unit, "AWS::IAM::Policy").values():
        if role is not None and {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            pairs |= {(a, r if isinstance(r, str) else _Frozen(r)) for a in actions for r in resources}
    return pairs


class _Frozen(dict):
    """A hashable CloudFormation value (a reference), equal to the plain dict it was made from."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(repr(sorted(self.items(), key=str)))


def service(stage: StageTemplates, task_main: str) -> dict[str, Any]:
    task_ids = {
        logical_id
        for logical_id, task in stage.resources("App", "AWS::ECS::TaskDefinition").items()
        if any(c["Name"] == task_main for c in task["Properties"]["ContainerDefinitions"])
    }
    [found] = [
        s["Properties"]
        for s in stage.resources("App", "AWS::ECS::Service").values()
        if s["Properties"]["TaskDefinition"]["Ref"] in task_ids
    ]
    return found


def test_tasks_are_arm64_fargate(stage: StageTemplates) -> None:
    for unit, main in BACKEND_CONTAINERS:
        props = task_definition(stage, unit, main)
        assert props["RuntimePlatform"] == {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}
        assert props["RequiresCompatibilities"] == ["FARGATE"]
    web = task_definition(stage, "App", "app")
    assert (web["Cpu"], web["Memory"]) == (str(stage.config.task_cpu), str(stage.config.task_memory_mib))


def test_one_backend_image_for_migrations_and_services(stage: StageTemplates) -> None:
    images = {str(containers(stage, unit, main)[main]["Image"]) for unit, main in BACKEND_CONTAINERS}
    assert len(images) == 1


def test_commands_follow_the_image_contract(stage: StageTemplates) -> None:
    app = containers(stage, "App", "app")["app"]
    assert "Command" not in app  # the image's default command serves the API
    assert app["PortMappings"][0]["ContainerPort"] == 8000
    assert app["HealthCheck"]["Command"] == ["CMD", "python", "-m", "app.healthcheck"]
    assert containers(stage, "App", "worker")["worker"]["Command"] == ["python", "-m", "app.events"]
    assert containers(stage, "Migrations", "migrate")["migrate"]["Command"] == ["python", "-m", "app.migrate"]
    assert containers(stage, "App", "cleanup")["cleanup"]["Command"] == ["python", "-m", "app.cleanup"]


def test_tasks_in_private_subnets_without_public_ips(stage: StageTemplates) -> None:
    tiers = subnet_tiers(stage)
    for main in ("app", "worker"):
        network = service(stage, main)["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert network["AssignPublicIp"] == "DISABLED"
        refs = [stage.resolve("App", subnet)[1]["Ref"] for subnet in network["Subnets"]]
        assert sorted(tiers[r] for r in refs) == ["Private", "Private"]
    task_subnets = [
        part for part in stage.output("Network", "TaskSubnetIds")["Fn::Join"][1] if isinstance(part, dict)
    ]
    assert sorted(tiers[s["Ref"]] for s in task_subnets) == ["Private", "Private"]


def test_load_balancer_public_https_only_and_forwards_only_cloudfront(stage: StageTemplates) -> None:
    tiers = subnet_tiers(stage)
    [alb] = stage.resources("App", "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert alb["Properties"]["Scheme"] == "internet-facing"
    refs = [stage.resolve("App", subnet)[1]["Ref"] for subnet in alb["Properties"]["Subnets"]]
    assert sorted(tiers[r] for r in refs) == ["Public", "Public"]
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["deletion_protection.enabled"] == str(stage.config.retain_data).lower()

    # The HTTPS listener (without CloudFront's secret header a request gets 403) and the test listener,
    # which only the deployment hook reaches (tests/test_deployments.py).
    by_port = {
        listener["Properties"]["Port"]: (logical_id, listener["Properties"])
        for logical_id, listener in stage.resources("App", "AWS::ElasticLoadBalancingV2::Listener").items()
    }
    assert set(by_port) == {443, 8443}
    listener_id, listener = by_port[443]
    assert (listener["Port"], listener["Protocol"]) == (443, "HTTPS")
    assert "TLS13" in listener["SslPolicy"]
    assert listener["DefaultActions"] == [
        {
            "Type": "fixed-response",
            "FixedResponseConfig": {
                "StatusCode": "403",
                "ContentType": "text/plain",
                "MessageBody": "Forbidden",
            },
        }
    ]
    test_listener = by_port[8443][1]
    assert test_listener["Protocol"] == "HTTPS" and test_listener["SslPolicy"] == listener["SslPolicy"]
    assert test_listener["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    # The production rule requires the header's secret value (read by the rule's function, which
    # CloudFormation's dynamic references do not reach) and forwards to the service's pair.
    [rule] = [
        r["Properties"]
        for r in stage.resources("App", "Custom::EcsShiftedListenerRule").values()
        if r["Properties"]["ListenerArn"] == {"Ref": listener_id}
    ]
    [balanced] = service(stage, "app")["LoadBalancers"]
    assert rule["PrimaryTargetGroupArn"] == balanced["TargetGroupArn"]
    assert rule["HeaderName"] == "X-Origin-Verify"
    assert rule["HeaderSecretArn"] == {"Ref": origin_verify_secret(stage)}

    stage.template("App").has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": stage.config.origin_domain_name,
            "ValidationMethod": "DNS",
            "DomainValidationOptions": [
                {"DomainName": stage.config.origin_domain_name, "HostedZoneId": stage.config.hosted_zone_id}
            ],
        },
    )


def origin_verify_secret(stage: StageTemplates) -> str:
    """The generated origin-verify secret's logical id."""
    [secret] = [
        logical_id
        for logical_id, s in stage.resources("App", "AWS::SecretsManager::Secret").items()
        if s["Properties"]["Name"] == f"yoctogram/{stage.config.name}/origin-verify"
    ]
    generated = stage.resources("App", "AWS::SecretsManager::Secret")[secret]["Properties"][
        "GenerateSecretString"
    ]
    assert generated == {"ExcludePunctuation": True, "PasswordLength": 48}
    return secret


def origin_verify_value(stage: StageTemplates) -> Any:
    """The dynamic reference to the generated origin-verify secret (resolved by CloudFormation, never in git)."""
    secret = origin_verify_secret(stage)
    return {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": secret}, ":SecretString:::}}"]]}


def load_balancer_security_group(stage: StageTemplates) -> str:
    [alb] = stage.resources("App", "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    [group] = alb["Properties"]["SecurityGroups"]
    return str(group["Fn::GetAtt"][0])


def test_the_api_keeps_idle_connections_longer_than_the_load_balancer(stage: StageTemplates) -> None:
    """The ALB reuses an idle connection until its idle timeout; if the API closed it first, a request
    would race the close and get a 502. Both are set explicitly, and every web task outlasts the ALB."""
    [alb] = stage.resources("App", "AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    idle = int(attributes["idle_timeout.timeout_seconds"])
    assert idle == stage.config.load_balancer_idle_timeout_seconds
    for unit, main in BACKEND_CONTAINERS:
        keep_alive = int(environment(containers(stage, unit, main)[main])["HTTP_KEEP_ALIVE_SECONDS"])
        assert keep_alive > idle, main


def test_load_balancer_admits_only_cloudfront(stage: StageTemplates) -> None:
    alb_sg = load_balancer_security_group(stage)
    props = stage.resources("App", "AWS::EC2::SecurityGroup")[alb_sg]["Properties"]
    assert "SecurityGroupIngress" not in props
    ingress = [
        r["Properties"]
        for r in stage.resources("App", "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [alb_sg, "GroupId"]}
    ]
    from_addresses = [r for r in ingress if "SourceSecurityGroupId" not in r]
    assert [
        (r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("SourcePrefixListId")) for r in from_addresses
    ] == [
        ("tcp", 443, 443, "pl-82a045eb")  # com.amazonaws.global.cloudfront.origin-facing in us-west-2
    ]
    assert all(
        set(r) <= {"IpProtocol", "FromPort", "ToPort", "SourcePrefixListId", "GroupId", "Description"}
        for r in from_addresses
    )
    # Besides CloudFront, only the deployment hook's group, on the test listener's port.
    assert [(r["FromPort"], r["ToPort"]) for r in ingress if "SourceSecurityGroupId" in r] == [(8443, 8443)]


def test_origin_name_points_at_the_load_balancer(stage: StageTemplates) -> None:
    [alb] = stage.resources("App", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    stage.template("App").has_resource_properties(
        "AWS::Route53::RecordSet",
        {
            "Name": f"{stage.config.origin_domain_name}.",
            "Type": "A",
            "HostedZoneId": stage.config.hosted_zone_id,
            "AliasTarget": {
                "DNSName": {"Fn::Join": ["", ["dualstack.", {"Fn::GetAtt": [alb, "DNSName"]}]]},
                "HostedZoneId": {"Fn::GetAtt": [alb, "CanonicalHostedZoneID"]},
            },
        },
    )


def test_target_group_health_and_short_deregistration(stage: StageTemplates) -> None:
    stage.template("App").has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "Port": 8000,
            "TargetType": "ip",
            "HealthCheckPath": "/api/v1/health",
            "Matcher": {"HttpCode": "200"},
            "TargetGroupAttributes": Match.array_with(
                [{"Key": "deregistration_delay.timeout_seconds", "Value": "20"}]
            ),
        },
    )


def test_tasks_accept_only_the_load_balancer(stage: StageTemplates) -> None:
    alb_sg = load_balancer_security_group(stage)
    app_groups = [
        {"Fn::GetAtt": [group, "GroupId"]} for group in stage.resources("App", "AWS::EC2::SecurityGroup")
    ]
    [rule] = [
        r["Properties"]
        for r in stage.resources("App", "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] not in app_groups
    ]
    assert rule["FromPort"] == rule["ToPort"] == 8000
    assert rule["SourceSecurityGroupId"] == {"Fn::GetAtt": [alb_sg, "GroupId"]}
    assert stage.resolve("App", rule["GroupId"])[1] == stage.output("Network", "TaskSecurityGroupId")
    assert stage.resources("Network", "AWS::EC2::SecurityGroupIngress") == {}


def test_secrets_translated_to_the_apps_names(stage: StageTemplates) -> None:
    for unit, main in BACKEND_CONTAINERS:
        container = containers(stage, unit, main)[main]
        found = secrets(container)
        assert set(found) == SECRET_SETTINGS, main
        for variable, field in DATABASE_SECRET_FIELDS.items():
            arn, suffix = found[variable].rsplit(":", 3)[0], found[variable].split(":", 7)[7]
            assert suffix == f"{field}::", variable
            # every field from the one Aurora secret, named by its fixed name
            assert stage.owner(unit, arn) == ("Data", database_secret(stage)), variable
        [secret_key_id] = [
            k
            for k, s in stage.resources("Data", "AWS::SecretsManager::Secret").items()
            if s["Properties"]["Name"].endswith("/secret-key")
        ]
        assert stage.owner(unit, found["SECRET_KEY"]) == ("Data", secret_key_id)
        assert found["MEDIA_SIGNING_PRIVATE_KEY"].endswith(
            f":secret:{stage.config.active_signing_key.private_key_secret_name}"
        )
        assert not set(environment(container)) & SECRET_SETTINGS


def test_plain_settings(stage: StageTemplates) -> None:
    config = stage.config
    [public_key] = stage.resources("Edge", "AWS::CloudFront::PublicKey")
    for unit, main in BACKEND_CONTAINERS:
        env = environment(containers(stage, unit, main)[main])
        extra = {"COMPRESSOR_FUNCTION_NAME"} if main == "cleanup" else set()  # reconciliation invokes it
        assert set(env) == PLAIN_SETTINGS | extra, main
        assert env["APP_ENV"] == "aws"
        assert env["AWS_DEFAULT_REGION"] == config.region
        assert env["FORWARD_FACING_NAME"] == config.domain_name
        assert env["MEDIA_BASE_URL"] == config.site_url
        assert stage.resolve(unit, env["MEDIA_SIGNING_KEY_ID"]) == ("Edge", {"Ref": public_key})
        assert env["MAX_UPLOAD_BYTES"] == str(config.max_upload_bytes)
        assert env["PUBLIC_IMAGES_BUCKET"] == images_bucket_name(config, "public")
        assert env["PRIVATE_IMAGES_BUCKET"] == images_bucket_name(config, "private")
        assert env["WEB_CONCURRENCY"] == str(config.web_concurrency)
        # TLS to Aurora, checked against the RDS bundle the image carries (backend/Dockerfile)
        assert env["POSTGRES_SSL_MODE"] == "verify-full"
        assert env["POSTGRES_SSL_ROOT_CERT"] in (ROOT / "backend" / "Dockerfile").read_text()
        pool = ("1", "0") if main == "cleanup" else (str(config.db_pool_size), str(config.db_max_overflow))
        assert (env["DB_POOL_SIZE"], env["DB_MAX_OVERFLOW"]) == pool, main
        [queue_id] = [
            k
            for k, q in stage.resources("Data", "AWS::SQS::Queue").items()
            if "RedrivePolicy" in q["Properties"]
        ]
        assert env["EVENT_QUEUE_URL"].startswith(
            f"https://sqs.{config.region}.amazonaws.com/{config.account}/"
        )
        assert stage.owner(unit, env["EVENT_QUEUE_URL"]) == ("Data", queue_id)
        assert stage.owner(unit, env["POSTGRES_PASSWORD_SECRET_ID"]) == ("Data", database_secret(stage))


def database_secret(stage: StageTemplates) -> str:
    """The Aurora secret's logical id (generated, attached to the cluster)."""
    [secret] = [
        k
        for k, s in stage.resources("Data", "AWS::SecretsManager::Secret").items()
        if s["Properties"]["Name"].endswith("/database")
    ]
    return secret


def test_the_database_password_is_read_by_the_tasks_not_injected(stage: StageTemplates) -> None:
    """It rotates: a value injected at start would be refused after a rotation (backend/app/core/db_password.py)."""
    for unit, main in BACKEND_CONTAINERS:
        assert "POSTGRES_PASSWORD" not in secrets(containers(stage, unit, main)[main]), main
        task_role = task_definition(stage, unit, main)["TaskRoleArn"]["Fn::GetAtt"][0]
        readable = [
            stage.owner(unit, resource if isinstance(resource, str) else dict(resource))
            for action, resource in permissions(stage, unit, task_role)
            if action == "secretsmanager:GetSecretValue"
        ]
        assert readable == [("Data", database_secret(stage))], main


def test_datadog_agent_and_log_router_sidecars(stage: StageTemplates) -> None:
    config = stage.config
    for main, service_name in (("app", "yoctogram-api"), ("worker", "yoctogram-event-worker")):
        found = containers(stage, "App", main)
        agent, router = found["datadog-agent"], found["log-router"]
        assert agent["Image"] == config.datadog_agent_image
        assert agent["Essential"] is False
        expected = {
            "DD_SITE": config.datadog_site,
            "ECS_FARGATE": "true",
            "DD_ENV": config.name,
            "DD_SERVICE": service_name,
        }
        assert expected.items() <= environment(agent).items()
        for sidecar in (agent, router):
            assert secrets(sidecar) == {
                "DD_API_KEY": f"arn:aws:secretsmanager:{config.region}:{config.account}:secret:"
                f"{config.datadog_api_key_secret_name}"
            }
            assert "DD_API_KEY" not in environment(sidecar)
            assert sidecar["LogConfiguration"]["LogDriver"] == "awslogs"
        assert router["FirelensConfiguration"]["Type"] == "fluentbit"
        assert router["FirelensConfiguration"]["Options"]["config-file-type"] == "file"
        assert found[main]["LogConfiguration"] == {"LogDriver": "awsfirelens"}
        assert environment(router)["DD_SITE"] == config.datadog_site
        # Traces need a tracer in the app: APM is on only if the backend installs one.
        tracer = "ddtrace" in (ROOT / "backend" / "requirements.txt").read_text()
        assert environment(agent)["DD_APM_ENABLED"] == ("true" if tracer else "false")


def test_every_backend_task_leaves_its_app_room_beside_the_sidecars(stage: StageTemplates) -> None:
    """The sidecars reserve their memory first; Python with its pool and the event loop needs ~400 MiB."""
    for unit, main in BACKEND_CONTAINERS:
        task = task_definition(stage, unit, main)
        sidecars = sum(
            c.get("MemoryReservation", c.get("Memory", 0))
            for c in task["ContainerDefinitions"]
            if c["Name"] != main
        )
        assert int(task["Memory"]) - sidecars >= 448, (main, task["Memory"], sidecars)


def test_execution_role_reads_the_datadog_key_by_name(stage: StageTemplates) -> None:
    config = stage.config
    arn = f"arn:aws:secretsmanager:{config.region}:{config.account}:secret:{config.datadog_api_key_secret_name}-??????"
    assert ("secretsmanager:GetSecretValue", arn) in permissions(stage, "App")


def test_app_logs_in_cloudwatch_with_retention(stage: StageTemplates) -> None:
    groups = stage.resources("App", "AWS::Logs::LogGroup").values()
    # app + sidecars, for the web service and the event worker; the cleanup task; the compressor; the web
    # client deployment; the web service's listener rules and deployment hook; without retain_data, the
    # site bucket's emptier
    assert len(groups) == 9 + (0 if stage.config.retain_data else 1)
    for group in groups:
        assert group["Properties"]["RetentionInDays"] == stage.config.log_retention_days
    stage.template("Migrations").has_resource_properties(
        "AWS::Logs::LogGroup", {"RetentionInDays": stage.config.log_retention_days}
    )


def test_circuit_breaker_and_deployment_alarms(stage: StageTemplates) -> None:
    web = service(stage, "app")
    config = web["DeploymentConfiguration"]
    assert config["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert config["MinimumHealthyPercent"] == 100
    names = config["Alarms"]["AlarmNames"]
    assert config["Alarms"]["Enable"] is True and config["Alarms"]["Rollback"] is True
    alarm_names = {
        a["Properties"]["AlarmName"] for a in stage.resources("App", "AWS::CloudWatch::Alarm").values()
    }
    # The new revision's 5xx ratio and p95, per target group, and unhealthy targets (test_deployments.py).
    assert len(names) == 5 and set(names) <= alarm_names
    assert "DesiredCount" not in web  # autoscaling owns it; a deploy must not reset it
    worker = service(stage, "worker")
    assert worker["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert worker["DesiredCount"] == stage.config.worker_tasks


def test_autoscaling_on_cpu_and_requests(stage: StageTemplates) -> None:
    template = stage.template("App")
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": stage.config.min_tasks,
            "MaxCapacity": stage.config.max_tasks,
            "ScalableDimension": "ecs:service:DesiredCount",
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                    },
                    "TargetValue": stage.config.scaling_cpu_target_percent,
                }
            ),
        },
    )
    # Requests per task, over both target groups: tests/test_deployments.py.


def task_role(stage: StageTemplates, main: str) -> str:
    return task_definition(stage, "App", main)["TaskRoleArn"]["Fn::GetAtt"][0]


def image_permissions(stage: StageTemplates, role: str) -> set[tuple[str, str]]:
    return {(a, r) for a, r in permissions(stage, "App", role) if a.startswith("s3:")}


def expected_image_permissions(
    stage: StageTemplates, grants: dict[str, set[str]], *, list_buckets: bool
) -> set[tuple[str, str]]:
    """`grants`: key pattern under `{privacy}/` -> actions, in each bucket under its own privacy."""
    expected = set()
    for privacy in ("public", "private"):
        arn = f"arn:aws:s3:::{images_bucket_name(stage.config, privacy)}"
        for pattern, actions in grants.items():
            expected |= {(action, f"{arn}/{privacy}/{pattern}") for action in actions}
        if list_buckets:
            expected.add(("s3:ListBucket", arn))
    return expected


def test_web_task_role_reaches_images_by_prefix_only(stage: StageTemplates) -> None:
    """Upload forms and HEADs of originals, refusal markers, and DELETE of an image's every file."""
    assert image_permissions(stage, task_role(stage, "app")) == expected_image_permissions(
        stage,
        {
            "originals/*": {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"},
            "renditions/*": {"s3:GetObject", "s3:DeleteObject"},
            "quarantine/*": {"s3:DeleteObject"},  # a refused original, deleted with its image
        },
        list_buckets=True,
    )


def test_list_bucket_has_no_prefix_condition(stage: StageTemplates) -> None:
    """A HEAD of a missing key answers 404 only with an unconditional ListBucket (it carries no prefix)."""
    for policy in stage.resources("App", "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "s3:ListBucket" in statement["Action"]:
                assert "Condition" not in statement


def test_event_worker_reads_refusal_markers_and_deletes_orphans_only(stage: StageTemplates) -> None:
    """It reads markers' reasons, and deletes an object whose image row no longer exists."""
    assert image_permissions(stage, task_role(stage, "worker")) == expected_image_permissions(
        stage,
        {
            "renditions/*.rejected": {"s3:GetObject"},
            "originals/*": {"s3:DeleteObject"},
            "renditions/*": {"s3:DeleteObject"},
            "quarantine/*": {"s3:DeleteObject"},
        },
        list_buckets=False,
    )


def test_event_worker_consumes_the_queue(stage: StageTemplates) -> None:
    [queue_id] = [
        k for k, q in stage.resources("Data", "AWS::SQS::Queue").items() if "RedrivePolicy" in q["Properties"]
    ]
    sqs = {(a, r) for a, r in permissions(stage, "App", task_role(stage, "worker")) if a.startswith("sqs:")}
    assert {action for action, resource in sqs if stage.owner("App", resource) == ("Data", queue_id)} >= {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
    }


def test_pending_cleanup_task_only_reads_images(stage: StageTemplates) -> None:
    """`python -m app.cleanup` HEADs originals and renditions and reads markers (reconciliation);
    ListBucket makes a missing one 404 (not a 403 it stops on)."""
    assert image_permissions(stage, task_role(stage, "cleanup")) == expected_image_permissions(
        stage, {"originals/*": {"s3:GetObject"}, "renditions/*": {"s3:GetObject"}}, list_buckets=True
    )
    props = task_definition(stage, "App", "cleanup")
    assert (props["Cpu"], props["Memory"]) == ("256", "512")
    [container] = props["ContainerDefinitions"]  # no Datadog agent or log router for a short run
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_pending_cleanup_may_invoke_only_the_compressor(stage: StageTemplates) -> None:
    """Reconciliation hands an original without output to the compressor again (an async invoke)."""
    [function_id] = [
        k
        for k, f in stage.resources("App", "AWS::Lambda::Function").items()
        if f["Properties"].get("FunctionName") == f"yoctogram-{stage.config.name}-compressor"
    ]
    invokes = {
        (action, stage.owner("App", resource))
        for action, resource in permissions(stage, "App", task_role(stage, "cleanup"))
        if action.startswith("lambda:")
    }
    assert invokes == {("lambda:InvokeFunction", ("App", function_id))}
    [container] = task_definition(stage, "App", "cleanup")["ContainerDefinitions"]
    assert environment(container)["COMPRESSOR_FUNCTION_NAME"] == {"Ref": function_id}


def test_pending_cleanup_runs_on_a_schedule_in_private_subnets(stage: StageTemplates) -> None:
    [rule] = [
        r["Properties"]
        for r in stage.resources("App", "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    assert rule["ScheduleExpression"] == f"rate({stage.config.pending_cleanup_every_hours} hours)"
    assert rule["State"] == "ENABLED"
    [target] = rule["Targets"]
    task_ids = [
        k
        for k, t in stage.resources("App", "AWS::ECS::TaskDefinition").items()
        if [c["Name"] for c in t["Properties"]["ContainerDefinitions"]] == ["cleanup"]
    ]
    ecs_parameters = target["EcsParameters"]
    assert ecs_parameters["TaskDefinitionArn"] == {"Ref": task_ids[0]}
    assert ecs_parameters["LaunchType"] == "FARGATE"
    assert ecs_parameters["TaskCount"] == 1
    network = ecs_parameters["NetworkConfiguration"]["AwsVpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    tiers = subnet_tiers(stage)
    assert sorted(tiers[stage.resolve("App", s)[1]["Ref"]] for s in network["Subnets"]) == [
        "Private",
        "Private",
    ]
    [group] = network["SecurityGroups"]
    assert stage.resolve("App", group)[1] == stage.output("Network", "TaskSecurityGroupId")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    assert target.get("Input", "{}") == "{}"  # no overrides: the task definition's own command runs
    # EventBridge's role may start exactly this task definition in the cluster and pass its two roles.
    role = target["RoleArn"]["Fn::GetAtt"][0]
    task = stage.resources("App", "AWS::ECS::TaskDefinition")[task_ids[0]]["Properties"]
    assert permissions(stage, "App", role) == {
        ("ecs:RunTask", _Frozen({"Ref": task_ids[0]})),
        ("iam:PassRole", _Frozen(task["TaskRoleArn"])),
        ("iam:PassRole", _Frozen(task["ExecutionRoleArn"])),
    }
    [policy] = [
        p
        for p in stage.resources("App", "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"]["Roles"]
    ]
    [run_task] = [
        st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st["Action"] == "ecs:RunTask"
    ]
    [cluster_id] = stage.resources("Network", "AWS::ECS::Cluster")
    assert stage.owner("App", run_task["Condition"]["ArnEquals"]["ecs:cluster"]) == ("Network", cluster_id)


def test_migration_task_roles_have_the_names_the_pipeline_may_pass(stage: StageTemplates) -> None:
    props = task_definition(stage, "Migrations", "migrate")
    roles = stage.resources("Migrations", "AWS::IAM::Role")
    names = {
        kind: roles[props[arn]["Fn::GetAtt"][0]]["Properties"]["RoleName"]
        for kind, arn in (("task", "TaskRoleArn"), ("execution", "ExecutionRoleArn"))
    }
    assert names == {kind: f"yoctogram-{stage.config.name}-migrate-{kind}" for kind in ("task", "execution")}


def test_a_failed_cleanup_run_is_published_to_the_alarm_topic(stage: StageTemplates) -> None:
    [rule] = [
        r["Properties"]
        for r in stage.resources("App", "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.ecs"]
    ]
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    detail = pattern["detail"]
    assert detail["lastStatus"] == ["STOPPED"]
    [family] = detail["taskDefinitionArn"]
    assert family["prefix"].endswith(f":task-definition/yoctogram-{stage.config.name}-cleanup:")
    assert {"containers": {"name": ["cleanup"], "exitCode": [{"anything-but": 0}]}} in detail["$or"]
    assert {"stopCode": ["TaskFailedToStart"]} in detail["$or"]
    [cluster] = detail["clusterArn"]
    [cluster_id] = stage.resources("Network", "AWS::ECS::Cluster")
    assert stage.owner("App", cluster) == ("Network", cluster_id)
    [target] = rule["Targets"]
    [topic_id] = stage.resources("App", "AWS::SNS::Topic")
    assert target["Arn"] == {"Ref": topic_id}
    assert "stoppedReason" in json.dumps(target["InputTransformer"])
    # EventBridge may publish to the (KMS-encrypted) topic.
    [policy] = stage.resources("App", "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s.get("Principal") == {"Service": "events.amazonaws.com"} and s["Action"] == "sns:Publish"
        for s in statements
    )
    [key] = stage.resources("App", "AWS::KMS::Key").values()
    key_statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any("events.amazonaws.com" in str(s["Principal"].get("Service")) for s in key_statements)
