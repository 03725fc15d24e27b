"""Aurora Serverless v2 PostgreSQL in the isolated subnets, its generated credentials and log group."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stages import names
from stages.components.network import ISOLATED, PRIVATE
from stages.config import EnvironmentConfig

ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_16_11
MASTER_USERNAME = "yoctogram"
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
"""A session idle inside a transaction this long is ended: it holds locks and a pool slot for nothing."""


def cluster_parameters(config: EnvironmentConfig) -> dict[str, str]:
    """The cluster parameter group's settings (the engine's defaults otherwise)."""
    return {
        "rds.force_ssl": "1",  # no plaintext connection, whatever a client asks for
        "log_min_duration_statement": str(config.slow_query_ms),
        "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_TIMEOUT_MS),
    }


class Database(Construct):
    """One Aurora PostgreSQL cluster: a writer, plus `aurora_readers` readers that scale with it.

    The credentials are generated into Secrets Manager and attached to the cluster, so the secret's
    JSON carries `host`, `port`, `username`, `password` and `dbname`, which the tasks read field by
    field (the password when they connect: it rotates every `database_rotation_days`; runbook
    stages/runbooks/database-credentials.md). Storage is encrypted, backups kept
    `backup_retention_days`, IAM authentication is on for operators, and in an environment with `retain_data` the cluster is deletion protected and retained.
    The PostgreSQL log goes to a log group created here with the configured retention (instead of the
    CDK's log-retention Lambda).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        vpc: ec2.IVpc,
    ) -> None:
        super().__init__(scope, construct_id)
        cluster_identifier = names.database_cluster_identifier(config)
        self.port = config.database_port

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Aurora: PostgreSQL from the Fargate tasks only",
            allow_all_outbound=False,
        )
        log_group = logs.LogGroup(
            self,
            "PostgresqlLog",
            log_group_name=names.database_log_group(config),
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )

        # `dbname` is part of the generated JSON so the tasks can read POSTGRES_DB from it like the rest;
        # attaching the secret to the cluster adds `host` and `port`.
        credentials = rds.DatabaseSecret(
            self,
            "Credentials",
            username=MASTER_USERNAME,
            dbname=config.database_name,
            secret_name=names.database_secret(config),
        )
        engine = rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION)
        parameter_group = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="Yoctogram: TLS only, slow-query log, idle-in-transaction timeout",
            parameters=cluster_parameters(config),
        )
        # Database Insights (advanced) on the cluster, and the same on the instances (they follow the
        # cluster anyway; a silent disagreement is a synth warning).
        insights = config.database_insights
        retention = rds.PerformanceInsightRetention.MONTHS_15 if insights else None
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=engine,
            parameter_group=parameter_group,
            database_insights_mode=rds.DatabaseInsightsMode.ADVANCED if insights else None,
            enable_performance_insights=insights or None,
            performance_insight_retention=retention,
            cluster_identifier=cluster_identifier,
            credentials=rds.Credentials.from_secret(credentials),
            default_database_name=config.database_name,
            port=config.database_port,
            vpc=vpc,
            vpc_subnets=ISOLATED,
            security_groups=[self.security_group],
            writer=rds.ClusterInstance.serverless_v2(
                "Writer",
                publicly_accessible=False,
                enable_performance_insights=insights or None,
                performance_insight_retention=retention,
            ),
            readers=[
                rds.ClusterInstance.serverless_v2(
                    f"Reader{index}",
                    scale_with_writer=True,
                    publicly_accessible=False,
                    enable_performance_insights=insights or None,
                    performance_insight_retention=retention,
                )
                for index in range(1, config.aurora_readers + 1)
            ],
            serverless_v2_min_capacity=config.aurora_min_acu,
            serverless_v2_max_capacity=config.aurora_max_acu,
            storage_encrypted=True,
            iam_authentication=True,
            backup=rds.BackupProps(
                retention=cdk.Duration.days(config.backup_retention_days), preferred_window="10:00-11:00"
            ),
            preferred_maintenance_window="Sun:11:30-Sun:12:30",
            cloudwatch_logs_exports=["postgresql"],
            copy_tags_to_snapshot=True,
            deletion_protection=config.retain_data,
            removal_policy=cdk.RemovalPolicy.RETAIN if config.retain_data else cdk.RemovalPolicy.SNAPSHOT,
        )
        self.cluster.node.add_dependency(log_group)

        attached = self.cluster.secret
        assert attached is not None, "credentials from a secret are always attached"
        self.secret: secretsmanager.ISecret = attached
        credentials.apply_removal_policy(config.removal_policy)

        # Single-user rotation (the function from AWS's Serverless Application Repository, in the private
        # subnets: it reaches Secrets Manager through the NAT and the database through its security group).
        # The tasks read the password when they open a connection and try AWSPENDING when AWSCURRENT is
        # refused, so neither half of a rotation breaks them (backend/app/core/db_password.py).
        self.rotation = self.cluster.add_rotation_single_user(
            automatically_after=cdk.Duration.days(config.database_rotation_days), vpc_subnets=PRIVATE
        )
        # The schedule rotates at once when created: only once the instances accept connections, or the
        # first rotation fails half-way and every later schedule change fails ("previous rotation isn't
        # complete"). The cluster alone is not enough: CloudFormation creates its instances after it.
        schedules = [c for c in self.node.find_all() if isinstance(c, secretsmanager.CfnRotationSchedule)]
        instances = [c for c in self.cluster.node.find_all() if isinstance(c, rds.CfnDBInstance)]
        assert schedules and instances, "the rotation schedule (on the attached secret) and the instances"
        for schedule in schedules:
            schedule.node.add_dependency(*instances)
        if not config.retain_data:
            Validations.of(self.cluster).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions-RDS10",
                    reason="Only environments without retain_data (staging) leave deletion protection off: "
                    "their database is rebuilt from migrations and test data, and a snapshot is taken on "
                    "delete (removal policy SNAPSHOT).",
                )
            )

    def allow_from(self, peer: ec2.ISecurityGroup) -> None:
        """Let `peer` (the tasks' security group) reach PostgreSQL."""
        self.security_group.add_ingress_rule(
            peer, ec2.Port.tcp(self.port), "PostgreSQL from the Fargate tasks"
        )
