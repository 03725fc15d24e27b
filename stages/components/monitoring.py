"""Alarms (to an encrypted SNS topic) and a dashboard for one stage's service, database and queue."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stages.config import EnvironmentConfig

ONE_MINUTE = cdk.Duration.minutes(1)
TARGET_GROUP_LABELS = ("a", "b")
"""The web service's two target groups in alarm names: `a` the primary, `b` the alternate."""


class Monitoring(Construct):
    """The stage's alarms, their SNS topic and a CloudWatch dashboard.

    Alarms: HTTP 5xx from the tasks and from the load balancer, p95 target response time, unhealthy
    targets, web service CPU, Aurora capacity pinned at its configured maximum, the age of the oldest
    unhandled event, any message in the dead-letter queue, any event the compressor failed on (its
    failure queue), and a scheduled cleanup that EventBridge could not start. `deployment_alarms` are the ones that
    say "the new code is broken" and roll an ECS deployment back.

    The web service serves from two target groups, and which one alternates with every deployment (during
    one, both serve: the old revision from one, the new from the other). Service-wide figures are the load
    balancer's (they count both groups); unhealthy targets are summed over both; and each group has its own
    5xx-ratio and p95 alarms, which during a deployment judge the new revision alone (the deployment alarms).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_groups: tuple[elbv2.ApplicationTargetGroup, elbv2.ApplicationTargetGroup],
        web_service: ecs.FargateService,
        worker_service: ecs.FargateService,
        database: rds.IDatabaseCluster,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        compressor_failures: sqs.IQueue,
        cleanup_rule: events.IRule,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._action = cloudwatch_actions.SnsAction(self._alarm_topic(config))
        self.alarm_names: dict[str, str] = {}
        groups = dict(zip(TARGET_GROUP_LABELS, target_groups, strict=True))
        self._web_alarms(load_balancer, groups)
        self._revision_alarms(groups)
        self._backend_alarms(
            web_service=web_service,
            database=database,
            queue=queue,
            dead_letter_queue=dead_letter_queue,
            compressor_failures=compressor_failures,
            cleanup_rule=cleanup_rule,
        )
        # During a deployment the new revision is in one group and the old in the other: an alarm of the
        # old one's group (already failing before the deployment) also stops it, which keeps a release
        # from hiding a problem it did not cause.
        self.deployment_alarms = {
            self.alarm_names[construct_id]: alarm
            for construct_id, alarm in (
                *((f"Revision5xxRatio{label.upper()}", self.revision_5xx[label]) for label in groups),
                *((f"RevisionP95{label.upper()}", self.revision_p95[label]) for label in groups),
                ("UnhealthyHosts", self.unhealthy_hosts),
            )
        }

        self._dashboard(load_balancer, groups, web_service, worker_service, database)

    def _alarm_topic(self, config: EnvironmentConfig) -> sns.Topic:
        """The SNS topic every alarm notifies (on alarm and back to OK), encrypted with a key CloudWatch
        may use, and open to this environment's alarms only."""
        # CloudWatch may publish to an encrypted topic only with a customer managed key it can use.
        topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the alarm topic; CloudWatch alarms may use it to publish",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):  # alarms; failed scheduled runs
            topic_key.grant(iam.ServicePrincipal(service), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "AlarmTopic", master_key=topic_key, enforce_ssl=True)
        # A topic policy replaces SNS's default one, which let the account's alarms publish: without this,
        # alarm history says "not authorized to perform: SNS:Publish" and nobody hears of any alarm.
        stack = cdk.Stack.of(self)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisEnvironment",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}"
                        f":alarm:yoctogram-{config.name}-*"
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        return self.topic

    def _alarm(
        self,
        construct_id: str,
        name: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        *,
        evaluation_periods: int | None = None,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) -> cloudwatch.Alarm:
        config = self._config
        created = cloudwatch.Alarm(
            self,
            construct_id,
            # Named, not derived from logical ids: the web service's deployment configuration refers
            # to alarms by name, and readable names are what on-call sees.
            alarm_name=f"yoctogram-{config.name}-{name}",
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods or config.alarm_thresholds.evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        self.alarm_names[construct_id] = f"yoctogram-{config.name}-{name}"
        created.add_alarm_action(self._action)
        created.add_ok_action(self._action)
        return created

    def _web_alarms(
        self, load_balancer: elbv2.ApplicationLoadBalancer, groups: dict[str, elbv2.ApplicationTargetGroup]
    ) -> None:
        """Service-wide: 5xx from the tasks and from the load balancer, p95, unhealthy targets."""
        thresholds = self._config.alarm_thresholds
        self.target_5xx = self._alarm(
            "Target5xx",
            "target-5xx",
            # The load balancer's count covers both target groups (they are its only ones).
            load_balancer.metrics.http_code_target(
                elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=ONE_MINUTE, statistic="Sum"
            ),
            thresholds.target_5xx_per_minute,
            "The API answers HTTP 5xx.",
        )
        self.elb_5xx = self._alarm(
            "LoadBalancer5xx",
            "load-balancer-5xx",
            load_balancer.metrics.http_code_elb(
                elbv2.HttpCodeElb.ELB_5XX_COUNT, period=ONE_MINUTE, statistic="Sum"
            ),
            thresholds.elb_5xx_per_minute,
            "The load balancer answers HTTP 5xx itself (no healthy target, timeouts).",
        )
        self.response_time = self._alarm(
            "TargetResponseTime",
            "target-response-time",
            load_balancer.metrics.target_response_time(period=ONE_MINUTE, statistic="p95"),
            thresholds.target_response_time_p95_seconds,
            "p95 of the API's response time is above the target.",
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )
        self.unhealthy_hosts = self._alarm(
            "UnhealthyHosts",
            "unhealthy-hosts",
            cloudwatch.MathExpression(
                expression=" + ".join(f"FILL({label}, 0)" for label in groups),
                using_metrics={
                    label: group.metrics.unhealthy_host_count(period=ONE_MINUTE, statistic="Maximum")
                    for label, group in groups.items()
                },
                label="Unhealthy targets (both target groups)",
                period=ONE_MINUTE,
            ),
            1,
            "At least one task fails the /api/v1/health check.",
        )

    def _revision_alarms(self, groups: dict[str, elbv2.ApplicationTargetGroup]) -> None:
        """Each target group's 5xx ratio and p95: during a deployment, the new revision's."""
        deployment = self._config.web_deployment
        minimum = deployment.rollback_min_requests_per_minute
        self.revision_5xx: dict[str, cloudwatch.Alarm] = {}
        self.revision_p95: dict[str, cloudwatch.Alarm] = {}
        for label, group in groups.items():
            requests = group.metrics.request_count(period=ONE_MINUTE, statistic="Sum")
            self.revision_5xx[label] = self._alarm(
                f"Revision5xxRatio{label.upper()}",
                f"revision-5xx-ratio-{label}",
                cloudwatch.MathExpression(
                    # Not judged below `minimum` requests a minute: 0 is never over the threshold.
                    # Ids carry the group's label: a graph may show both groups' expressions.
                    expression=f"IF(requests_{label} >= {minimum}, "
                    f"100 * FILL(errors_{label}, 0) / requests_{label}, 0)",
                    using_metrics={
                        f"requests_{label}": requests,
                        f"errors_{label}": group.metrics.http_code_target(
                            elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=ONE_MINUTE, statistic="Sum"
                        ),
                    },
                    label=f"5xx % of target group {label.upper()}",
                    period=ONE_MINUTE,
                ),
                deployment.rollback_5xx_percent,
                f"Target group {label.upper()} answers too many HTTP 5xx (web_deployment.rollback_5xx_percent). "
                "During a deployment, when it holds the new revision, this rolls the deployment back.",
                evaluation_periods=deployment.rollback_evaluation_minutes,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            )
            self.revision_p95[label] = self._alarm(
                f"RevisionP95{label.upper()}",
                f"revision-p95-{label}",
                cloudwatch.MathExpression(
                    expression=f"IF(requests_{label} >= {minimum}, latency_{label}, 0)",
                    using_metrics={
                        f"requests_{label}": requests,
                        f"latency_{label}": group.metrics.target_response_time(
                            period=ONE_MINUTE, statistic="p95"
                        ),
                    },
                    label=f"p95 (s) of target group {label.upper()}",
                    period=ONE_MINUTE,
                ),
                deployment.rollback_p95_seconds,
                f"p95 of target group {label.upper()} is too slow (web_deployment.rollback_p95_seconds). During "
                "a deployment, when it holds the new revision, this rolls the deployment back.",
                evaluation_periods=deployment.rollback_evaluation_minutes,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            )

    def _backend_alarms(
        self,
        *,
        web_service: ecs.FargateService,
        database: rds.IDatabaseCluster,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        compressor_failures: sqs.IQueue,
        cleanup_rule: events.IRule,
    ) -> None:
        """Web CPU, Aurora at its maximum, the event queue and its dead letters, compressor failures, and a
        cleanup run EventBridge could not start."""
        config = self._config
        thresholds = config.alarm_thresholds
        self.cpu = self._alarm(
            "ServiceCpu",
            "service-cpu",
            web_service.metric_cpu_utilization(period=ONE_MINUTE, statistic="Average"),
            thresholds.service_cpu_percent,
            "Web tasks run hot: autoscaling is at its maximum or lags.",
            evaluation_periods=5,
        )
        self.database_capacity = self._alarm(
            "DatabaseCapacityAtMax",
            "database-capacity-at-max",
            database.metric(
                "ServerlessDatabaseCapacity", period=cdk.Duration.minutes(5), statistic="Maximum"
            ),
            config.aurora_max_acu,
            "Aurora Serverless v2 has been at its configured maximum ACU for 15 minutes.",
        )
        self.queue_age = self._alarm(
            "EventQueueAge",
            "event-queue-age",
            queue.metric_approximate_age_of_oldest_message(period=ONE_MINUTE, statistic="Maximum"),
            thresholds.queue_oldest_message_seconds,
            "The event worker is not keeping up with (or not consuming) the S3 events.",
        )
        self.dead_letters = self._alarm(
            "EventDeadLetters",
            "event-dead-letters",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=ONE_MINUTE, statistic="Maximum"
            ),
            1,
            "An S3 event failed repeatedly and was parked in the dead-letter queue.",
            evaluation_periods=1,
        )
        self.compressor_failures = self._alarm(
            "CompressorFailures",
            "compressor-failures",
            compressor_failures.metric_approximate_number_of_messages_visible(
                period=ONE_MINUTE, statistic="Maximum"
            ),
            1,
            "The compressor failed on an upload after its retries, or EventBridge could not invoke it.",
            evaluation_periods=1,
        )
        self.cleanup_failures = self._alarm(
            "PendingCleanupFailed",
            "pending-cleanup-failed",
            cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="FailedInvocations",
                dimensions_map={"RuleName": cleanup_rule.rule_name},
                period=cdk.Duration.hours(1),
                statistic="Sum",
            ),
            1,
            "EventBridge could not start the scheduled pending-row cleanup task (after its retries); its "
            "log group says why a started run failed.",
            evaluation_periods=1,
        )

    def _dashboard(
        self,
        load_balancer: elbv2.ApplicationLoadBalancer,
        groups: dict[str, elbv2.ApplicationTargetGroup],
        web_service: ecs.FargateService,
        worker_service: ecs.FargateService,
        database: rds.IDatabaseCluster,
    ) -> None:
        config = self._config
        deployment = config.web_deployment
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=cdk.Duration.hours(3))
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                width=24,
                alarms=[
                    self.target_5xx,
                    self.elb_5xx,
                    self.response_time,
                    self.unhealthy_hosts,
                    self.cpu,
                    self.database_capacity,
                    self.queue_age,
                    self.dead_letters,
                    self.compressor_failures,
                    self.cleanup_failures,
                    *self.revision_5xx.values(),
                    *self.revision_p95.values(),
                ],
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Requests and 5xx",
                left=[load_balancer.metrics.request_count(period=ONE_MINUTE, statistic="Sum")],
                right=[self.target_5xx.metric, self.elb_5xx.metric],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Response time",
                left=[
                    load_balancer.metrics.target_response_time(period=ONE_MINUTE, statistic=statistic)
                    for statistic in ("p50", "p95", "p99")
                ],
                width=12,
            ),
        )
        # A deployment, as it happens: the traffic moving from one target group to the other, and each
        # group's 5xx ratio and p95 against the limits that roll a new revision back.
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Requests by target group (deployments shift them)",
                left=[
                    group.metrics.request_count(
                        period=ONE_MINUTE, statistic="Sum", label=f"group {label.upper()}"
                    )
                    for label, group in groups.items()
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="5xx % by target group",
                left=[self.revision_5xx[label].metric for label in groups],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=deployment.rollback_5xx_percent, label="rollback")
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="p95 (s) by target group",
                left=[self.revision_p95[label].metric for label in groups],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=deployment.rollback_p95_seconds, label="rollback")
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Web service",
                left=[web_service.metric_cpu_utilization(), web_service.metric_memory_utilization()],
                right=[
                    metric
                    for label, group in groups.items()
                    for metric in (
                        group.metrics.healthy_host_count(period=ONE_MINUTE, label=f"healthy {label.upper()}"),
                        group.metrics.unhealthy_host_count(
                            period=ONE_MINUTE, label=f"unhealthy {label.upper()}"
                        ),
                    )
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Event worker",
                left=[worker_service.metric_cpu_utilization(), worker_service.metric_memory_utilization()],
                right=[self.queue_age.metric, self.dead_letters.metric, self.compressor_failures.metric],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Aurora",
                left=[database.metric("ServerlessDatabaseCapacity", statistic="Maximum")],
                right=[database.metric_database_connections(), database.metric_cpu_utilization()],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=config.aurora_max_acu, label="max ACU"),
                ],
                width=24,
            )
        )
