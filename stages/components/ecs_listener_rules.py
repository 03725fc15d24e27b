"""Listener rules whose forward action ECS owns: written once by CloudFormation, shifted only by ECS.

Why not `elbv2.ApplicationListenerRule`: ECS's gradual deployments move traffic by rewriting the weights
of the production (and test) rule's forward action, and CloudFormation rewrites a rule's whole action
from the template whenever it updates the rule for any reason (a rotated header secret, a priority). After
an even number of deployments that is harmless; after an odd one it sends every request to the target
group the last deployment drained and emptied: an outage until the next deployment (aws/aws-cdk#36649).
The rules here are a small custom resource (listener_rule/index.py) that sets the forward action only
when it creates a rule, and on every later update changes the conditions and priority alone. So no stack
update can move traffic: only ECS does, and the template never says where traffic goes after creation.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stages.config import EnvironmentConfig

HANDLER = Path(__file__).parent / "listener_rule" / "index.py"
RESOURCE_TYPE = "Custom::EcsShiftedListenerRule"


class EcsListenerRules(Construct):
    """The function behind the rules, and `rule()` to add one; every rule forwards to the same pair."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        load_balancer: elbv2.ApplicationLoadBalancer,
        primary: elbv2.IApplicationTargetGroup,
        alternate: elbv2.IApplicationTargetGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        self._primary = primary
        self._alternate = alternate
        stack = cdk.Stack.of(self)

        log_group = logs.LogGroup(
            self, "Logs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Creates the web service's ECS-shifted listener rules; changes their conditions only",
        )
        log_group.grant_write(self.role)
        # Rules get their ids when created: the load balancer's rules, by its full name (app/<name>/<id>).
        self._rules_arn = (
            f"arn:{stack.partition}:elasticloadbalancing:{stack.region}:{stack.account}:listener-rule/"
            f"{load_balancer.load_balancer_full_name}/*"
        )
        self._listener_arns: list[str] = []
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "elasticloadbalancing:ModifyRule",
                    "elasticloadbalancing:SetRulePriorities",
                    "elasticloadbalancing:DeleteRule",
                ],
                resources=[self._rules_arn],
            )
        )
        # Read-only, and the load balancer API has no resource-level permission for it.
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["elasticloadbalancing:DescribeRules"], resources=["*"])
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler="index.handler",
            code=lambda_.Code.from_inline(HANDLER.read_text()),
            timeout=cdk.Duration.minutes(2),
            role=self.role,
            log_group=log_group,
            description="Listener rules whose forward action ECS shifts: conditions change, the action stays",
        )
        Validations.of(self.role).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="elasticloadbalancing:DescribeRules (read only; the function reads a rule's live "
                "weights before it moves the rule to another listener) has no resource-level permission.",
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{_nag_rules_arn(stack, load_balancer)}]",
                reason="A rule's id exists only once the function has created it: Modify, SetRulePriorities and "
                "DeleteRule are limited to the rules of this one load balancer.",
            ),
        )

    def rule(
        self,
        construct_id: str,
        *,
        listener: elbv2.IApplicationListener,
        priority: int,
        path_patterns: list[str] | None = None,
        header: tuple[str, secretsmanager.ISecret] | None = None,
    ) -> cdk.CustomResource:
        """A rule on `listener` forwarding to the pair (all to the primary until ECS shifts it).

        `header` is (header name, the secret whose value the header must carry).
        """
        properties: dict[str, object] = {
            "ListenerArn": listener.listener_arn,
            "Priority": priority,
            "PrimaryTargetGroupArn": self._primary.target_group_arn,
            "AlternateTargetGroupArn": self._alternate.target_group_arn,
        }
        if path_patterns:
            properties["PathPatterns"] = path_patterns
        if header is not None:
            name, secret = header
            properties["HeaderName"] = name
            properties["HeaderSecretArn"] = secret.secret_arn
            secret.grant_read(self.role)
        if listener.listener_arn not in self._listener_arns:
            self._listener_arns.append(listener.listener_arn)
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["elasticloadbalancing:CreateRule"], resources=[listener.listener_arn]
                )
            )
        resource = cdk.CustomResource(
            self,
            construct_id,
            service_token=self.function.function_arn,
            resource_type=RESOURCE_TYPE,
            properties=properties,
        )
        # Created after its rights exist; deleted before they go.
        resource.node.add_dependency(self.role)
        return resource


def _nag_rules_arn(stack: cdk.Stack, load_balancer: elbv2.ApplicationLoadBalancer) -> str:
    """How cdk-nag writes the rules' ARN pattern in a finding (the load balancer's name is a token)."""
    resource = load_balancer.node.default_child
    assert isinstance(resource, cdk.CfnElement), load_balancer.node.path
    return (
        f"arn:{stack.partition}:elasticloadbalancing:{stack.region}:{stack.account}:listener-rule/"
        f"<{stack.get_logical_id(resource)}.LoadBalancerFullName>/*"
    )
