"""Resource counts and key properties of every synthesized stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match
from infra_testkit import TEST_CONFIG, SynthesizedApp, flatten_join, only_resource, resources_of

PREFIX = f"/trustdial/{TEST_CONFIG['deployment']}/measurements/"


def ssl_only_denied(template: dict[str, Any], bucket_id: str) -> bool:
    for policy in resources_of(template, "AWS::S3::BucketPolicy").values():
        if policy["Properties"]["Bucket"] != {"Ref": bucket_id}:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            condition = statement.get("Condition", {}).get("Bool", {})
            if statement["Effect"] == "Deny" and condition.get("aws:SecureTransport") == "false":
                return True
    return False


# --- Measurements -------------------------------------------------------------------------------------------------


def test_measurements_stack_resource_counts(synthesized: SynthesizedApp) -> None:
    template = synthesized.assertions["measurements"]
    template.resource_count_is("AWS::S3::Bucket", 2)  # measurements + its access logs
    template.resource_count_is("AWS::KMS::Key", 1)
    template.resource_count_is("AWS::SSM::Parameter", 6)


def test_measurement_bucket_is_versioned_object_locked_private_logged_and_tls_only(synthesized: SynthesizedApp) -> None:
    template = synthesized.templates["measurements"]
    locked = {
        name: bucket
        for name, bucket in resources_of(template, "AWS::S3::Bucket").items()
        if bucket["Properties"].get("ObjectLockEnabled")
    }
    assert len(locked) == 1
    name, bucket = next(iter(locked.items()))
    props = bucket["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    retention = props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert retention == {"Mode": "GOVERNANCE", "Days": TEST_CONFIG["measurement_retention_days"]}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "DestinationBucketName" in props["LoggingConfiguration"]
    assert ssl_only_denied(template, name)


def test_manifest_signing_key_is_p384_sign_verify(synthesized: SynthesizedApp) -> None:
    synthesized.assertions["measurements"].has_resource_properties(
        "AWS::KMS::Key", {"KeySpec": "ECC_NIST_P384", "KeyUsage": "SIGN_VERIFY"}
    )


def test_measurement_parameters_have_the_agreed_names(synthesized: SynthesizedApp) -> None:
    parameters = resources_of(synthesized.templates["measurements"], "AWS::SSM::Parameter").values()
    names = {p["Properties"]["Name"] for p in parameters}
    assert names == {PREFIX + n for n in ("current", "pcr0", "pcr1", "pcr2", "pcr8", "eif-sha384")}


def test_measurement_parameters_start_unpublished(synthesized: SynthesizedApp) -> None:
    values = {
        p["Properties"]["Value"]
        for p in resources_of(synthesized.templates["measurements"], "AWS::SSM::Parameter").values()
    }
    assert values == {"unpublished"}  # a redeploy must never overwrite what the publisher wrote


# --- Network ------------------------------------------------------------------------------------------------------


def test_network_stack_has_private_subnets_one_nat_flow_logs_and_endpoints(synthesized: SynthesizedApp) -> None:
    template = synthesized.assertions["network"]
    template.resource_count_is("AWS::EC2::VPC", 1)
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.resource_count_is("AWS::EC2::FlowLog", 1)
    template.resource_count_is("AWS::EC2::VPCEndpoint", 2)
    template.has_resource_properties(
        "AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Interface", "PrivateDnsEnabled": True}
    )


# --- Enclave hosts ------------------------------------------------------------------------------------------------


def launch_template_data(synthesized: SynthesizedApp, role: str) -> dict[str, Any]:
    _, template = only_resource(synthesized.templates[role], "AWS::EC2::LaunchTemplate")
    data: dict[str, Any] = template["Properties"]["LaunchTemplateData"]
    return data


def test_enclave_hosts_stack_resource_counts(synthesized: SynthesizedApp) -> None:
    template = synthesized.assertions["enclave_hosts"]
    for resource_type, count in {
        "AWS::EC2::LaunchTemplate": 1,
        "AWS::AutoScaling::AutoScalingGroup": 1,
        "AWS::ElasticLoadBalancingV2::LoadBalancer": 1,
        "AWS::ElasticLoadBalancingV2::Listener": 1,
        "AWS::ElasticLoadBalancingV2::TargetGroup": 1,
        "AWS::KMS::Key": 1,
        "AWS::IAM::Role": 1,
    }.items():
        template.resource_count_is(resource_type, count)


def test_enclave_launch_template_enables_enclaves_and_requires_imdsv2(synthesized: SynthesizedApp) -> None:
    data = launch_template_data(synthesized, "enclave_hosts")
    assert data["EnclaveOptions"] == {"Enabled": True}
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["InstanceType"] == TEST_CONFIG["enclave_instance_type"]
    assert all(m["Ebs"]["Encrypted"] for m in data["BlockDeviceMappings"])


def test_enclave_ami_comes_from_a_public_ssm_parameter_not_a_lookup(synthesized: SynthesizedApp) -> None:
    data = launch_template_data(synthesized, "enclave_hosts")
    parameter = data["ImageId"]["Ref"]
    declared = synthesized.templates["enclave_hosts"]["Parameters"][parameter]
    assert declared["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert declared["Default"].startswith("/aws/service/ami-amazon-linux-latest/al2023")


def test_enclave_group_and_load_balancer(synthesized: SynthesizedApp) -> None:
    template = synthesized.assertions["enclave_hosts"]
    template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {"MinSize": str(TEST_CONFIG["enclave_hosts_min"]), "MaxSize": str(TEST_CONFIG["enclave_hosts_max"])},
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal", "Type": "network"}
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup", {"Port": TEST_CONFIG["gateway_port"], "Protocol": "TCP"}
    )


def test_host_security_group_admits_only_the_gateway_port_from_the_vpc(synthesized: SynthesizedApp) -> None:
    groups = resources_of(synthesized.templates["enclave_hosts"], "AWS::EC2::SecurityGroup")
    ingress = [rule for group in groups.values() for rule in group["Properties"].get("SecurityGroupIngress", [])]
    host_rules = [rule for rule in ingress if rule.get("FromPort") == TEST_CONFIG["gateway_port"]]
    assert host_rules and all(rule["CidrIp"] != "0.0.0.0/0" for rule in ingress)


def test_enclave_user_data_checks_the_signed_manifest_before_running_the_eif(synthesized: SynthesizedApp) -> None:
    script = flatten_join(launch_template_data(synthesized, "enclave_hosts")["UserData"])
    assert "set -euo pipefail" in script
    assert '"$TRUSTDIAL_BIN/trustdial-verify" measurements' in script
    assert script.index("\nfetch_and_verify_eif\n") < script.index("\nconfigure_enclave_services\n")
    assert f"readonly PARAMETER_PREFIX='{PREFIX}'" in script
    assert f"readonly GATEWAY_PORT={TEST_CONFIG['gateway_port']}" in script


def test_host_role_reads_only_published_measurements(synthesized: SynthesizedApp) -> None:
    _, policy = only_resource(synthesized.templates["enclave_hosts"], "AWS::IAM::Policy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    actions = {
        action for s in statements for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "ssm:GetParameter", "kms:GetPublicKey"}
    object_resources = json.dumps([s["Resource"] for s in statements if "s3:GetObject" in json.dumps(s["Action"])])
    for prefix in ("/manifests/*", "/eifs/*", "/wheels/*"):
        assert prefix in object_resources


# --- Prover fleet -------------------------------------------------------------------------------------------------


def test_prover_stack_resource_counts(synthesized: SynthesizedApp) -> None:
    template = synthesized.assertions["prover_fleet"]
    template.resource_count_is("AWS::SQS::Queue", 2)
    template.resource_count_is("AWS::S3::Bucket", 1)
    template.resource_count_is("AWS::AutoScaling::AutoScalingGroup", 1)
    template.resource_count_is("AWS::AutoScaling::ScalingPolicy", 1)
    template.resource_count_is("AWS::AutoScaling::LifecycleHook", 1)


def test_job_queue_has_dead_letter_queue_and_job_length_visibility(synthesized: SynthesizedApp) -> None:
    synthesized.assertions["prover_fleet"].has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": TEST_CONFIG["prover_job_timeout_minutes"] * 60,
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 3},
            "SqsManagedSseEnabled": True,
        },
    )


def test_prover_group_scales_from_zero_on_memory_rich_instances(synthesized: SynthesizedApp) -> None:
    synthesized.assertions["prover_fleet"].has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "MinSize": "0",
            "MaxSize": str(TEST_CONFIG["prover_max_instances"]),
            "MetricsCollection": [{"Granularity": "1Minute", "Metrics": ["GroupInServiceInstances"]}],
        },
    )
    data = launch_template_data(synthesized, "prover_fleet")
    assert data["InstanceType"] == TEST_CONFIG["prover_instance_type"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"


def test_prover_scaling_policy_targets_backlog_per_instance(synthesized: SynthesizedApp) -> None:
    template = synthesized.templates["prover_fleet"]
    queue_id = next(
        name for name, q in resources_of(template, "AWS::SQS::Queue").items() if "RedrivePolicy" in q["Properties"]
    )
    _, policy = only_resource(template, "AWS::AutoScaling::ScalingPolicy")
    props = policy["Properties"]
    assert props["PolicyType"] == "TargetTrackingScaling"
    tracking = props["TargetTrackingConfiguration"]
    assert tracking["TargetValue"] == TEST_CONFIG["prover_backlog_per_instance"]
    metrics = {m["Id"]: m for m in tracking["CustomizedMetricSpecification"]["Metrics"]}
    backlog = metrics["backlog"]["MetricStat"]["Metric"]
    assert backlog["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert backlog["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    instances = metrics["instances"]["MetricStat"]["Metric"]
    assert instances["MetricName"] == "GroupInServiceInstances"
    returned = [m for m in metrics.values() if m.get("ReturnData", True)]
    assert len(returned) == 1 and "backlog / instances" in returned[0]["Expression"]


def test_prover_drains_on_scale_in_for_up_to_a_job_timeout(synthesized: SynthesizedApp) -> None:
    synthesized.assertions["prover_fleet"].has_resource_properties(
        "AWS::AutoScaling::LifecycleHook",
        {
            "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
            "HeartbeatTimeout": TEST_CONFIG["prover_job_timeout_minutes"] * 60,
            "DefaultResult": "CONTINUE",
        },
    )
    script = flatten_join(launch_template_data(synthesized, "prover_fleet")["UserData"])
    assert "trustdial prover worker --queue-url" in script
    assert "complete-lifecycle-action" in script


# --- Image build --------------------------------------------------------------------------------------------------


def test_image_build_project_is_privileged_encrypted_and_builds_twice(synthesized: SynthesizedApp) -> None:
    template = synthesized.templates["image_build"]
    synthesized.assertions["image_build"].resource_count_is("AWS::CodeBuild::Project", 1)
    _, project = only_resource(template, "AWS::CodeBuild::Project")
    props = project["Properties"]
    assert props["Environment"]["PrivilegedMode"] is True
    assert "EncryptionKey" in props
    spec = json.loads(props["Source"]["BuildSpec"])
    commands = "\n".join(spec["phases"]["build"]["commands"])
    assert commands.count("make eif") == 2
    assert "PCR drift" in commands and "exit 1" in commands
    assert commands.index("PCR drift") < commands.index("trustdial measurements sign")
    assert commands.index("trustdial measurements sign") < commands.index("trustdial measurements publish")
    variables = {v["Name"] for v in props["Environment"]["EnvironmentVariables"]}
    assert {"DEPLOYMENT", "MEASUREMENTS_BUCKET", "SIGNING_KEY_ARN"} <= variables


def test_image_build_may_sign_and_publish(synthesized: SynthesizedApp) -> None:
    template = synthesized.templates["image_build"]
    statements = [
        s
        for policy in resources_of(template, "AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = json.dumps([s["Action"] for s in statements])
    for action in ("kms:Sign", "ssm:PutParameter", "s3:PutObject"):
        assert action in actions


# --- Imported VPC ----------------------------------------------------------------------------------------------


def test_imported_vpc_places_hosts_and_provers_in_the_given_subnets(tmp_path: Path) -> None:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template
    from infra_testkit import feature_flags

    from infra.cdk.config import DeploymentConfig, config_from_mapping
    from infra.cdk.stacks import add_trustdial_stacks

    subnets = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
    imported = {
        "deployment": "imported",
        "vpc_id": "vpc-0123456789abcdef0",
        "vpc_cidr": "172.31.0.0/16",
        "private_subnet_ids": subnets,
        "vpc_availability_zones": ["eu-west-1a", "eu-west-1b"],
    }
    app = cdk.App(outdir=str(tmp_path), context=feature_flags())
    stacks = add_trustdial_stacks(app, DeploymentConfig(**config_from_mapping(imported, "test config")))
    app.synth()
    Template.from_stack(stacks.network).resource_count_is("AWS::EC2::VPC", 0)
    Template.from_stack(stacks.network).resource_count_is("AWS::EC2::NatGateway", 0)
    for stack in (stacks.enclave_hosts, stacks.prover_fleet):
        template = Template.from_stack(stack)
        template.has_resource_properties("AWS::AutoScaling::AutoScalingGroup", {"VPCZoneIdentifier": subnets})
        template.has_resource_properties("AWS::EC2::SecurityGroup", {"VpcId": "vpc-0123456789abcdef0"})
    Template.from_stack(stacks.enclave_hosts).has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {"SecurityGroupIngress": [{"CidrIp": "172.31.0.0/16", "FromPort": 8443, "ToPort": 8443, "IpProtocol": "tcp"}]},
    )
