"""cdk-nag acknowledgments for the pipeline stack, most of which CDK Pipelines and CodePipeline generate.

Their findings name hashed logical ids (`<PipelineArtifactsBucketAEA9A052.Arn>/*`) and generated paths, so
they are not written out one by one: each `Known` entry below describes one kind of finding (rule id and
construct path, as patterns) with the reason it is acceptable. `acknowledge_known_findings` runs the
AwsSolutions pack over the stack once it is complete and acknowledges, on the exact resource, every
finding that one entry describes; anything else stays a finding and fails `cdk synth`.
`tests/test_pipeline_nag.py` checks that every entry is still needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


@dataclass(frozen=True)
class Known:
    rule: str
    """Pattern of the full rule id, e.g. `AwsSolutions-IAM5\\[Action::kms:ReEncrypt\\*\\]`."""
    path: str
    """Pattern searched in the resource's construct path."""
    reason: str


_CODEBUILD_LOGS = r"Resource::arn:aws:logs:[a-z0-9-]+:\d{12}:log-group:/aws/codebuild/<[A-Za-z0-9]+>:\*"
_CODEBUILD_REPORTS = r"Resource::arn:aws:codebuild:[a-z0-9-]+:\d{12}:report-group/<[A-Za-z0-9]+>-\*"

