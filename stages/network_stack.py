"""Network stack: the VPC, the ECS cluster and the tasks' security group."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from stages import names
from stages.components.network import PRIVATE, Network
from stages.config import EnvironmentConfig
from stages.pinned_stack import PinnedStack


class NetworkStack(PinnedStack):
    """Deploys first in the region: the VPC, plus what the migration task needs to run.

    The cluster and the tasks' security group live here, not in the app stack, because the pipeline
    runs the migration task before the app stack deploys, including on the very first deployment.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, config=config, **kwargs)
        self.network = Network(self, "Network", config=config)
        self.vpc = self.network.vpc

        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=names.ecs_cluster(config),
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.task_security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="Fargate tasks: the container port from the load balancer; all egress (NAT, S3 endpoint)",
            allow_all_outbound=True,
        )

        task_subnets = self.vpc.select_subnets(subnet_group_name=PRIVATE.subnet_group_name)
        self.outputs = {
            "ClusterName": cdk.CfnOutput(self, "ClusterName", value=self.cluster.cluster_name),
            "TaskSubnetIds": cdk.CfnOutput(self, "TaskSubnetIds", value=",".join(task_subnets.subnet_ids)),
            "TaskSecurityGroupId": cdk.CfnOutput(
                self, "TaskSecurityGroupId", value=self.task_security_group.security_group_id
            ),
        }
