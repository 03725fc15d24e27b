"""The VPC: two AZs, three subnet tiers, flow logs and an S3 gateway endpoint."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from stages.config import EnvironmentConfig

PUBLIC = ec2.SubnetSelection(subnet_group_name="Public")
"""Load balancer and NAT gateways."""
PRIVATE = ec2.SubnetSelection(subnet_group_name="Private")
"""Fargate tasks: outbound through NAT (ECR, Datadog, AWS APIs), nothing inbound from the internet."""
ISOLATED = ec2.SubnetSelection(subnet_group_name="Isolated")
"""The database: no route out of the VPC at all."""


class Network(Construct):
    """A VPC over the configured two AZs with public, private-with-egress and isolated subnets.

    Every flow is logged to CloudWatch (kept for the configured retention), and S3 traffic from the
    tasks goes through a gateway endpoint rather than the NAT gateways, which is free and keeps image
    uploads and renditions off the metered NAT path.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)

        self.flow_log_group = logs.LogGroup(
            self, "FlowLogs", retention=config.log_retention, removal_policy=config.removal_policy
        )
        flow_log_role = iam.Role(
            self, "FlowLogRole", assumed_by=iam.ServicePrincipal("vpc-flow-logs.amazonaws.com")
        )

        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            availability_zones=list(config.availability_zones),
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20
                ),
                ec2.SubnetConfiguration(
                    name="Isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                ),
            ],
            restrict_default_security_group=True,
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                        self.flow_log_group, flow_log_role
                    ),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(
                    service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[PRIVATE]
                )
            },
        )
