"""The web service: Fargate tasks (ARM64) in the private subnets behind a public HTTPS load balancer."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stages.components.backend_settings import (
    ARM64_LINUX,
    CONTAINER_HEALTH_CHECK,
    CONTAINER_PORT,
    HEALTH_CHECK_PATH,
    BackendSettings,
)
from stages.components.cdn import ORIGIN_VERIFY_HEADER
from stages.components.network import PRIVATE, PUBLIC
from stages.components.telemetry import TaskTelemetry
from stages.config import EnvironmentConfig

DEREGISTRATION_DELAY = cdk.Duration.seconds(20)
"""Short: requests are short, and a long drain only slows every deployment down."""


class WebService(Construct):
    """The API's Fargate service, its load balancer and its autoscaling.

    - The load balancer sits in the public subnets and answers HTTPS only, with the regional certificate
      of `origin_domain_name` (CloudFront's origin for `/api/*`; an alias record here points it at the
      load balancer). It is locked to CloudFront twice: its security group admits only CloudFront's
      origin-facing prefix list, and its listener forwards only requests that carry the secret
      `X-Origin-Verify` header CloudFront adds (`origin_verify_value`), answering 403 to anything else
      (another CloudFront distribution shares those addresses). To replace that value, see
      stages/runbooks/origin-verify-header.md.
    - Tasks run in the private subnets with the tasks' security group; the load balancer reaches them
      on the container port only, and checks `/api/v1/health`.
    - Deployments roll with 100% of the desired count kept healthy; the circuit breaker and the
      deployment alarms (wired by `use_deployment_alarms`) roll a bad deployment back.
    - Autoscaling follows CPU and ALB requests per target, between the configured min and max.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        cluster: ecs.ICluster,
        task_security_group: ec2.ISecurityGroup,
        image: ecs.ContainerImage,
        router_image: ecs.ContainerImage,
        settings: BackendSettings,
        datadog_api_key: secretsmanager.ISecret,
        hosted_zone: route53.IHostedZone,
        access_logs: s3.IBucket,
        origin_verify_value: str,
    ) -> None:
        super().__init__(scope, construct_id)

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "TaskDefinition",
            family=f"yoctogram-{config.name}-web",
            cpu=config.task_cpu,
            memory_limit_mib=config.task_memory_mib,
            runtime_platform=ARM64_LINUX,
        )
        self.telemetry = TaskTelemetry(
            self,
            "Telemetry",
            config=config,
            task_definition=self.task_definition,
            service="yoctogram-api",
            router_image=router_image,
            datadog_api_key=datadog_api_key,
        )
        settings.grant_to(self.task_definition)
        self.task_definition.add_container(
            "App",
            container_name="app",
            image=image,
            essential=True,
            environment=settings.environment,
            secrets=settings.secrets,
            port_mappings=[ecs.PortMapping(container_port=CONTAINER_PORT, name="http")],
            health_check=ecs.HealthCheck(
                command=CONTAINER_HEALTH_CHECK,
                interval=cdk.Duration.seconds(15),
                timeout=cdk.Duration.seconds(5),
                retries=3,
                start_period=cdk.Duration.seconds(30),
            ),
            stop_timeout=cdk.Duration.seconds(30),
            docker_labels=self.telemetry.docker_labels,
            logging=self.telemetry.app_logging,
        )
        Validations.of(self.task_definition).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-ECS2",
                reason="The web task's plain environment holds only names and sizes (bucket names, queue URL, "
                "site URL, Datadog site, pool sizes, the CloudFront key id, the database secret's ARN); every "
                "credential reaches the containers from Secrets Manager: as ECS secrets, and the database "
                "password read from its secret when a connection opens.",
            )
        )

        self.load_balancer = self._load_balancer(config=config, vpc=cluster.vpc, access_logs=access_logs)
        certificate = acm.Certificate(
            self,
            "Certificate",
            domain_name=config.origin_domain_name,
            validation=acm.CertificateValidation.from_dns(hosted_zone),
        )
        self.https_listener = self.load_balancer.add_listener(
            "Https",
            port=443,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            open=False,
            default_action=elbv2.ListenerAction.fixed_response(
                403, content_type="text/plain", message_body="Forbidden"
            ),
        )
        route53.ARecord(
            self,
            "OriginAlias",
            zone=hosted_zone,
            record_name=config.origin_domain_name,
            target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(self.load_balancer)),
        )

        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=self.task_definition,
            security_groups=[task_security_group],
            vpc_subnets=PRIVATE,
            assign_public_ip=False,
            min_healthy_percent=100,
            max_healthy_percent=200,
            health_check_grace_period=cdk.Duration.seconds(60),
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_ecs_managed_tags=True,
        )
        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "TargetGroup",
            vpc=cluster.vpc,
            port=CONTAINER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=DEREGISTRATION_DELAY,
            health_check=elbv2.HealthCheck(
                path=HEALTH_CHECK_PATH,
                healthy_http_codes="200",
                interval=cdk.Duration.seconds(15),
                timeout=cdk.Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
            targets=[self.service.load_balancer_target(container_name="app", container_port=CONTAINER_PORT)],
        )
        self.https_listener.add_target_groups(
            "App",
            target_groups=[self.target_group],
            priority=1,
            conditions=[elbv2.ListenerCondition.http_header(ORIGIN_VERIFY_HEADER, [origin_verify_value])],
        )

        scaling = self.service.auto_scale_task_count(
            min_capacity=config.min_tasks, max_capacity=config.max_tasks
        )
        scaling.scale_on_cpu_utilization(
            "Cpu",
            policy_name=f"yoctogram-{config.name}-web-cpu",
            target_utilization_percent=config.scaling_cpu_target_percent,
            scale_in_cooldown=cdk.Duration.seconds(120),
            scale_out_cooldown=cdk.Duration.seconds(60),
        )
        scaling.scale_on_request_count(
            "Requests",
            policy_name=f"yoctogram-{config.name}-web-requests",
            requests_per_target=config.scaling_requests_per_target,
            target_group=self.target_group,
            scale_in_cooldown=cdk.Duration.seconds(120),
            scale_out_cooldown=cdk.Duration.seconds(60),
        )

    def _load_balancer(
        self, *, config: EnvironmentConfig, vpc: ec2.IVpc, access_logs: s3.IBucket
    ) -> elbv2.ApplicationLoadBalancer:
        security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=vpc,
            description="Load balancer: HTTPS from the CloudFront origin-facing servers only",
            allow_all_outbound=False,
        )
        # One rule only: a prefix list counts as its weight (CloudFront's: 55) against the group's rules
        # quota (60 by default), so a second rule (say, port 80) would not fit. CloudFront speaks HTTPS only.
        security_group.add_ingress_rule(
            ec2.Peer.prefix_list(config.cloudfront_prefix_list_id),
            ec2.Port.tcp(443),
            "HTTPS from CloudFront (origin-facing prefix list)",
        )
        load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=True,
            vpc_subnets=PUBLIC,
            security_group=security_group,
            drop_invalid_header_fields=True,
            deletion_protection=config.retain_data,
            # Set, not defaulted: the API's keep-alive (HTTP_KEEP_ALIVE_SECONDS) is derived from it.
            idle_timeout=cdk.Duration.seconds(config.load_balancer_idle_timeout_seconds),
        )
        load_balancer.log_access_logs(access_logs, prefix="alb")
        return load_balancer

    def use_deployment_alarms(self, alarms: dict[str, cloudwatch.Alarm]) -> None:
        """Roll a deployment back when one of these alarms (by literal name) fires during it.

        Literal names rather than the alarms' Ref tokens, plus an explicit dependency, so the service
        exists only after its alarms and no reference can ever loop back (see the ECS module's
        "Deployment alarms" notes).
        """
        self.service.enable_deployment_alarms(list(alarms), behavior=ecs.AlarmBehavior.ROLLBACK_ON_ALARM)
        self.service.node.add_dependency(*alarms.values())
