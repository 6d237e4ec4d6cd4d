"""User data for a prover instance: install trustdial, run ``trustdial prover worker`` as a systemd unit, and drain
it gracefully on scale-in.

Scale-in: the Auto Scaling group holds a terminating instance in ``Terminating:Wait`` (a lifecycle hook whose
heartbeat timeout is the job timeout). ``trustdial-drain`` polls the instance metadata's
``autoscaling/target-lifecycle-state``; on ``Terminated`` it stops the worker (SIGTERM, then up to the job timeout
for the running proof to finish; an unfinished job's message returns to the queue after its visibility timeout) and
completes the lifecycle action so the instance goes away.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.cdk.wheel_install import HOST_VENV, Role, wheel_install_snippet

DRAIN_HOOK_NAME = "drain-prover"
DRAIN_POLL_SECONDS = 5


@dataclass(frozen=True)
class ProverBootstrapSettings:
    region: str
    wheels_bucket: str
    queue_url: str
    artifacts_bucket: str
    concurrency: int
    job_timeout_seconds: int
    auto_scaling_group_name: str


def render_prover_user_data(settings: ProverBootstrapSettings) -> str:
    timeout = int(settings.job_timeout_seconds)
    return f"""#!/bin/bash
# trustdial prover bootstrap (rendered by infra/cdk/prover_bootstrap.py).
set -euo pipefail
exec > >(tee -a /var/log/trustdial-bootstrap.log) 2>&1
export AWS_REGION='{settings.region}'
export AWS_DEFAULT_REGION="$AWS_REGION"

dnf install -y --quiet python3.11 python3.11-pip
{wheel_install_snippet(settings.wheels_bucket, Role.PROVER)}install_trustdial

cat > /etc/systemd/system/trustdial-prover.service <<'UNIT'
[Unit]
Description=trustdial: prover worker
After=network-online.target
[Service]
Environment=AWS_REGION={settings.region}
ExecStart={HOST_VENV}/bin/trustdial prover worker --queue-url {settings.queue_url} \\
  --bucket {settings.artifacts_bucket} --concurrency {int(settings.concurrency)}
KillSignal=SIGTERM
TimeoutStopSec={timeout}
Restart=always
DynamicUser=yes
NoNewPrivileges=yes
StateDirectory=trustdial-prover
[Install]
WantedBy=multi-user.target
UNIT

cat > /usr/local/bin/trustdial-drain <<'DRAIN'
#!/bin/bash
# Wait for scale-in, stop the worker gracefully, then let the Auto Scaling group terminate this instance.
set -euo pipefail
imds() {{
  local token
  token=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
  curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"
}}
until [[ $(imds autoscaling/target-lifecycle-state || echo unknown) == Terminated ]]; do
  sleep {DRAIN_POLL_SECONDS}
done
systemctl stop trustdial-prover.service
aws autoscaling complete-lifecycle-action --lifecycle-hook-name {DRAIN_HOOK_NAME} \\
  --auto-scaling-group-name '{settings.auto_scaling_group_name}' --instance-id "$(imds instance-id)" \\
  --lifecycle-action-result CONTINUE
DRAIN
chmod 0755 /usr/local/bin/trustdial-drain

cat > /etc/systemd/system/trustdial-drain.service <<'UNIT'
[Unit]
Description=trustdial: drain the prover worker on scale-in
[Service]
Environment=AWS_REGION={settings.region}
ExecStart=/usr/local/bin/trustdial-drain
Restart=on-failure
[Install]
WantedBy=multi-user.target
UNIT

systemctl daemon-reload
systemctl enable --now trustdial-prover.service trustdial-drain.service
"""
