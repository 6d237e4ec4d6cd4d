"""The VPC shared by enclave hosts and provers.

Created: private subnets with one NAT gateway, flow logs, and endpoints for the services the hosts call on every
boot (S3 gateway, KMS interface for the enclave's vsock proxy). Imported (config ``vpc_id``): taken as given from
ids, without any lookup; its routing, endpoints and flow logs are the owner's responsibility.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.cdk.config import DeploymentConfig


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeploymentConfig) -> None:
        super().__init__(scope, construct_id)
        if config.vpc_id is not None:
            self.vpc: ec2.IVpc = ec2.Vpc.from_vpc_attributes(
                self,
                "ImportedVpc",
                vpc_id=config.vpc_id,
                vpc_cidr_block=config.vpc_cidr,
                availability_zones=list(config.vpc_availability_zones),
                private_subnet_ids=list(config.private_subnet_ids),
            )
            return
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            max_azs=config.availability_zones,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20),
            ],
            flow_logs={"all": ec2.FlowLogOptions(traffic_type=ec2.FlowLogTrafficType.ALL)},
        )
        vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        kms_endpoint = vpc.add_interface_endpoint(
            "Kms", service=ec2.InterfaceVpcEndpointAwsService.KMS, private_dns_enabled=True, open=False
        )
        kms_endpoint.connections.allow_default_port_from(ec2.Peer.ipv4(config.vpc_cidr), "HTTPS to KMS from the VPC")
        self.vpc = vpc
