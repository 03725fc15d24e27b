"""Edge stack (us-east-1): the CloudFront certificate, the WAF web ACL and the media signing key group."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_route53 as route53
from constructs import Construct

from stages.components.media_signing import MediaSigningKeys
from stages.components.web_acl import EdgeWebAcl
from stages.config import EnvironmentConfig


class EdgeStack(cdk.Stack):
    """What CloudFront needs from us-east-1, deployed first (docs/design.md: "Deploy order").

    - The certificate of `domain_name`, validated by DNS in the configured hosted zone (imported by
      attributes): a plain `Certificate` in a stack of that region, not the deprecated
      `DnsValidatedCertificate` and its custom resource.
    - The WAF web ACL (CLOUDFRONT scope exists only in us-east-1).
    - The media signing public keys and their key group. CloudFront keys are global, so they could live
      anywhere; here, because the migration task (deployed before the app stack) and the app both need
      the key id, and this stack deploys before both.

    The app and migrations stacks (us-west-2) refer to these by object; the stage makes those references
    weak (`Fn::GetStackOutput` with the region), see `YoctogramStage`.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=config.edge_env,
            stack_name=config.stack_name(construct_id.lower()),
            termination_protection=config.retain_data,
            **kwargs,
        )
        hosted_zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "HostedZone", hosted_zone_id=config.hosted_zone_id, zone_name=config.hosted_zone_name
        )
        self.certificate = acm.Certificate(
            self,
            "Certificate",
            domain_name=config.domain_name,
            validation=acm.CertificateValidation.from_dns(hosted_zone),
        )
        self.web_acl = EdgeWebAcl(self, "WebAcl", config=config).web_acl
        self.media_signing = MediaSigningKeys(self, "MediaSigning", config=config)
