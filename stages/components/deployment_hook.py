"""The web service's deployment lifecycle hook: smoke checks through the test listener, and the hold switch."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stages import names
from stages.components.network import PRIVATE
from stages.config import EnvironmentConfig

HANDLER = Path(__file__).parent / "smoke_check" / "index.py"
STAGE = "POST_TEST_TRAFFIC_SHIFT"
"""After the test listener points at the new revision, before any production traffic does (ECS does not
run hooks of this stage during a rollback, unlike the two traffic-shift stages themselves)."""
ATTEMPTS = 10
RETRY_SECONDS = 30
"""Up to 5 minutes for new tasks that do not answer yet (a wrong answer fails at once)."""
RELEASED = "release"
"""The hold parameter's value when nothing is held (any value but `hold` releases)."""
# The VPC access rights Lambda needs to attach a function to the private subnets (the content of AWS's
# AWSLambdaVPCAccessExecutionRole); DescribeNetworkInterfaces also finds the load balancer's addresses.
VPC_ACCESS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


class SmokeCheckHook(Construct):
    """A small stdlib-only function in the private subnets that checks the new revision through the test
    listener (smoke_check/index.py), the hold parameter it reads, and the role ECS invokes it with.

    Only this function's security group may reach the test listener's port on the load balancer.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        vpc: ec2.IVpc,
        load_balancer: elbv2.ApplicationLoadBalancer,
        test_port: int,
        container_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        self.hold = ssm.StringParameter(
            self,
            "Hold",
            parameter_name=hold_parameter_name(config),
            string_value=RELEASED,
            description="Set to 'hold' to keep the web service's next deployment before any production traffic "
            "(stages/runbooks/web-deployments.md); anything else releases it",
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Deployment hook: HTTPS to AWS APIs and to the test listener of the load balancer",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs (EC2, ECS, SSM) through the NAT gateways"
        )
        load_balancer.connections.allow_from(
            self.security_group, ec2.Port.tcp(test_port), "Test listener: the deployment hook only"
        )

        log_group = logs.LogGroup(
            self, "Logs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="The web service's deployment hook: smoke checks through the test listener",
        )
        log_group.grant_write(role)
        role.add_to_policy(iam.PolicyStatement(actions=VPC_ACCESS, resources=["*"]))
        self.hold.grant_read(role)
        revisions = (
            f"arn:{stack.partition}:ecs:{stack.region}:{stack.account}:service-revision/"
            f"{names.ecs_cluster(config)}/*"
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["ecs:DescribeServiceRevisions"], resources=[revisions])
        )
        Validations.of(role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="The network interface rights every VPC function needs (those of AWS's "
                "AWSLambdaVPCAccessExecutionRole, which EC2 grants on '*' only); listing interfaces also "
                "finds the load balancer's private addresses.",
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{revisions}]",
                reason="Reads the new revision's image digest (read only); a revision's id exists only once "
                "ECS starts the deployment, so the environment's cluster is the narrowest scope.",
            ),
        )

        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_inline(HANDLER.read_text()),
            timeout=cdk.Duration.seconds(60),
            memory_size=256,
            role=role,
            log_group=log_group,
            vpc=vpc,
            vpc_subnets=PRIVATE,
            security_groups=[self.security_group],
            environment={
                "LOAD_BALANCER": load_balancer.load_balancer_full_name,
                "TEST_PORT": str(test_port),
                "SERVER_NAME": config.origin_domain_name,
                "HOLD_PARAMETER": self.hold.parameter_name,
                "CONTAINER_NAME": container_name,
                "ATTEMPTS": str(ATTEMPTS),
                "RETRY_SECONDS": str(RETRY_SECONDS),
            },
            description="Smoke-checks a new web revision through the test listener before it gets traffic",
        )
        # Lambda checks at creation that the role may attach the function to the VPC.
        self.function.node.add_dependency(role)

        self.invoke_role = iam.Role(
            self,
            "InvokeRole",
            assumed_by=iam.ServicePrincipal("ecs.amazonaws.com"),
            description="ECS invokes the web service's deployment hook with this role",
        )
        self.invoke_role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])
        )
        self.timeout_minutes = config.web_deployment.hook_timeout_minutes

    def lifecycle_hook(self) -> dict[str, object]:
        """The service's `DeploymentConfiguration.LifecycleHooks` entry, as CloudFormation takes it.

        Written out rather than through `ecs.DeploymentLifecycleLambdaTarget`: aws-cdk-lib 2.275 renders
        neither a hook's `TimeoutConfiguration` (ECS's default is 24 hours) nor its details, and its role
        may also invoke every version of the function.
        """
        return {
            "HookTargetArn": self.function.function_arn,
            "RoleArn": self.invoke_role.role_arn,
            "LifecycleStages": [STAGE],
            "TimeoutConfiguration": {"TimeoutInMinutes": self.timeout_minutes, "Action": "ROLLBACK"},
        }


def hold_parameter_name(config: EnvironmentConfig) -> str:
    """The SSM parameter an operator sets to `hold` (stages/runbooks/web-deployments.md)."""
    return f"/yoctogram/{config.name}/web-deployment-hold"
