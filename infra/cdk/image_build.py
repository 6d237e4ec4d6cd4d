"""The image build pipeline: a privileged CodeBuild project (Docker) that builds the EIF twice from the uploaded
source, fails on PCR drift, and publishes wheels, EIF and the KMS-signed manifest to the measurement store.

Source: a zip of a clone of the repository, including ``.git``, uploaded to
``s3://<source bucket>/source/trustdial.zip``;
start a build with ``aws codebuild start-build --project-name <ImageBuildProject output>``.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.cdk.acknowledgments import acknowledge, acknowledge_wildcard_actions, acknowledge_wildcard_resources
from infra.cdk.buildspec import image_build_spec
from infra.cdk.config import DeploymentConfig
from infra.cdk.logged_bucket import logged_bucket
from infra.cdk.measurement_access import measurement_publisher
from infra.cdk.measurement_store import MeasurementStore
from infra.cdk.names import BUILD_SOURCE, MEASUREMENTS, PseudoTemplate, bucket_name

SOURCE_KEY = "source/trustdial.zip"
BUILD_TIMEOUT = cdk.Duration.hours(2)


class ImageBuild(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        measurements: MeasurementStore,
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self.source_bucket = logged_bucket(
            self,
            "SourceBucket",
            bucket_name=bucket_name(config.deployment, BUILD_SOURCE).value(),
            access_logs=access_logs,
            log_prefix="image-build-source/",
        )
        source_cfn = self.source_bucket.node.default_child
        assert isinstance(source_cfn, s3.CfnBucket)
        self.artifacts_key = kms.Key(
            self,
            "BuildArtifactsKey",
            description="trustdial image build: encrypts CodeBuild artifacts and logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.log_group = logs.LogGroup(
            self, "BuildLogs", retention=logs.RetentionDays.ONE_YEAR, removal_policy=cdk.RemovalPolicy.RETAIN
        )
        compute_type = getattr(codebuild.ComputeType, config.build_compute_type)
        self.project = codebuild.Project(
            self,
            "Project",
            description="trustdial: reproducible EIF build (twice, fail on PCR drift), sign and publish measurements",
            source=codebuild.Source.s3(bucket=self.source_bucket, path=SOURCE_KEY),
            build_spec=codebuild.BuildSpec.from_object(image_build_spec()),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.AMAZON_LINUX_2023_5,
                compute_type=compute_type,
                privileged=True,
            ),
            environment_variables={
                "DEPLOYMENT": codebuild.BuildEnvironmentVariable(value=config.deployment),
                "MEASUREMENTS_BUCKET": codebuild.BuildEnvironmentVariable(
                    value=bucket_name(config.deployment, MEASUREMENTS).value()
                ),
                "SIGNING_KEY_ARN": codebuild.BuildEnvironmentVariable(value=measurements.signing_key.key_arn),
            },
            encryption_key=self.artifacts_key,
            timeout=BUILD_TIMEOUT,
            logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=self.log_group)),
        )
        project_cfn = self.project.node.default_child
        assert isinstance(project_cfn, codebuild.CfnProject)
        publisher = measurement_publisher(config.deployment, config.parameter_prefix, measurements.signing_key.key_arn)
        publisher.attach(self.project.grant_principal)
        role = self.project.role
        assert role is not None  # CodeBuild creates a role when none is passed
        acknowledge_wildcard_resources(
            role,
            publisher.wildcard_resources,
            "The build writes content-addressed objects (manifests/<sha384>.json, eifs/<sha384>.eif, wheels) "
            "whose names exist only after the build; limited to the three published prefixes.",
        )
        source_objects = PseudoTemplate(f"<{cdk.Stack.of(self).get_logical_id(source_cfn)}.Arn>/*")
        acknowledge_wildcard_resources(
            role,
            [source_objects],
            "CodeBuild's S3 source integration reads the uploaded source archive; this bucket holds only sources.",
        )
        acknowledge_wildcard_actions(
            role,
            ["s3:GetObject*", "s3:GetBucket*", "s3:List*"],
            "Added by CodeBuild's S3 source integration (Source.s3) for the source bucket only.",
        )
        project_id = cdk.Stack.of(self).get_logical_id(project_cfn)
        acknowledge_wildcard_resources(
            role,
            [
                PseudoTemplate(
                    f"arn:{{partition}}:logs:{{region}}:{{account}}:log-group:/aws/codebuild/<{project_id}>:*"
                ),
                PseudoTemplate(f"arn:{{partition}}:codebuild:{{region}}:{{account}}:report-group/<{project_id}>-*"),
            ],
            "Added by CodeBuild for this project's own default log group and report groups (named after it).",
        )
        acknowledge_wildcard_actions(
            role,
            ["kms:ReEncrypt*", "kms:GenerateDataKey*"],
            "Added by CodeBuild for its artifacts/log encryption key, a key dedicated to this project.",
        )
        acknowledge(
            self.project,
            "AwsSolutions-CB3",
            "Privileged mode runs the Docker daemon that `make eif` needs to build the enclave image.",
        )
