"""The trustdial stacks: thin compositions of the constructs, with cdk-nag AwsSolutionsChecks on the app."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.cdk.access_logs import AccessLogBucket
from infra.cdk.config import DeploymentConfig
from infra.cdk.enclave_host import EnclaveHost
from infra.cdk.image_build import ImageBuild
from infra.cdk.measurement_store import MeasurementStore
from infra.cdk.names import ACCESS_LOGS, BUILD_LOGS, bucket_name
from infra.cdk.network import Network
from infra.cdk.prover_fleet import ProverFleet

DEVELOPMENT_PCRS_WARNING = (
    "DEVELOPMENT placeholder PCRs in use: the model-weights key decrypts for no enclave. Pass the PCRs from your "
    "signed manifest (context `pcrs` or the config file) before uploading weights."
)


class MeasurementsStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, env: cdk.Environment | None = None
    ) -> None:
        super().__init__(scope, construct_id, description="trustdial: published enclave measurements", env=env)
        self.store = MeasurementStore(
            self,
            "Measurements",
            deployment=config.deployment,
            parameter_prefix=config.parameter_prefix,
            retention_days=config.measurement_retention_days,
        )
        cdk.CfnOutput(self, "MeasurementsBucketName", value=self.store.bucket.bucket_name)
        cdk.CfnOutput(self, "ManifestSigningKeyArn", value=self.store.signing_key.key_arn)
        cdk.CfnOutput(self, "MeasurementsParameterPrefix", value=config.parameter_prefix)


class NetworkStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeploymentConfig, env: cdk.Environment | None = None
    ) -> None:
        super().__init__(scope, construct_id, description="trustdial: VPC for enclave hosts and provers", env=env)
        self.network = Network(self, "Network", config=config)
        self.access_logs = AccessLogBucket(
            self, "AccessLogs", bucket_name=bucket_name(config.deployment, ACCESS_LOGS).value()
        ).bucket


class EnclaveHostsStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        network: NetworkStack,
        measurements: MeasurementsStack,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(scope, construct_id, description="trustdial: Nitro enclave hosts and gateway", env=env)
        self.hosts = EnclaveHost(
            self,
            "EnclaveHosts",
            config=config,
            vpc=network.network.vpc,
            measurements=measurements.store,
        )
        if config.uses_development_pcrs:
            cdk.Annotations.of(self).add_warning_v2("trustdial:development-pcrs", DEVELOPMENT_PCRS_WARNING)
            cdk.Tags.of(self).add("trustdial:pcrs", "development-placeholder")
        cdk.CfnOutput(self, "WeightsKeyArn", value=self.hosts.weights_key.key_arn)
        cdk.CfnOutput(self, "HostRoleArn", value=self.hosts.role.role_arn)
        cdk.CfnOutput(self, "GatewayDnsName", value=self.hosts.load_balancer.load_balancer_dns_name)


class ProverFleetStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        network: NetworkStack,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(scope, construct_id, description="trustdial: ezkl prover fleet", env=env)
        self.fleet = ProverFleet(
            self,
            "ProverFleet",
            config=config,
            vpc=network.network.vpc,
            access_logs=network.access_logs,
        )
        cdk.CfnOutput(self, "JobQueueUrl", value=self.fleet.queue.queue_url)
        cdk.CfnOutput(self, "ArtifactsBucketName", value=self.fleet.artifacts.bucket_name)


class ImageBuildStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        measurements: MeasurementsStack,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(scope, construct_id, description="trustdial: reproducible EIF build and publishing", env=env)
        logs = AccessLogBucket(
            self, "AccessLogs", bucket_name=bucket_name(config.deployment, BUILD_LOGS).value()
        ).bucket
        self.build = ImageBuild(self, "ImageBuild", config=config, measurements=measurements.store, access_logs=logs)
        cdk.CfnOutput(self, "ImageBuildProject", value=self.build.project.project_name)
        cdk.CfnOutput(self, "SourceBucketName", value=self.build.source_bucket.bucket_name)


@dataclass(frozen=True)
class TrustdialStacks:
    measurements: MeasurementsStack
    network: NetworkStack
    enclave_hosts: EnclaveHostsStack
    prover_fleet: ProverFleetStack
    image_build: ImageBuildStack

    def all(self) -> tuple[cdk.Stack, ...]:
        return (self.measurements, self.network, self.enclave_hosts, self.prover_fleet, self.image_build)


def add_trustdial_stacks(app: cdk.App, config: DeploymentConfig, env: cdk.Environment | None = None) -> TrustdialStacks:
    """Add the five stacks for one deployment and the cdk-nag AwsSolutions checks (findings fail synth)."""
    prefix = f"Trustdial-{config.deployment}"
    measurements = MeasurementsStack(app, f"{prefix}-Measurements", config=config, env=env)
    network = NetworkStack(app, f"{prefix}-Network", config=config, env=env)
    stacks = TrustdialStacks(
        measurements=measurements,
        network=network,
        enclave_hosts=EnclaveHostsStack(
            app, f"{prefix}-EnclaveHosts", config=config, network=network, measurements=measurements, env=env
        ),
        prover_fleet=ProverFleetStack(app, f"{prefix}-ProverFleet", config=config, network=network, env=env),
        image_build=ImageBuildStack(app, f"{prefix}-ImageBuild", config=config, measurements=measurements, env=env),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stacks
