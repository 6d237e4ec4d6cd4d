"""Enclave hosts: launch template (Nitro Enclaves on, IMDSv2 required, encrypted root volume), an Auto Scaling
group in private subnets, an internal Network Load Balancer in front of the gateway, the host role, and the
model-weights key bound to the accepted PCRs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.cdk.acknowledgments import acknowledge, acknowledge_wildcard_resources
from infra.cdk.config import DeploymentConfig
from infra.cdk.enclave_key import EnclaveKey
from infra.cdk.host_bootstrap import HostBootstrapSettings, render_host_user_data
from infra.cdk.instance_types import require_enclave_capable
from infra.cdk.launch_template import hardened_launch_template
from infra.cdk.measurement_access import measurement_reader
from infra.cdk.measurement_store import MeasurementStore
from infra.cdk.names import MEASUREMENTS, bucket_name

ROOT_VOLUME_GIB = 30
MAX_INSTANCE_LIFETIME = cdk.Duration.days(7)


class EnclaveHost(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        vpc: ec2.IVpc,
        measurements: MeasurementStore,
    ) -> None:
        super().__init__(scope, construct_id)
        require_enclave_capable(config.enclave_instance_type)
        stack = cdk.Stack.of(self)
        self.role = iam.Role(
            self,
            "HostRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="trustdial enclave host: reads measurements; decrypts weights only from an attested enclave",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")],
        )
        reader = measurement_reader(config.deployment, config.parameter_prefix, measurements.signing_key.key_arn)
        reader.attach(self.role)
        acknowledge_wildcard_resources(
            self.role,
            reader.wildcard_resources,
            "Hosts fetch content-addressed objects (manifests/<sha384>.json, eifs/<sha384>.eif) whose names are "
            "only known at boot; access is limited to these published prefixes, read-only.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            "Session Manager replaces SSH (no inbound ports, no key pairs); AWS maintains this minimal policy.",
        )
        self.weights_key = EnclaveKey(
            self,
            "WeightsKey",
            host_role=self.role,
            pcr_sets=config.pcrs,
            immutable_policy=config.immutable_key_policy_i_understand_this_is_permanent,
        ).key

        self.security_group = ec2.SecurityGroup(
            self, "HostSecurityGroup", vpc=vpc, description="trustdial enclave hosts", allow_all_outbound=True
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.ipv4(config.vpc_cidr),
            ec2.Port.tcp(config.gateway_port),
            "gateway, from the internal load balancer and clients inside the VPC",
        )
        user_data = render_host_user_data(
            HostBootstrapSettings(
                region=stack.region,
                measurements_bucket=bucket_name(config.deployment, MEASUREMENTS).value(),
                signing_key_id=measurements.signing_key.key_arn,
                parameter_prefix=measurements.parameter_prefix,
                enclave_cpu_count=config.enclave_cpu_count,
                enclave_min_memory_mib=config.enclave_min_memory_mib,
                enclave_cid=config.enclave_cid,
                enclave_vsock_port=config.enclave_vsock_port,
                gateway_port=config.gateway_port,
            )
        )
        self.launch_template = hardened_launch_template(
            self,
            instance_type=config.enclave_instance_type,
            nitro_enclave_enabled=True,
            role=self.role,
            security_group=self.security_group,
            user_data=user_data,
            root_volume_gib=ROOT_VOLUME_GIB,
        )
        self.group = autoscaling.AutoScalingGroup(
            self,
            "Group",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            launch_template=self.launch_template,
            min_capacity=config.enclave_hosts_min,
            max_capacity=config.enclave_hosts_max,
            max_instance_lifetime=MAX_INSTANCE_LIFETIME,
            health_checks=autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
                grace_period=cdk.Duration.minutes(10),
            ),
            update_policy=autoscaling.UpdatePolicy.rolling_update(),
        )
        self.load_balancer = elbv2.NetworkLoadBalancer(
            self, "LoadBalancer", vpc=vpc, internet_facing=False, cross_zone_enabled=True
        )
        acknowledge(
            self.load_balancer,
            "AwsSolutions-ELB2",
            "TCP pass-through listener: NLB access logs are only written for TLS listeners, so there is nothing to "
            "log; VPC flow logs record the connections and the gateway logs requests.",
        )
        acknowledge(
            self.group,
            "AwsSolutions-AS3",
            "Scaling activity is recorded in the group's activity history and CloudTrail; no operator topic is "
            "provisioned by default.",
        )
        listener = self.load_balancer.add_listener("Gateway", port=config.load_balancer_port)
        listener.add_targets(
            "Hosts",
            port=config.gateway_port,
            targets=[self.group],
            health_check=elbv2.HealthCheck(protocol=elbv2.Protocol.TCP),
        )
