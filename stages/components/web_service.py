"""The web service: Fargate tasks (ARM64) in the private subnets behind a public HTTPS load balancer."""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import Validations
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IConstruct

from stages.components.backend_settings import (
    ARM64_LINUX,
    CONTAINER_HEALTH_CHECK,
    CONTAINER_PORT,
    HEALTH_CHECK_PATH,
    BackendSettings,
)
from stages.components.cdn import ORIGIN_VERIFY_HEADER
from stages.components.deployment_hook import SmokeCheckHook
from stages.components.ecs_listener_rules import EcsListenerRules
from stages.components.network import PRIVATE, PUBLIC
from stages.components.telemetry import TaskTelemetry
from stages.config import EnvironmentConfig

DEREGISTRATION_DELAY = cdk.Duration.seconds(20)
"""Short: requests are short, and a long drain only slows every deployment down."""
TEST_LISTENER_PORT = 8443
"""The test listener: ECS points it at a new revision first; only the deployment hook may connect."""
PRODUCTION_RULE_PRIORITY = 10
"""Not 1: CloudFormation creates the rule before it deletes a CloudFormation-owned rule it replaces."""
TEST_RULE_PRIORITY = 1


class WebService(Construct):
    """The API's Fargate service, its load balancer and its autoscaling.

    - The load balancer sits in the public subnets and answers HTTPS only, with the regional certificate
      of `origin_domain_name` (CloudFront's origin for `/api/*`; an alias record here points it at the
      load balancer). It is locked to CloudFront twice: its security group admits only CloudFront's
      origin-facing prefix list, and its listener forwards only requests that carry the secret
      `X-Origin-Verify` header CloudFront adds (the `origin_verify` secret's value), answering 403 to
      anything else (another CloudFront distribution shares those addresses). To replace that value,
      see stages/runbooks/origin-verify-header.md.
    - Tasks run in the private subnets with the tasks' security group; the load balancer reaches them
      on the container port only, and checks `/api/v1/health`.
    - Deployments are gradual (`web_deployment` in config: CANARY or LINEAR): ECS starts the new revision
      in the other of two target groups, the deployment hook smoke-checks it through the test listener
      (port 8443, reachable from the hook's security group only), then ECS shifts production traffic by
      the weights of the production rule. The circuit breaker, the hook and the deployment alarms (wired
      by `use_deployment_alarms`: the new revision's 5xx ratio and p95) roll a bad revision back.
    - The production and test rules are ECS's (stages/components/ecs_listener_rules.py): no stack update
      rewrites where their traffic goes (aws/aws-cdk#36649).
    - Autoscaling follows CPU, and requests per task summed over both target groups (one of them is idle
      between deployments, and which one alternates), between the configured min and max.
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
        origin_verify: secretsmanager.ISecret,
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

        deployment = config.web_deployment
        traffic_shift = ecs.TrafficShiftConfig(
            step_percent=deployment.shift_percent,
            step_bake_time=cdk.Duration.minutes(deployment.step_bake_minutes),
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
            deployment_strategy=ecs.DeploymentStrategy(deployment.strategy),
            canary_configuration=traffic_shift if deployment.strategy == "CANARY" else None,
            linear_configuration=traffic_shift if deployment.strategy == "LINEAR" else None,
            bake_time=cdk.Duration.minutes(deployment.bake_minutes),
        )
        self.target_group = self._target_group("TargetGroup", cluster.vpc)
        """The primary target group: the service's first revision registers here."""
        self.alternate_target_group = self._target_group("AlternateTargetGroup", cluster.vpc)
        """Each deployment's new revision registers in whichever group the running one is not in."""
        self.target_groups = (self.target_group, self.alternate_target_group)

        self.test_listener = self.load_balancer.add_listener(
            "Test",
            port=TEST_LISTENER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            open=False,
            default_action=elbv2.ListenerAction.fixed_response(
                404, content_type="text/plain", message_body="Not Found"
            ),
        )
        self.listener_rules = EcsListenerRules(
            self,
            "ListenerRules",
            config=config,
            load_balancer=self.load_balancer,
            primary=self.target_group,
            alternate=self.alternate_target_group,
        )
        self.production_rule = self.listener_rules.rule(
            "ProductionRule",
            listener=self.https_listener,
            priority=PRODUCTION_RULE_PRIORITY,
            header=(ORIGIN_VERIFY_HEADER, origin_verify),
        )
        self.test_rule = self.listener_rules.rule(
            "TestRule", listener=self.test_listener, priority=TEST_RULE_PRIORITY, path_patterns=["/*"]
        )
        for target_group in self.target_groups:
            # The groups reach the load balancer through the rules: metrics get its dimension, and the
            # service waits for the rules (ECS refuses a target group no load balancer uses).
            target_group.register_listener(self.https_listener, self.production_rule)
            target_group.register_listener(self.test_listener, self.test_rule)

        self.hook = SmokeCheckHook(
            self,
            "DeploymentHook",
            config=config,
            vpc=cluster.vpc,
            load_balancer=self.load_balancer,
            test_port=TEST_LISTENER_PORT,
            container_name="app",
        )
        alternate = _AlternateTarget(
            alternate_target_group=self.alternate_target_group,
            role=self._load_balancer_role(),
            production_rule_arn=self.production_rule.ref,
            test_rule_arn=self.test_rule.ref,
        )
        self.target_group.add_target(
            self.service.load_balancer_target(
                container_name="app", container_port=CONTAINER_PORT, alternate_target=alternate
            )
        )
        service_resource = self.service.node.default_child
        assert isinstance(service_resource, ecs.CfnService)
        service_resource.add_property_override(
            "DeploymentConfiguration.LifecycleHooks", [self.hook.lifecycle_hook()]
        )
        self.service.node.add_dependency(self.hook.invoke_role)

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
        self._scale_on_requests(config=config, scaling=scaling, cluster_name=cluster.cluster_name)

    def _target_group(self, construct_id: str, vpc: ec2.IVpc) -> elbv2.ApplicationTargetGroup:
        return elbv2.ApplicationTargetGroup(
            self,
            construct_id,
            vpc=vpc,
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
        )

    def _load_balancer_role(self) -> iam.Role:
        """The role ECS shifts the rules' weights and (de)registers tasks with."""
        role = iam.Role(
            self,
            "LoadBalancerRole",
            assumed_by=iam.ServicePrincipal("ecs.amazonaws.com"),
            description="ECS shifts the web service's listener rules and registers its tasks with this role",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "AmazonECSInfrastructureRolePolicyForLoadBalancers"
                )
            ],
        )
        Validations.of(role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                "AmazonECSInfrastructureRolePolicyForLoadBalancers]",
                reason="AWS's own policy for ECS's managed traffic shifting: it follows what ECS calls as the "
                "feature grows, and only ECS (the role's one trusted principal) uses it.",
            )
        )
        return role

    def _scale_on_requests(
        self, *, config: EnvironmentConfig, scaling: ecs.ScalableTaskCount, cluster_name: str
    ) -> None:
        """Target tracking on requests per task: both target groups' requests over the tasks the service
        wants. `ALBRequestCountPerTarget` takes one target group, and which one serves alternates with
        every deployment; during a deployment both serve, and the new revision's tasks are not yet the
        service's desired count, so dividing by the desired count keeps the figure what it was before."""
        dimensions = [
            [
                appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                    name="TargetGroup", value=target_group.target_group_full_name
                ),
                appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                    name="LoadBalancer", value=self.load_balancer.load_balancer_full_name
                ),
            ]
            for target_group in self.target_groups
        ]
        queries = [
            appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                id=query_id,
                metric_stat=appscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
                    metric=appscaling.CfnScalingPolicy.TargetTrackingMetricProperty(
                        namespace="AWS/ApplicationELB", metric_name="RequestCount", dimensions=dims
                    ),
                    stat="Sum",
                ),
                return_data=False,
            )
            for query_id, dims in zip(("a", "b"), dimensions, strict=True)
        ]
        queries.append(
            appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                id="tasks",
                metric_stat=appscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
                    metric=appscaling.CfnScalingPolicy.TargetTrackingMetricProperty(
                        namespace="ECS/ContainerInsights",
                        metric_name="DesiredTaskCount",
                        dimensions=[
                            appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                                name="ClusterName", value=cluster_name
                            ),
                            appscaling.CfnScalingPolicy.TargetTrackingMetricDimensionProperty(
                                name="ServiceName", value=self.service.service_name
                            ),
                        ],
                    ),
                    stat="Average",
                ),
                return_data=False,
            )
        )
        queries.append(
            appscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                id="perTask",
                expression="(FILL(a, 0) + FILL(b, 0)) / tasks",
                label="Requests per task (both target groups)",
                return_data=True,
            )
        )
        target = scaling.node.find_child("Target")
        assert isinstance(target, appscaling.ScalableTarget)
        appscaling.CfnScalingPolicy(
            self,
            "RequestsPolicy",
            policy_name=f"yoctogram-{config.name}-web-requests",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.scalable_target_id,
            target_tracking_scaling_policy_configuration=appscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=config.scaling_requests_per_target,
                scale_in_cooldown=120,
                scale_out_cooldown=60,
                customized_metric_specification=appscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metrics=queries
                ),
            ),
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
        # A prefix list counts as its weight (CloudFront's: 55) against the group's rules quota (60 by
        # default): a second CloudFront rule (say, port 80) would not fit, and CloudFront speaks HTTPS only.
        # The one other rule, the deployment hook's group on the test port, counts as one.
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


@jsii.implements(ecs.IAlternateTarget)
class _AlternateTarget:
    """The blue/green pair for the service's load balancer entry, with our own rules' ARNs.

    `ecs.AlternateTarget` takes only `elbv2.ApplicationListenerRule`s, which CloudFormation owns (the trap
    ecs_listener_rules.py avoids), so the same configuration is given here from the custom rules.
    """

    def __init__(
        self,
        *,
        alternate_target_group: elbv2.IApplicationTargetGroup,
        role: iam.IRole,
        production_rule_arn: str,
        test_rule_arn: str,
    ) -> None:
        self._config = ecs.AlternateTargetConfig(
            alternate_target_group_arn=alternate_target_group.target_group_arn,
            role_arn=role.role_arn,
            production_listener_rule=production_rule_arn,
            test_listener_rule=test_rule_arn,
        )

    def bind(self, scope: IConstruct) -> ecs.AlternateTargetConfig:
        return self._config
