"""The VPC shared by enclave hosts and provers: private subnets with one NAT gateway, flow logs, and endpoints for
the services the hosts call on every boot (S3 gateway, KMS interface for the enclave's vsock proxy)."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.cdk.names import VPC_CIDR


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, max_azs: int) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=max_azs,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20),
            ],
            flow_logs={"all": ec2.FlowLogOptions(traffic_type=ec2.FlowLogTrafficType.ALL)},
        )
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        kms_endpoint = self.vpc.add_interface_endpoint(
            "Kms", service=ec2.InterfaceVpcEndpointAwsService.KMS, private_dns_enabled=True, open=False
        )
        kms_endpoint.connections.allow_default_port_from(ec2.Peer.ipv4(VPC_CIDR), "HTTPS to KMS from the VPC")
