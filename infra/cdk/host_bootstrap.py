"""User data for an enclave host: install the Nitro CLI and trustdial, fetch the EIF named by the signed
measurement manifest, check the manifest signature and the EIF's SHA-384, size the allocator from the EIF, and run
the enclave, the KMS vsock proxy and the gateway as systemd units. Every step aborts the boot on failure
(``set -euo pipefail``); nothing is started before the EIF is verified.

The block between ``# >>> trustdial checks`` and ``# <<< trustdial checks`` holds only shell functions, so tests can
source it and run the checks against real files.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.cdk.wheel_install import HOST_VENV, Role, wheel_install_snippet

CHECKS_BEGIN = "# >>> trustdial checks"
CHECKS_END = "# <<< trustdial checks"
# Where the signed manifest records the EIF's SHA-384 (docs/measurements.md, issue 3's manifest format).
MANIFEST_EIF_SHA384_FIELD = "eif.sha384"
KMS_PROXY_PORT = 8000
# The parent's credential server (trustdial host-credentials): the enclave signs KMS requests with the instance
# role's credentials, fetched from IMDSv2 by the host and refreshed before expiry (docs/sealed-models.md §7).
CREDENTIALS_PORT = 8001
EIF_PATH = "/opt/trustdial/enclave.eif"
MEMORY_TO_EIF_RATIO = 4  # nitro-cli refuses enclave memory below 4 x EIF size


@dataclass(frozen=True)
class HostBootstrapSettings:
    """Values rendered into the script; strings may be CDK tokens (resolved by CloudFormation)."""

    region: str
    measurements_bucket: str
    signing_key_id: str
    parameter_prefix: str
    enclave_cpu_count: int
    enclave_min_memory_mib: int
    enclave_cid: int
    enclave_vsock_port: int
    gateway_port: int


CHECKS = r"""
log() { echo "trustdial-bootstrap: $*" >&2; }
die() { log "FATAL: $*"; exit 1; }

sha384_of() { sha384sum -- "$1" | cut -d' ' -f1; }

# require_sha384 FILE EXPECTED: abort unless FILE's SHA-384 is EXPECTED (96 lowercase hex characters).
require_sha384() {
  local file=$1 expected=$2 actual
  [[ $expected =~ ^[0-9a-f]{96}$ ]] || die "expected SHA-384 of $file is not 96 lowercase hex characters: '$expected'"
  [[ -f $file ]] || die "$file does not exist"
  actual=$(sha384_of "$file")
  [[ $actual == "$expected" ]] || die "SHA-384 mismatch for $file: expected $expected, found $actual"
}

