"""App stack: the web service and its load balancer, the event worker, alarms and dashboard."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stages.components.backend_settings import backend_settings
from stages.components.event_worker import EventWorker
from stages.components.monitoring import Monitoring
from stages.components.task_roles import acknowledge_image_pull
from stages.components.telemetry import log_router_image
from stages.components.web_service import WebService
from stages.config import EnvironmentConfig
from stages.data_stack import DataStack
from stages.network_stack import NetworkStack
from stages.pinned_stack import PinnedStack

# What the API does with the images buckets (DESIGN: keys are `{privacy}/{originals|renditions}/...`):
# sign browser uploads of originals, and read/HEAD originals and renditions.
UPLOAD_PREFIX = "originals"


class AppStack(PinnedStack):
    """Deploys last: the ECS services from the backend image, behind the load balancer, and monitoring.

    Issue 8 adds CloudFront, DNS, the compressor and the EventBridge rules; they receive the load
    balancer (`web.load_balancer`), the buckets and the queue from the stage, and pass the CloudFront
    public key id in as `media_signing_key_id`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        network: NetworkStack,
        data: DataStack,
        image: ecs.ContainerImage,
        media_signing_key_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        settings = backend_settings(
            self,
            config=config,
            database_secret=data.database.secret,
            secret_key=data.secret_key,
            media_signing_key_id=media_signing_key_id,
            public_bucket_name=data.public_images_bucket_name,
            private_bucket_name=data.private_images_bucket_name,
            event_queue_url=data.event_queue.queue_url,
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

        self.web = WebService(
            self,
            "Web",
            config=config,
            cluster=network.cluster,
            task_security_group=task_security_group,
            image=image,
            router_image=router_image,
            settings=settings,
            datadog_api_key=datadog_api_key,
            hosted_zone=hosted_zone,
            access_logs=data.access_logs,
        )
        self._grant_images_access(
            self.web.task_definition.task_role,
            bucket_names={
                "public": data.public_images_bucket_name,
                "private": data.private_images_bucket_name,
            },
        )

        self.worker = EventWorker(
            self,
            "EventWorker",
            config=config,
            cluster=network.cluster,
            task_security_group=task_security_group,
            image=image,
            router_image=router_image,
            settings=settings,
            datadog_api_key=datadog_api_key,
            queue=data.event_queue,
        )

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            config=config,
            load_balancer=self.web.load_balancer,
            target_group=self.web.target_group,
            web_service=self.web.service,
            worker_service=self.worker.service,
            database=data.database.cluster,
            queue=data.event_queue,
            dead_letter_queue=data.event_dead_letter_queue,
        )
        self.web.use_deployment_alarms(self.monitoring.deployment_alarms)

        for task_definition in (self.web.task_definition, self.worker.task_definition):
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
        }

    @staticmethod
    def _grant_images_access(role: iam.IRole, *, bucket_names: dict[str, str]) -> None:
        """Object access by key prefix: each bucket only under its own privacy prefix (DESIGN).

        The API signs upload forms for originals (PutObject) and HEADs/reads originals and renditions
        (GetObject); ListBucket lets a HEAD of a missing key answer 404 rather than 403.
        """
        for privacy, bucket_name in bucket_names.items():
            bucket_arn = f"arn:aws:s3:::{bucket_name}"
            originals = f"{bucket_arn}/{privacy}/{UPLOAD_PREFIX}/*"
            everything = f"{bucket_arn}/{privacy}/*"
            role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[originals]))
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[everything])
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{privacy}/*"]}},
                )
            )
            policy = role.node.try_find_child("DefaultPolicy")
            assert policy is not None
            Validations.of(policy).acknowledge(
                cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{originals}]",
                    reason=f"Upload forms for any new image id: PutObject is limited to the {privacy} bucket's "
                    f"'{privacy}/{UPLOAD_PREFIX}/' prefix, where originals are keyed by image id.",
                ),
                cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{everything}]",
                    reason=f"The API HEADs and reads any original or rendition of the {privacy} bucket, keyed "
                    f"by image id under '{privacy}/'; nothing outside that prefix.",
                ),
            )
