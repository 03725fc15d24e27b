"""CloudFront: one distribution on the site's domain for the web client, the API and the images."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stages.components.emptied_on_delete import EmptiedOnDelete
from stages.components.images_buckets import images_bucket_policy
from stages.config import EnvironmentConfig

ORIGIN_VERIFY_HEADER = "X-Origin-Verify"
"""Added by CloudFront to every request to the load balancer, which answers 403 without it."""
CLIENT_ROUTES_FUNCTION = Path(__file__).resolve().parent / "cloudfront" / "client_routes.js"
LOG_PREFIX = "cloudfront/"


def content_security_policy(config: EnvironmentConfig, bucket_names: Mapping[str, str]) -> str:
    """Same-origin everything, plus the images buckets' S3 endpoints that browsers POST uploads to.

    Both endpoint spellings of each bucket (global and regional virtual-host style), since which one a
    presigned POST names depends on the SDK's version and settings.
    """
    uploads = " ".join(
        f"https://{name}.s3.amazonaws.com https://{name}.s3.{config.region}.amazonaws.com"
        for name in bucket_names.values()
    )
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            f"connect-src 'self' {uploads}",
            f"form-action 'self' {uploads}",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
        ]
    )


MEDIA_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'"
)
"""CSP of `/public/*` and `/private/*`: an uploaded file opened on its own never runs script or loads
anything on the site's origin (`sandbox` gives it an opaque origin), whatever its bytes or type. The local
gateway sends the same (backend/app/local_site.py; a test checks they agree)."""


class Cdn(Construct):
    """The site's distribution, its private bucket for the web client, and its DNS records.

    Behaviours (the S3 key of an image equals its URL path, docs/design.md):
    - default: the site bucket (origin access control). A CloudFront Function answers the client's own
      routes with `/index.html`; there is no distribution-wide "404 -> index.html" error response, which
      would also turn the API's 404s into the web page. Object headers set how long things are cached:
      `index.html` and `config.json` are revalidated on every request, content-hashed assets are
      immutable (see `WebClient`); the cache policy honours them and caches nothing unlabelled.
    - `/api/*`: the load balancer over HTTPS (`origin_domain_name`, its certificate), never cached
      (managed CachingDisabled), every viewer header but Host forwarded (managed AllViewerExceptHostHeader),
      plus the secret `X-Origin-Verify` header the load balancer requires.
    - `/public/*`: the public images bucket, cached (renditions are immutable; edge copies are kept a day at
      most, so a deleted image leaves the edge within a day).
    - `/private/*`: the private images bucket, only with a URL signed by a key of `key_group`.

    TLS 1.2 (2021 policy) and SNI for viewers, HTTP/2 and HTTP/3, IPv6, the WAF web ACL, security headers
    on every response, and standard access logs to the stage's access-log bucket.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        certificate: acm.ICertificate,
        web_acl_arn: str,
        key_group: cloudfront.IKeyGroup,
        origin_verify_value: str,
        image_bucket_names: Mapping[str, str],
        access_logs: s3.IBucket,
        hosted_zone: route53.IHostedZone,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = f"yoctogram-{config.name}"

        self.site_bucket = s3.Bucket(
            self,
            "SiteBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=config.removal_policy,
        )
        if not config.retain_data:  # a paused staging deletes its app stack: the bucket must be empty
            EmptiedOnDelete(self, "EmptiedOnDelete", config=config, buckets=[self.site_bucket])
        Validations.of(self.site_bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason="The site bucket holds only the web client built from this repository; every read of it "
                "is a CloudFront request already recorded in the distribution's access logs, and its only "
                "writer is the deployment, recorded by CloudFormation and CloudTrail.",
            )
        )
        access_control = cloudfront.S3OriginAccessControl(
            self,
            "OriginAccessControl",
            origin_access_control_name=f"{prefix}-s3",
            description="Yoctogram: CloudFront reads the site and images buckets (SigV4)",
        )
        site_origin = origins.S3BucketOrigin.with_origin_access_control(
            self.site_bucket, origin_access_control=access_control
        )
        image_origins = {}
        for privacy, bucket_name in image_bucket_names.items():
            # Imported by name; their policies, naming this distribution, are written below.
            bucket = s3.Bucket.from_bucket_attributes(
                self, f"{privacy.title()}ImagesBucket", bucket_name=bucket_name, region=config.region
            )
            image_origins[privacy] = origins.S3BucketOrigin.with_origin_access_control(
                bucket, origin_access_control=access_control
            )
        api_origin = origins.HttpOrigin(
            config.origin_domain_name,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
            custom_headers={ORIGIN_VERIFY_HEADER: origin_verify_value},
            read_timeout=cdk.Duration.seconds(30),
        )

        client_routes = cloudfront.Function(
            self,
            "ClientRoutes",
            function_name=f"{prefix}-client-routes",
            comment="Answers the web client's own routes with /index.html",
            code=cloudfront.FunctionCode.from_file(file_path=str(CLIENT_ROUTES_FUNCTION)),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
        )
        site_cache = cloudfront.CachePolicy(
            self,
            "SiteCachePolicy",
            cache_policy_name=f"{prefix}-site",
            comment="Web client: follows the objects' Cache-Control; nothing unlabelled is cached",
            min_ttl=cdk.Duration.seconds(0),
            default_ttl=cdk.Duration.seconds(0),
            max_ttl=cdk.Duration.days(365),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )
        media_cache = cloudfront.CachePolicy(
            self,
            "MediaCachePolicy",
            cache_policy_name=f"{prefix}-media",
            comment="Images: cached at the edge for a day at most; signatures are not part of the cache key",
            min_ttl=cdk.Duration.seconds(0),
            default_ttl=cdk.Duration.days(1),
            max_ttl=cdk.Duration.days(1),
        )

        def headers_policy(
            construct_id: str, name: str, comment: str, csp: str
        ) -> cloudfront.ResponseHeadersPolicy:
            """HSTS, no framing, no sniffing, strict referrer, and `csp`: the same for the site and media."""
            return cloudfront.ResponseHeadersPolicy(
                self,
                construct_id,
                response_headers_policy_name=f"{prefix}-{name}",
                comment=comment,
                security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                    strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                        access_control_max_age=cdk.Duration.days(365), include_subdomains=True, override=True
                    ),
                    content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                        content_security_policy=csp, override=True
                    ),
                    content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                    frame_options=cloudfront.ResponseHeadersFrameOptions(
                        frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                    ),
                    referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                        referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
                        override=True,
                    ),
                ),
            )

        security_headers = headers_policy(
            "SecurityHeaders",
            "security-headers",
            "HSTS, CSP, no framing, no sniffing, strict referrer",
            content_security_policy(config, image_bucket_names),
        )
        media_security_headers = headers_policy(
            "MediaSecurityHeaders",
            "media-security-headers",
            "Images: HSTS, a sandboxing CSP, no framing, no sniffing, strict referrer",
            MEDIA_CONTENT_SECURITY_POLICY,
        )

        def media(origin: cloudfront.IOrigin, **kwargs: object) -> cloudfront.BehaviorOptions:
            return cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=media_cache,
                response_headers_policy=media_security_headers,
                compress=False,  # WebP and JPEG are compressed already
                **kwargs,  # type: ignore[arg-type]
            )

        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Yoctogram: web client, API and images",
            domain_names=[config.domain_name],
            certificate=certificate,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
            ssl_support_method=cloudfront.SSLMethod.SNI,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_ipv6=True,
            web_acl_id=web_acl_arn,
            enable_logging=True,
            log_bucket=access_logs,
            log_file_prefix=LOG_PREFIX,
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=site_origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=site_cache,
                response_headers_policy=security_headers,
                compress=True,
                function_associations=[
                    cloudfront.FunctionAssociation(
                        function=client_routes, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
                    )
                ],
            ),
            additional_behaviors={
                "/api/*": cloudfront.BehaviorOptions(
                    origin=api_origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                    response_headers_policy=security_headers,
                    compress=True,
                ),
                "/public/*": media(image_origins["public"]),
                "/private/*": media(image_origins["private"], trusted_key_groups=[key_group]),
            },
        )
        distribution_arn = cdk.Stack.of(self).format_arn(
            service="cloudfront",
            region="",
            resource="distribution",
            resource_name=self.distribution.distribution_id,
        )
        for privacy, bucket_name in image_bucket_names.items():
            # The imported buckets' whole policies are written here, next to the distribution they name.
            images_bucket_policy(
                self,
                f"{privacy.title()}ImagesBucketPolicy",
                bucket_name=bucket_name,
                privacy=privacy,
                distribution_arn=distribution_arn,
            )
            cdk.Annotations.of(self.distribution).acknowledge_warning(
                "@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
                f"The {privacy} images bucket's policy is written by this construct (images_bucket_policy).",
            )
        Validations.of(self.distribution).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-CFR1",
                reason="Yoctogram is a photo site for everyone: no country is excluded. Abuse is handled by the "
                "WAF web ACL (managed rule sets and the sign-in rate limit), not by geography.",
            )
        )

        alias = route53.RecordTarget.from_alias(route53_targets.CloudFrontTarget(self.distribution))
        route53.ARecord(self, "SiteIpv4", zone=hosted_zone, record_name=config.domain_name, target=alias)
        route53.AaaaRecord(self, "SiteIpv6", zone=hosted_zone, record_name=config.domain_name, target=alias)
