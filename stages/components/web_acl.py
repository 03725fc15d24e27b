"""The WAF web ACL in front of CloudFront: AWS managed rules plus a rate limit on sign-in and sign-up."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stages.config import EnvironmentConfig

AUTH_PATH_PREFIX = "/api/v1/auth/"
API_PATH_PREFIX = "/api/"
RATE_WINDOW_SECONDS = 300
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)
REDACTED_HEADERS = ("authorization", "cookie")
"""Never written to the WAF log: bearer tokens and cookies."""


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )


def _rate_rule(
    name: str, priority: int, limit: int, path_prefix: str, prefix: str
) -> wafv2.CfnWebACL.RuleProperty:
    """One client IP may send `limit` requests under `path_prefix` per 5 minutes; beyond, 429."""
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(
            block=wafv2.CfnWebACL.BlockActionProperty(
                custom_response=wafv2.CfnWebACL.CustomResponseProperty(response_code=429)
            )
        ),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                aggregate_key_type="IP",
                limit=limit,
                evaluation_window_sec=RATE_WINDOW_SECONDS,
                scope_down_statement=wafv2.CfnWebACL.StatementProperty(
                    byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                        field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                        positional_constraint="STARTS_WITH",
                        search_string=path_prefix,
                        text_transformations=[
                            wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                        ],
                    )
                ),
            )
        ),
        visibility_config=_visibility(f"{prefix}-{name}"),
    )


class EdgeWebAcl(Construct):
    """A CLOUDFRONT-scope web ACL (so it must be created in us-east-1) that allows by default.

    1. `AuthRateLimit`: one client IP may send `auth_rate_limit_per_5_minutes` requests to
       `/api/v1/auth/*` (sign-up, sign-in) per 5 minutes; beyond that it is answered 429 (credential
       stuffing, sign-up spam).
    2. `ApiRateLimit`: one client IP may send `api_rate_limit_per_5_minutes` requests to `/api/*` per 5
       minutes (scraping, a runaway client); media and the web client are cached and not limited.
    3. AWS managed "Amazon IP reputation list" (sources known for bots and attacks), "known bad inputs"
       and "common" (core) rule sets, in block mode. Uploads go straight
       to S3, never through CloudFront, so the common set's 8 KB body limit only meets JSON requests.

    Every rule publishes CloudWatch metrics and sampled requests; the full log goes to a log group (WAF
    requires the `aws-waf-logs-` name prefix) with the configured retention, headers that carry
    credentials redacted.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        prefix = f"yoctogram-{config.name}"
        rules = [
            _rate_rule("AuthRateLimit", 0, config.auth_rate_limit_per_5_minutes, AUTH_PATH_PREFIX, prefix),
            _rate_rule("ApiRateLimit", 1, config.api_rate_limit_per_5_minutes, API_PATH_PREFIX, prefix),
        ]
        for priority, group in enumerate(reversed(MANAGED_RULE_GROUPS), start=len(rules)):
            rules.append(
                wafv2.CfnWebACL.RuleProperty(
                    name=group,
                    priority=priority,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name=group
                        )
                    ),
                    visibility_config=_visibility(f"{prefix}-{group}"),
                )
            )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{prefix}-edge",
            description="Yoctogram: in front of the CloudFront distribution",
            scope="CLOUDFRONT",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{prefix}-edge"),
            rules=rules,
        )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"aws-waf-logs-{prefix}",
            retention=config.log_retention,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        stack = cdk.Stack.of(self)
        # WAF wants the log group's ARN without the `:*` that `LogGroup.log_group_arn` ends with.
        log_group_arn = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=self.log_group.log_group_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[log_group_arn],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": header})
                for header in REDACTED_HEADERS
            ],
        )
