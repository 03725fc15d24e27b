"""The web client (`frontend/` build) and its per-environment `config.json`, deployed to the site bucket."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from stages.components.backend_settings import build_commit
from stages.config import EnvironmentConfig

ENTRY_PAGE = "index.html"
CLIENT_CONFIG = "config.json"
API_BASE = "/api/v1"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
"""May be stored, but is revalidated on every use (a 304 when unchanged)."""


class MissingFrontendBuild(Exception):
    """The web client has not been built where synth looks for it."""


def frontend_build(path: Path) -> Path:
    """`path` if it holds a web client build (an `index.html` at least); otherwise say how to make one."""
    if not (path / ENTRY_PAGE).is_file():
        raise MissingFrontendBuild(
            f"No web client build in {path} ({ENTRY_PAGE} is missing). Run `make frontend` "
            "(scripts/build_frontend.sh) first, or point synth at another build with "
            "`-c yoctogram:frontendDist=<folder>`."
        )
    return path


def client_config(config: EnvironmentConfig, *, commit: str | None = None) -> dict[str, object]:
    """The web client's `config.json` for one environment, with the commit it was deployed from."""
    return {
        "apiBase": API_BASE,
        "maxUploadBytes": config.max_upload_bytes,
        "environment": config.name,
        "build": {"commit": commit or "unknown"},
    }


class WebClient(Construct):
    """Two deployments into the site bucket, in order:

    1. `Assets`: every file of the build but the entry page, content-hashed by the bundler, so each one is
       immutable (cached for a year everywhere) and never needs an invalidation. Old files are kept
       (no prune): a browser still running the previous page can load its lazy chunks after a release.
    2. `EntryPage`: `index.html` and this environment's `config.json`, marked to be revalidated on every
       use, then invalidated at the edge (`/index.html`, `/config.json`: the only paths whose content
       changes under the same name; every client route is served as `/index.html`). It runs after
       `Assets`, so a new page never points at files not uploaded yet.

    Both run the CDK's deployment function with a role of our own (no managed policy) that logs to a log
    group with the configured retention.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        build: Path,
        bucket: s3.IBucket,
        distribution: cloudfront.IDistribution,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self, "DeploymentLogs", retention=config.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            "DeploymentRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Yoctogram: copies the web client into the site bucket",
        )
        log_group.grant_write(role)

        assets = s3deploy.BucketDeployment(
            self,
            "Assets",
            sources=[s3deploy.Source.asset(str(build), exclude=[ENTRY_PAGE, CLIENT_CONFIG])],
            destination_bucket=bucket,
            prune=False,
            cache_control=[s3deploy.CacheControl.from_string(IMMUTABLE)],
            role=role,
            log_group=log_group,
            memory_limit=512,
        )
        entry = s3deploy.BucketDeployment(
            self,
            "EntryPage",
            sources=[
                s3deploy.Source.data(ENTRY_PAGE, (build / ENTRY_PAGE).read_text(encoding="utf-8")),
                s3deploy.Source.json_data(CLIENT_CONFIG, client_config(config, commit=build_commit(self))),
            ],
            destination_bucket=bucket,
            prune=False,
            cache_control=[s3deploy.CacheControl.from_string(REVALIDATE)],
            distribution=distribution,
            distribution_paths=[f"/{ENTRY_PAGE}", f"/{CLIENT_CONFIG}"],
            role=role,
            log_group=log_group,
            memory_limit=512,
        )
        entry.node.add_dependency(assets)
        self._acknowledge(config, role, bucket)

    def _acknowledge(self, config: EnvironmentConfig, role: iam.Role, bucket: s3.IBucket) -> None:
        """What the CDK's BucketDeployment grants its function, acknowledged finding by finding."""
        stack = cdk.Stack.of(self)
        site_bucket = stack.resolve(bucket.node.default_child.logical_id)  # type: ignore[union-attr]
        copies = (
            "the CDK's BucketDeployment, which copies the web client from the CDK assets bucket into the "
            "site bucket (both whole buckets by design: it syncs a folder)"
        )
        policy = role.node.try_find_child("DefaultPolicy")
        assert policy is not None
        Validations.of(policy).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="cloudfront:CreateInvalidation and GetInvalidation, granted by the CDK's BucketDeployment "
                "so the entry page can be invalidated after an upload; CloudFront has no narrower resource "
                "for them in the CDK construct.",
            ),
            *(
                cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[Action::{action}]",
                    reason=f"Object and listing actions granted by {copies}; limited to those two buckets.",
                )
                for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*")
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::arn:aws:s3:::cdk-hnb659fds-assets-{config.account}-{config.region}/*]",
                reason=f"Reads the zipped build from the assets bucket: {copies}.",
            ),
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::<{site_bucket}.Arn>/*]",
                reason=f"Writes every file of the build into the site bucket: {copies}.",
            ),
        )
        for child in stack.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                Validations.of(child).acknowledge(
                    cdk.Acknowledgment(
                        id="AwsSolutions-L1",
                        reason="The BucketDeployment function's runtime is chosen and updated by aws-cdk-lib "
                        "together with its handler code; this project only pins the library version.",
                    )
                )
