"""The prover fleet: an SQS job queue with a dead-letter queue, a bucket for artifacts and proofs, and an Auto
Scaling group of memory-rich instances running ``trustdial prover worker`` that tracks a target backlog per
instance (visible messages / in-service instances, metric math) and drains gracefully on scale-in."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.cdk.acknowledgments import acknowledge, acknowledge_wildcard_resources
from infra.cdk.config import DeploymentConfig
from infra.cdk.launch_template import hardened_launch_template
from infra.cdk.logged_bucket import logged_bucket
from infra.cdk.measurement_access import wheel_reader
from infra.cdk.names import MEASUREMENTS, PROOFS, PseudoTemplate, bucket_arn, bucket_name, bucket_objects_arn
from infra.cdk.prover_bootstrap import DRAIN_HOOK_NAME, ProverBootstrapSettings, render_prover_user_data

MAX_RECEIVE_COUNT = 3
ROOT_VOLUME_GIB = 100
# backlog per instance; with no instance in service the whole backlog counts (scale out from zero)
BACKLOG_PER_INSTANCE_EXPRESSION = "IF(instances > 0, backlog / instances, backlog)"


def prover_group_name(deployment: str) -> str:
    """Fixed so the user data and the drain permission can name the group without a dependency cycle."""
    return f"trustdial-{deployment}-provers"


class ProverFleet(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        vpc: ec2.IVpc,
        access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        job_timeout = cdk.Duration.minutes(config.prover_job_timeout_minutes)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "JobQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=job_timeout,
            retention_period=cdk.Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT),
        )
        self.artifacts = logged_bucket(
            self,
            "Artifacts",
            bucket_name=bucket_name(config.deployment, PROOFS).value(),
            access_logs=access_logs,
            log_prefix="prover-artifacts/",
        )
        self.role = iam.Role(
            self,
            "WorkerRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="trustdial prover worker: consumes jobs, reads and writes artifacts and proofs",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")],
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                ],
                resources=[self.queue.queue_arn],
            )
        )
        artifact_objects = bucket_objects_arn(config.deployment, PROOFS, "*")
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[artifact_objects.value()])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket_arn(config.deployment, PROOFS).value()])
        )
        wheels = wheel_reader(config.deployment)
        wheels.attach(self.role)
        acknowledge_wildcard_resources(
            self.role,
            [artifact_objects],
            "Workers read job inputs and write proofs under keys chosen per job; the bucket holds nothing else.",
        )
        acknowledge_wildcard_resources(
            self.role,
            wheels.wildcard_resources,
            "Workers install the trustdial wheels published by the image build; read-only, wheels/ prefix only.",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
            "Session Manager replaces SSH (no inbound ports, no key pairs); AWS maintains this minimal policy.",
        )
        group_name = prover_group_name(config.deployment)
        drain_group_arn_template = (
            "arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/" + group_name
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["autoscaling:CompleteLifecycleAction"],
                resources=[PseudoTemplate(drain_group_arn_template).value()],
            )
        )
        acknowledge_wildcard_resources(
            self.role,
            [PseudoTemplate(drain_group_arn_template)],
            "The '*' is the group's generated id; the ARN is pinned to this deployment's fixed group name, and the "
            "action only completes the drain lifecycle hook.",
        )
        security_group = ec2.SecurityGroup(
            self, "WorkerSecurityGroup", vpc=vpc, description="trustdial provers (no inbound)", allow_all_outbound=True
        )
        user_data = render_prover_user_data(
            ProverBootstrapSettings(
                region=stack.region,
                wheels_bucket=bucket_name(config.deployment, MEASUREMENTS).value(),
                queue_url=self.queue.queue_url,
                artifacts_bucket=self.artifacts.bucket_name,
                concurrency=config.prover_concurrency,
                job_timeout_seconds=int(job_timeout.to_seconds()),
                auto_scaling_group_name=group_name,
            )
        )
        self.launch_template = hardened_launch_template(
            self,
            instance_type=config.prover_instance_type,
            role=self.role,
            security_group=security_group,
            user_data=user_data,
            root_volume_gib=ROOT_VOLUME_GIB,
        )
        self.group = autoscaling.AutoScalingGroup(
            self,
            "Group",
            auto_scaling_group_name=group_name,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            launch_template=self.launch_template,
            min_capacity=0,
            max_capacity=config.prover_max_instances,
            group_metrics=[autoscaling.GroupMetrics(autoscaling.GroupMetric.IN_SERVICE_INSTANCES)],
        )
        self.group.add_lifecycle_hook(
            "Drain",
            lifecycle_hook_name=DRAIN_HOOK_NAME,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
            heartbeat_timeout=job_timeout,
            default_result=autoscaling.DefaultResult.CONTINUE,
        )
        self.scaling_policy = autoscaling.CfnScalingPolicy(
            self,
            "BacklogPerInstance",
            auto_scaling_group_name=self.group.auto_scaling_group_name,
            policy_type="TargetTrackingScaling",
            target_tracking_configuration=autoscaling.CfnScalingPolicy.TargetTrackingConfigurationProperty(
                target_value=float(config.prover_backlog_per_instance),
                customized_metric_specification=autoscaling.CfnScalingPolicy.CustomizedMetricSpecificationProperty(
                    metrics=[
                        autoscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                            id="backlog",
                            return_data=False,
                            metric_stat=autoscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
                                metric=autoscaling.CfnScalingPolicy.MetricProperty(
                                    namespace="AWS/SQS",
                                    metric_name="ApproximateNumberOfMessagesVisible",
                                    dimensions=[
                                        autoscaling.CfnScalingPolicy.MetricDimensionProperty(
                                            name="QueueName", value=self.queue.queue_name
                                        )
                                    ],
                                ),
                                stat="Sum",
                            ),
                        ),
                        autoscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                            id="instances",
                            return_data=False,
                            metric_stat=autoscaling.CfnScalingPolicy.TargetTrackingMetricStatProperty(
                                metric=autoscaling.CfnScalingPolicy.MetricProperty(
                                    namespace="AWS/AutoScaling",
                                    metric_name="GroupInServiceInstances",
                                    dimensions=[
                                        autoscaling.CfnScalingPolicy.MetricDimensionProperty(
                                            name="AutoScalingGroupName", value=group_name
                                        )
                                    ],
                                ),
                                stat="Average",
                            ),
                        ),
                        autoscaling.CfnScalingPolicy.TargetTrackingMetricDataQueryProperty(
                            id="backlogPerInstance",
                            expression=BACKLOG_PER_INSTANCE_EXPRESSION,
                            label="Visible prover jobs per in-service instance",
                            return_data=True,
                        ),
                    ]
                ),
            ),
        )
        acknowledge(
            self.group,
            "AwsSolutions-AS3",
            "Scaling activity is recorded in the group's activity history and CloudTrail; the backlog alarm lives "
            "in the target-tracking policy; no operator topic is provisioned by default.",
        )