# json_field DOTTED.PATH < JSON: print the string (or true/false) at that path; abort if absent.
json_field() {
  local value
  value=$(python3 -c '
import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    value = value.get(part) if isinstance(value, dict) else None
if isinstance(value, bool):
    value = "true" if value else "false"
print(value if isinstance(value, str) else "")
' "$1") || die "input for '$1' is not JSON"
  [[ -n $value ]] || die "no string at '$1' in the JSON input"
  echo "$value"
}

# published_key URI BUCKET PATTERN: print the key of s3://BUCKET/KEY?versionId=V; abort unless KEY matches PATTERN.
published_key() {
  local rest=${1#"s3://$2/"}
  [[ $rest != "$1" ]] || die "'$1' is not an object in the measurements bucket $2"
  rest=${rest%%\?*}
  [[ $rest =~ ^$3$ ]] || die "'$rest' is not a content-addressed published object (expected $3)"
  echo "$rest"
}

# published_version URI: print the versionId the URI pins (empty if none).
published_version() {
  if [[ $1 == *"?versionId="* ]]; then echo "${1##*\?versionId=}"; fi
}

# require_valid_report REPORT_JSON: abort unless a trustdial-verify --json report says valid.
require_valid_report() {
  [[ $(json_field valid <<<"$1") == true ]] || die "verifier report is not valid: $1"
}

# enclave_memory_mib EIF MINIMUM_MIB: max(MINIMUM_MIB, ceil(@@RATIO@@ x EIF size in MiB)).
enclave_memory_mib() {
  local size needed
  size=$(stat -c %s -- "$1") || die "cannot stat $1"
  needed=$(( (@@RATIO@@ * size + 1048575) / 1048576 ))
  if (( needed > $2 )); then echo "$needed"; else echo "$2"; fi
}

# write_allocator_config MEMORY_MIB CPU_COUNT PATH
write_allocator_config() {
  cat > "$3" <<ALLOCATOR
---
# Written by the trustdial bootstrap: memory = max(configured minimum, @@RATIO@@ x EIF size).
memory_mib: $1
cpu_count: $2
ALLOCATOR
}

# fetch_signing_public_key PEM_PATH: the manifest signing key's public half, from KMS.
fetch_signing_public_key() {
  aws kms get-public-key --key-id "$SIGNING_KEY_ID" --query PublicKey --output text | base64 -d > "$1.der"
  openssl pkey -pubin -inform DER -in "$1.der" -out "$1"
}

# fetch_and_verify_eif: the signed manifest named by `current`, verified; the EIF it names, verified, at $EIF_PATH.
fetch_and_verify_eif() {
  local current signed_uri key version report manifest_sha eif_sha eif_uri eif_key
  current=$(aws ssm get-parameter --name "${PARAMETER_PREFIX}current" --query Parameter.Value --output text)
  [[ $current != unpublished ]] || die "no measurements published yet for ${PARAMETER_PREFIX}current"
  signed_uri=$(json_field signed_manifest <<<"$current")
  key=$(published_key "$signed_uri" "$MEASUREMENTS_BUCKET" 'manifests/[0-9a-f]{96}\.json\.cose')
  version=$(published_version "$signed_uri")
  aws s3api get-object --bucket "$MEASUREMENTS_BUCKET" --key "$key" ${version:+--version-id "$version"} \
    "$WORK_DIR/manifest.json.cose" > /dev/null
  fetch_signing_public_key "$WORK_DIR/signing-key.pem"
  report=$("$TRUSTDIAL_BIN/trustdial-verify" measurements "$WORK_DIR/manifest.json.cose" \
    --public-key "$WORK_DIR/signing-key.pem" --json) || die "signed manifest $key rejected: $report"
  require_valid_report "$report"
  manifest_sha=$(json_field manifest_sha384 <<<"$report")
  [[ $manifest_sha == "$(json_field manifest_sha384 <<<"$current")" ]] \
    || die "the current pointer and the signed manifest disagree on the manifest SHA-384"
  eif_sha=$(json_field manifest.@@EIF_FIELD@@ <<<"$report")
  eif_uri=$(json_field eif <<<"$current")
  eif_key=$(published_key "$eif_uri" "$MEASUREMENTS_BUCKET" 'eifs/[0-9a-f]{96}\.eif')
  [[ $eif_key == "eifs/$eif_sha.eif" ]] \
    || die "current names $eif_key but the signed manifest records eifs/$eif_sha.eif"
  version=$(published_version "$eif_uri")
  aws s3api get-object --bucket "$MEASUREMENTS_BUCKET" --key "$eif_key" ${version:+--version-id "$version"} \
    "$EIF_PATH" > /dev/null
  require_sha384 "$EIF_PATH" "$eif_sha"
  report=$("$TRUSTDIAL_BIN/trustdial-verify" measurements "$WORK_DIR/manifest.json.cose" \
    --public-key "$WORK_DIR/signing-key.pem" --eif "$EIF_PATH" --json) || die "EIF does not match $key: $report"
  require_valid_report "$report"
  log "EIF $eif_sha matches the signed manifest $key (digest, PCRs, arch)"
}
"""

MAIN = r"""
@@WHEEL_INSTALL@@
install_packages() {
  dnf install -y --quiet aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel python3.11 python3.11-pip openssl
  usermod -aG ne ec2-user
}

configure_enclave_services() {
  local memory
  memory=$(enclave_memory_mib "$EIF_PATH" "$ENCLAVE_MIN_MEMORY_MIB")
  write_allocator_config "$memory" "$ENCLAVE_CPU_COUNT" /etc/nitro_enclaves/allocator.yaml
  cat > /etc/nitro_enclaves/vsock-proxy.yaml <<PROXY
allowlist:
- {address: kms.$AWS_REGION.amazonaws.com, port: 443}
PROXY
  cat > /etc/systemd/system/trustdial-kms-proxy.service <<UNIT
[Unit]
Description=trustdial: vsock proxy from the enclave to AWS KMS
After=network-online.target
[Service]
ExecStart=/usr/bin/vsock-proxy $KMS_PROXY_PORT kms.$AWS_REGION.amazonaws.com 443 \\
  --config /etc/nitro_enclaves/vsock-proxy.yaml
Restart=always
[Install]
WantedBy=multi-user.target
UNIT
  cat > /etc/systemd/system/trustdial-credentials.service <<UNIT
[Unit]
Description=trustdial: the instance role's credentials for the enclave (IMDSv2 -> vsock), refreshed before expiry
After=network-online.target
[Service]
ExecStart=@@VENV@@/bin/trustdial host-credentials --listen vsock:$CREDENTIALS_PORT --allow-cid $ENCLAVE_CID
Restart=always
DynamicUser=yes
NoNewPrivileges=yes
[Install]
WantedBy=multi-user.target
UNIT
  cat > /etc/systemd/system/trustdial-enclave.service <<UNIT
[Unit]
Description=trustdial: enclave from the verified EIF
Requires=nitro-enclaves-allocator.service
After=nitro-enclaves-allocator.service trustdial-kms-proxy.service trustdial-credentials.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/nitro-cli run-enclave --eif-path $EIF_PATH \\
  --cpu-count $ENCLAVE_CPU_COUNT --memory $memory --enclave-cid $ENCLAVE_CID
ExecStop=/usr/bin/nitro-cli terminate-enclave --all
[Install]
WantedBy=multi-user.target
UNIT
  cat > /etc/systemd/system/trustdial-gateway.service <<UNIT
[Unit]
Description=trustdial: HTTP gateway to the enclave
Requires=trustdial-enclave.service
After=trustdial-enclave.service
[Service]
Environment=AWS_REGION=$AWS_REGION
ExecStart=@@VENV@@/bin/trustdial gateway \\
  --enclave vsock:$ENCLAVE_CID:$ENCLAVE_VSOCK_PORT --listen 0.0.0.0:$GATEWAY_PORT
Restart=always
DynamicUser=yes
NoNewPrivileges=yes
[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now nitro-enclaves-allocator.service trustdial-kms-proxy.service trustdial-credentials.service
  systemctl enable --now trustdial-enclave.service trustdial-gateway.service
}

mkdir -p "$WORK_DIR"
install_packages
install_trustdial
fetch_and_verify_eif
configure_enclave_services
log "enclave host ready"
"""


def render_host_user_data(settings: HostBootstrapSettings) -> str:
    """The complete user-data script for an enclave host."""
    header = f"""#!/bin/bash
# trustdial enclave host bootstrap (rendered by infra/cdk/host_bootstrap.py).
set -euo pipefail
exec > >(tee -a /var/log/trustdial-bootstrap.log) 2>&1

export AWS_REGION='{settings.region}'
export AWS_DEFAULT_REGION="$AWS_REGION"
readonly MEASUREMENTS_BUCKET='{settings.measurements_bucket}'
readonly SIGNING_KEY_ID='{settings.signing_key_id}'
readonly PARAMETER_PREFIX='{settings.parameter_prefix}'
readonly ENCLAVE_CPU_COUNT={int(settings.enclave_cpu_count)}
readonly ENCLAVE_MIN_MEMORY_MIB={int(settings.enclave_min_memory_mib)}
readonly ENCLAVE_CID={int(settings.enclave_cid)}
readonly ENCLAVE_VSOCK_PORT={int(settings.enclave_vsock_port)}
readonly GATEWAY_PORT={int(settings.gateway_port)}
readonly KMS_PROXY_PORT={KMS_PROXY_PORT}
readonly CREDENTIALS_PORT={CREDENTIALS_PORT}
readonly WORK_DIR=/opt/trustdial
readonly TRUSTDIAL_BIN={HOST_VENV}/bin
readonly EIF_PATH={EIF_PATH}
"""
    checks = CHECKS.replace("@@RATIO@@", str(MEMORY_TO_EIF_RATIO)).replace("@@EIF_FIELD@@", MANIFEST_EIF_SHA384_FIELD)
    main = (
        MAIN.replace("@@WHEEL_INSTALL@@", wheel_install_snippet(settings.measurements_bucket, Role.HOST))
        .replace("@@VENV@@", HOST_VENV)
        .replace("@@EIF_FIELD@@", MANIFEST_EIF_SHA384_FIELD)
    )
    return f"{header}\n{CHECKS_BEGIN}{checks}{CHECKS_END}\n{main}"


def extract_checks(script: str) -> str:
    """The function-only block of a rendered script (what tests source)."""
    start = script.index(CHECKS_BEGIN)
    end = script.index(CHECKS_END, start)
    return script[start:end]
