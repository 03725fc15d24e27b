"""AWS sessions for the pipeline's steps: their own credentials, or a role in an environment's account."""

from __future__ import annotations

import os
from typing import Any

import boto3


class StepError(RuntimeError):
    """A step failed for a reason its message explains (printed without a traceback)."""


def required_env(*names: str, hint: str) -> dict[str, str]:
    """The named environment variables, or StepError naming the missing ones and what sets them."""
    values = {name: os.environ.get(name, "").strip() for name in names}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise StepError(f"{', '.join(missing)} not set: {hint}")
    return values


def session_for(role_arn: str | None, region: str | None, purpose: str) -> boto3.Session:
    """A boto3 session in `region`: with the caller's credentials, or those of `role_arn` when given.

    In CodeBuild the caller is the step's role (pipeline account); the environments' access roles
    (`pipeline.access_stack`) trust exactly that role.
    """
    if not role_arn:
        return boto3.Session(region_name=region)
    sts = boto3.client("sts", region_name=region)
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=f"yoctogram-pipeline-{purpose}"[:64])[
        "Credentials"
    ]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def credentials_env(session: boto3.Session) -> dict[str, str]:
    """Environment variables that hand `session`'s credentials and region to a child process."""
    frozen: Any = session.get_credentials().get_frozen_credentials()
    env = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
    if frozen.token:
        env["AWS_SESSION_TOKEN"] = frozen.token
    if session.region_name:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = session.region_name
    return env
