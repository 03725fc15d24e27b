"""App stack: the web service, event worker, pending-row cleanup, compressor, CloudFront, DNS, alarms and dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stages import names
from stages.components.backend_settings import backend_settings
from stages.components.cdn import Cdn
from stages.components.compressor import QUARANTINE, Compressor
from stages.components.event_worker import EventWorker
from stages.components.image_access import grant_image_objects
from stages.components.images_buckets import ORIGINALS, RENDITIONS
from stages.components.monitoring import Monitoring
from stages.components.pending_cleanup import PendingCleanup
from stages.components.task_roles import acknowledge_image_pull
from stages.components.telemetry import log_router_image
from stages.components.web_client import WebClient
from stages.components.web_service import WebService
from stages.config import EnvironmentConfig
from stages.data_stack import DataStack
from stages.edge_stack import EdgeStack
from stages.network_stack import NetworkStack
from stages.pinned_stack import PinnedStack


class AppStack(PinnedStack):
    """Deploys last: the ECS services from the backend image behind the load balancer, the compressor,
    CloudFront in front of it all with the web client, DNS, and monitoring.

    From the edge stack (us-east-1) it takes the certificate, the web ACL and the media key group; the
    CloudFront public key id reaches the tasks as `media_signing_key_id`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        edge: EdgeStack,
        network: NetworkStack,
        data: DataStack,
        image: ecs.ContainerImage,
        media_signing_key_id: str,
        frontend_build: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        settings = backend_settings(self, config=config, media_signing_key_id=media_signing_key_id)
        # What the network and data stacks named from config, imported by name (see `stages.names`).
        cluster = ecs.Cluster.from_cluster_attributes(
            self, "Cluster", cluster_name=names.ecs_cluster(config), vpc=network.vpc
        )
        event_queue, dead_letter_queue = (
            sqs.Queue.from_queue_attributes(
                self,
                construct_id,
                queue_arn=self.format_arn(service="sqs", resource=queue_name),
                queue_url=names.queue_url(config, queue_name),
            )
            for construct_id, queue_name in (
                ("EventQueue", names.event_queue(config)),
                ("EventDeadLetters", names.event_dead_letter_queue(config)),
            )
        )
        database = rds.DatabaseCluster.from_database_cluster_attributes(
            self, "Database", cluster_identifier=names.database_cluster_identifier(config)
        )
        datadog_api_key = secretsmanager.Secret.from_secret_name_v2(
            self, "DatadogApiKey", config.datadog_api_key_secret_name
        )
        hosted_zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "HostedZone", hosted_zone_id=config.hosted_zone_id, zone_name=config.hosted_zone_name
        )
        router_image = log_router_image(self, config=config)
        # Imported (mutable) so the rules that let the load balancer reach the tasks are created here;
        # in the network stack they would reference this stack and make a dependency cycle.
        task_security_group = ec2.SecurityGroup.from_security_group_id(
            self,
            "TaskSecurityGroup",
            network.task_security_group.security_group_id,
            allow_all_outbound=True,
            mutable=True,
        )
        # The value of the header CloudFront adds and the load balancer requires: generated, never seen.
        origin_verify = secretsmanager.Secret(
            self,
            "OriginVerify",
            secret_name=names.origin_verify_secret(config),
            description="X-Origin-Verify: the header CloudFront adds to requests for the load balancer",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        Validations.of(origin_verify).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SMG4",
                reason="Nobody uses this value: CloudFormation writes it into the distribution's origin header, "
                "and the listener-rule function into the production rule, each only when its resource "
                "changes, so a rotation Lambda would change nothing. It is replaced by a deployment instead: "
                "stages/runbooks/origin-verify-header.md.",
            )
        )
        # Resolved by CloudFormation from Secrets Manager (a dynamic reference): never in the template.
        origin_verify_value = origin_verify.secret_value.unsafe_unwrap()

        self.web = WebService(
            self,
            "Web",
            config=config,
            cluster=cluster,
            task_security_group=task_security_group,
            image=image,
            router_image=router_image,
            settings=settings,
            datadog_api_key=datadog_api_key,
            hosted_zone=hosted_zone,
            access_logs=data.access_logs,
            origin_verify=origin_verify,
        )
        grant_image_objects(
            self.web.task_definition.task_role,
            who="The API",
            bucket_names=data.image_bucket_names,
            grants=[
                (
                    ORIGINALS,
                    "*",
                    ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                    "signs upload forms for, HEADs and deletes originals",
                ),
                (
                    RENDITIONS,
                    "*",
                    ["s3:GetObject", "s3:DeleteObject"],
                    "reads refusal markers and deletes renditions and markers with their image",
                ),
                (QUARANTINE, "*", ["s3:DeleteObject"], "deletes a refused original with its image"),
            ],
            list_buckets=True,
        )

        self.worker = EventWorker(
            self,
            "EventWorker",
            config=config,
            cluster=cluster,
            task_security_group=task_security_group,
            image=image,
            router_image=router_image,
            settings=settings,
            datadog_api_key=datadog_api_key,
            queue=event_queue,
        )
        grant_image_objects(
            self.worker.task_definition.task_role,
            who="The event worker",
            bucket_names=data.image_bucket_names,
            grants=[
                (RENDITIONS, "*.rejected", ["s3:GetObject"], "reads the reason of a refusal marker"),
                # An object whose image row does not exist (the image was deleted while its upload form
                # was still valid) is deleted when its event arrives: never served, never left behind.
                (ORIGINALS, "*", ["s3:DeleteObject"], "deletes an original whose image no longer exists"),
                (
                    RENDITIONS,
                    "*",
                    ["s3:DeleteObject"],
                    "deletes the outputs of an image that no longer exists",
                ),
                (
                    QUARANTINE,
                    "*",
                    ["s3:DeleteObject"],
                    "deletes a refused original of an image that no longer exists",
                ),
            ],
            list_buckets=False,
        )

        self.cleanup = PendingCleanup(
            self,
            "PendingCleanup",
            config=config,
            cluster=cluster,
            task_security_group=task_security_group,
            image=image,
            settings=settings,
        )
        grant_image_objects(
            self.cleanup.task_definition.task_role,
            who="The pending-row cleanup",
            bucket_names=data.image_bucket_names,
            grants=[
                (ORIGINALS, "*", ["s3:GetObject"], "HEADs the original of each stale pending row"),
                (RENDITIONS, "*", ["s3:GetObject"], "HEADs renditions and reads markers of stuck images"),
            ],
            # Without ListBucket, S3 answers a HEAD of a missing key 403 instead of 404, and the cleanup
            # (rightly) stops rather than treat "forbidden" as "never uploaded".
            list_buckets=True,
        )

        self.compressor = Compressor(self, "Compressor", config=config, bucket_names=data.image_bucket_names)
        self.cleanup.reconcile_with(self.compressor.function)

        self.cdn = Cdn(
            self,
            "Cdn",
            config=config,
            certificate=edge.certificate,
            web_acl_arn=edge.web_acl.attr_arn,
            key_group=edge.media_signing.key_group,
            origin_verify_value=origin_verify_value,
            image_bucket_names=data.image_bucket_names,
            access_logs=data.access_logs,
            hosted_zone=hosted_zone,
        )
        self.web_client = WebClient(
            self,
            "WebClient",
            config=config,
            build=frontend_build,
            bucket=self.cdn.site_bucket,
            distribution=self.cdn.distribution,
        )

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            load_balancer=self.web.load_balancer,
            target_groups=self.web.target_groups,
            web_service=self.web.service,
            worker_service=self.worker.service,
            database=database,
            queue=event_queue,
            dead_letter_queue=dead_letter_queue,
            compressor_failures=self.compressor.failures,
            cleanup_rule=self.cleanup.rule,
        )
        self.web.use_deployment_alarms(self.monitoring.deployment_alarms)
        self.cleanup.report_failures_to(self.monitoring.topic)

        for task_definition in (
            self.web.task_definition,
            self.worker.task_definition,
            self.cleanup.task_definition,
        ):
            acknowledge_image_pull(task_definition)

        self.outputs = {
            "SiteUrl": cdk.CfnOutput(self, "SiteUrl", value=config.site_url),
            "ServiceName": cdk.CfnOutput(self, "ServiceName", value=self.web.service.service_name),
            "LoadBalancerFullName": cdk.CfnOutput(
                self, "LoadBalancerFullName", value=self.web.load_balancer.load_balancer_full_name
            ),
            "TargetGroupFullName": cdk.CfnOutput(
                self, "TargetGroupFullName", value=self.web.target_group.target_group_full_name
            ),
            # The web service serves from either target group (they swap at every deployment).
            "AlternateTargetGroupFullName": cdk.CfnOutput(
                self,
                "AlternateTargetGroupFullName",
                value=self.web.alternate_target_group.target_group_full_name,
            ),
            "CompressorFunctionName": cdk.CfnOutput(
                self, "CompressorFunctionName", value=self.compressor.function.function_name
            ),
        }
