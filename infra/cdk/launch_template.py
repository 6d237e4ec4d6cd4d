"""The launch template every trustdial instance boots from: Amazon Linux 2023, IMDSv2 only with a hop limit of 1
(containers on the host cannot reach the instance's credentials), and an encrypted gp3 root volume."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

ROOT_DEVICE = "/dev/xvda"


def hardened_launch_template(
    scope: Construct,
    *,
    instance_type: str,
    role: iam.IRole,
    security_group: ec2.ISecurityGroup,
    user_data: str,
    root_volume_gib: int,
    nitro_enclave_enabled: bool | None = None,
) -> ec2.LaunchTemplate:
    """The construct ``LaunchTemplate`` under ``scope``."""
    return ec2.LaunchTemplate(
        scope,
        "LaunchTemplate",
        instance_type=ec2.InstanceType(instance_type),
        machine_image=ec2.MachineImage.latest_amazon_linux2023(),
        nitro_enclave_enabled=nitro_enclave_enabled,
        require_imdsv2=True,
        http_put_response_hop_limit=1,
        role=role,
        security_group=security_group,
        user_data=ec2.UserData.custom(user_data),
        block_devices=[
            ec2.BlockDevice(
                device_name=ROOT_DEVICE,
                volume=ec2.BlockDeviceVolume.ebs(
                    root_volume_gib, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                ),
            )
        ],
    )