KNOWN: tuple[Known, ...] = (
    # --- buckets ---------------------------------------------------------------------------------
    Known(
        r"AwsSolutions-S1",
        r"^Pipeline/BuildCache/Resource$",
        "CodeBuild's pip and npm download cache: only the pipeline's build roles use it, it holds public "
        "packages that are downloaded again if lost, and CloudTrail records changes to the bucket.",
    ),
    Known(
        r"AwsSolutions-S1",
        r"^Pipeline/Reports/Resource$",
        "Load-test reports that approvers open through the S3 console under their own IAM identity; the "
        "bucket is private and TLS-only, and CloudTrail data events are the audit trail where one is wanted.",
    ),
    Known(
        r"AwsSolutions-S1",
        r"^Pipeline/Pipeline/Pipeline/ArtifactsBucket/Resource$|/CrossRegionCodePipelineReplicationBucket/Resource$",
        "CodePipeline's artifact stores (the pipeline's region and the edge stacks' us-east-1 replica): "
        "KMS-encrypted, TLS-only, used by the pipeline's own roles, and every run is in its history.",
    ),
    # --- the CDK's grants on the pipeline's own buckets and key ------------------------------------
    Known(
        r"AwsSolutions-IAM5\[Action::s3:(GetObject|GetBucket|List|DeleteObject|Abort)\*\]",
        r"^Pipeline/",
        "The CDK's standard read/write grant on the pipeline's own artifact and cache buckets: the object "
        "and bucket action wildcards apply to those buckets only.",
    ),
    Known(
        r"AwsSolutions-IAM5\[Resource::(<(PipelineArtifactsBucket|BuildCache)[0-9A-F]{8}\.Arn>"
        r"|arn:aws:s3:::[a-z0-9-]*replicationbucket[a-z0-9]*)/\*\]",
        r"^Pipeline/",
        "Artifacts and build caches are keyed per run and per action, so the roles that pass them between "
        "actions need every object of the pipeline's own artifact and cache buckets.",
    ),
    Known(
        r"AwsSolutions-IAM5\[Action::kms:(GenerateDataKey|ReEncrypt)\*\]",
        r"^Pipeline/",
        "kms:GenerateDataKey* and kms:ReEncrypt* on the pipeline's artifact key only (the CDK's "
        "encrypt/decrypt grant): every action encrypts the artifacts it writes with that key.",
    ),
    Known(
        r"AwsSolutions-IAM5\[Resource::\*\]",
        r"^Pipeline/Pipeline/Pipeline/Role/DefaultPolicy/Resource$",
        "CodePipeline's role uses the artifact key of each region; the us-east-1 replica's key lives in a "
        "support stack of another region, which the policy cannot reference, so the CDK grants the KMS "
        "actions on '*' and the keys' own policies decide.",
    ),
    Known(
        rf"AwsSolutions-IAM5\[({_CODEBUILD_LOGS}|{_CODEBUILD_REPORTS})\]",
        r"^Pipeline/",
        "A CodeBuild project writes its own log group's streams (one per build) and its own report groups "
        "(named after the project), as the CDK grants every project and no more.",
    ),
    Known(
        r"AwsSolutions-IAM5\[Resource::(arn:aws:logs:[a-z0-9-]+:\d{12}:log-group:/aws/codebuild/\*"
        r"|arn:aws:codebuild:[a-z0-9-]+:\d{12}:report-group/\*|\*)\]",
        r"^Pipeline/Pipeline/Assets/(Docker|File)Role/DefaultPolicy/Resource$",
        "CDK Pipelines shares one role among the asset projects of a type (the project's and the action's "
        "role), so it writes the CodeBuild logs and reports of this account and region and starts builds.",
    ),
    # --- what CDK Pipelines' self-mutation and permission-broadening check need ----------------------
    Known(
        r"AwsSolutions-IAM5\[Resource::(\*|arn:\*:iam::\d{12}:role/\*)\]",
        r"^Pipeline/Pipeline/UpdatePipeline/SelfMutation/Role/DefaultPolicy/Resource$",
        "Self-mutation (`cdk deploy`) reads stack states, lists buckets, and assumes only the CDK bootstrap "
        "roles of the pipeline's account, matched by their aws-cdk:bootstrap-role tag in a condition.",
    ),
    Known(
        r"AwsSolutions-IAM5\[Resource::(\*|<[A-Za-z0-9]+CDKPipelinesAutoApprove[0-9A-F]{8}\.Arn>:\*)\]",
        r"^Pipeline/Pipeline/PipelinesSecurityCheck/",
        "CDK Pipelines' permission-broadening check: its approval function acts only on pipelines tagged "
        "SECURITY_CHECK=ALLOW_APPROVE, and its diff assumes only roles tagged as bootstrap deploy roles.",
    ),
    Known(
        r"AwsSolutions-IAM4\[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        r"AWSLambdaBasicExecutionRole\]",
        r"^Pipeline/Pipeline/PipelinesSecurityCheck/CDKPipelinesAutoApprove/ServiceRole/Resource$",
        "CDK Pipelines builds the broadening check's approval function with the AWS managed basic "
        "execution policy (CloudWatch Logs only), and the construct offers no way to replace it.",
    ),
    # --- our own grants ----------------------------------------------------------------------------
    Known(
        r"AwsSolutions-IAM5\[Resource::<Reports[0-9A-F]{8}\.Arn>/(runs|latest|baseline)/\*\]",
        r"^Pipeline/LoadtestStepRole/DefaultPolicy/Resource$",
        "The load-test step uploads each run's folder under runs/<execution id>/ and replaces latest/; "
        "it can write nothing else in the reports bucket, and reads only the regression gate's baselines "
        "under baseline/<target>/<profile>/<shape>/, whose run ids are known only at run time.",
    ),
    Known(
        r"AwsSolutions-IAM5\[Resource::<Reports[0-9A-F]{8}\.Arn>/(releases/prod|releases/prod/latest|runs|baseline)/\*\]",
        r"^Pipeline/RecordReleaseStepRole/DefaultPolicy/Resource$",
        "The release record step writes releases/prod/<execution id>/ and replaces releases/prod/latest/ "
        "(the only prefix it may delete in), reads the run folder it copies from runs/<execution id>/, "
        "and adds that run to the regression gate's baselines under baseline/ (reading their index, "
        "deleting nothing); the execution and run ids are known only at run time.",
    ),
    Known(
        r"AwsSolutions-IAM5\[Resource::<Reports[0-9A-F]{8}\.Arn>/(releases/prod|runs/\*/changes)/\*\]",
        r"^Pipeline/ProdChangesStepRole/DefaultPolicy/Resource$",
        "The prod change report step reads the release record under releases/prod/ and writes only its "
        "report into runs/<execution id>/changes/; the execution id is known only at run time.",
    ),
    Known(
        r"AwsSolutions-IAM5\[Resource::<Reports[0-9A-F]{8}\.Arn>/runs/\*/image-scan/\*\]",
        r"^Pipeline/ImageScanStepRole/DefaultPolicy/Resource$",
        "The image scan writes its result, for the approval page, into runs/<execution id>/image-scan/ "
        "only; the execution id is known only at run time.",
    ),
    Known(
        r"AwsSolutions-IAM5\[Resource::<Reports[0-9A-F]{8}\.Arn>/runs/(\*|\*/approval\.html)\]",
        r"^Pipeline/ApprovalPageStepRole/DefaultPolicy/Resource$",
        "The approval page step reads its run's reports under runs/<execution id>/ and writes only "
        "runs/<execution id>/approval.html; the execution id is known only at run time.",
    ),
)


def acknowledge_known_findings(scopes: Iterable[cdk.Stack], known: Iterable[Known] = KNOWN) -> set[Known]:
    """Acknowledge every AwsSolutions finding in `scopes` that an entry of `known` describes.

    Returns the entries that matched at least one finding.
    """
    entries = tuple(known)
    used: set[Known] = set()
    for scope in scopes:
        by_path: dict[str, IConstruct] = {c.node.path: c for c in scope.node.find_all()}
        report = AwsSolutionsChecks().validate_scope(scope)
        for violation in report.violations:
            for resource in violation.violating_resources:
                path = resource.construct_path or ""
                entry = _match(entries, violation.rule_name, path)
                if entry is None or path not in by_path:
                    continue  # left as a finding: synth reports it
                used.add(entry)
                Validations.of(by_path[path]).acknowledge(
                    cdk.Acknowledgment(id=violation.rule_name, reason=entry.reason)
                )
    return used


def _match(entries: tuple[Known, ...], rule: str, path: str) -> Known | None:
    for entry in entries:
        if re.fullmatch(entry.rule, rule) and re.search(entry.path, path):
            return entry
    return None
