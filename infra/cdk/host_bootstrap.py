"""User data for an enclave host: install the Nitro CLI and trustdial, fetch the EIF named by the signed
measurement manifest, check the manifest signature and the EIF's SHA-384, size the allocator from the EIF, and run
the enclave, the KMS vsock proxy and the gateway as systemd units. Every step aborts the boot on failure
(``set -euo pipefail``); nothing is started before the EIF is verified.

The block between ``# >>> trustdial checks`` and ``# <<< trustdial checks`` holds only shell functions, so tests can
source it and run the checks against real files.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.cdk.wheel_install import HOST_VENV, wheel_install_snippet

CHECKS_BEGIN = "# >>> trustdial checks"
CHECKS_END = "# <<< trustdial checks"
# Where the signed manifest records the EIF's SHA-384 (docs/measurements.md, issue 3's manifest format).
MANIFEST_EIF_SHA384_FIELD = "eif.sha384"
KMS_PROXY_PORT = 8000
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

# manifest_key_from_current POINTER_JSON: print the content-addressed key manifests/<sha384>.json it names.
manifest_key_from_current() {
  local key
  key=$(grep -oE 'manifests/[0-9a-f]{96}\.json' <<<"$1" | head -n 1 || true)
  [[ -n $key ]] || die "measurements pointer names no manifests/<sha384>.json object (nothing published yet?): '$1'"
  echo "$key"
}

# manifest_version_from_current POINTER_JSON: print the S3 version id it pins, or nothing.
manifest_version_from_current() { grep -oE 'versionId=[A-Za-z0-9._-]+' <<<"$1" | head -n 1 | cut -d= -f2 || true; }

# manifest_field MANIFEST DOTTED.PATH: print the string at that path; abort if absent or not a string.
manifest_field() {
  local value
  value=$(python3 -c '
import json, sys
value = json.load(open(sys.argv[1], encoding="utf-8"))
for part in sys.argv[2].split("."):
    value = value.get(part) if isinstance(value, dict) else None
print(value if isinstance(value, str) else "")
' "$1" "$2") || die "cannot read $1 as JSON"
  [[ -n $value ]] || die "manifest $1 has no string at '$2'"
  echo "$value"
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
"""

MAIN = r"""
@@WHEEL_INSTALL@@
install_packages() {
  dnf install -y --quiet aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel python3.11 python3.11-pip openssl
  usermod -aG ne ec2-user
}

fetch_and_verify_eif() {
  local current key version manifest_sha eif_sha
  current=$(aws ssm get-parameter --name "${PARAMETER_PREFIX}current" --query Parameter.Value --output text)
  key=$(manifest_key_from_current "$current")
  version=$(manifest_version_from_current "$current")
  aws s3api get-object --bucket "$MEASUREMENTS_BUCKET" --key "$key" ${version:+--version-id "$version"} \
    "$WORK_DIR/manifest.json" > /dev/null
  manifest_sha=${key#manifests/}
  require_sha384 "$WORK_DIR/manifest.json" "${manifest_sha%.json}"
  aws kms get-public-key --key-id "$SIGNING_KEY_ID" --query PublicKey --output text \
    | base64 -d > "$WORK_DIR/signing-key.der"
  openssl pkey -pubin -inform DER -in "$WORK_DIR/signing-key.der" -out "$WORK_DIR/signing-key.pem"
  @@VENV@@/bin/trustdial-verify measurements "$WORK_DIR/manifest.json" --public-key "$WORK_DIR/signing-key.pem" \
    || die "measurement manifest $key failed signature verification against $SIGNING_KEY_ID"
  eif_sha=$(manifest_field "$WORK_DIR/manifest.json" @@EIF_FIELD@@)
  aws s3 cp --only-show-errors "s3://$MEASUREMENTS_BUCKET/eifs/$eif_sha.eif" "$EIF_PATH"
  require_sha384 "$EIF_PATH" "$eif_sha"
  log "EIF $eif_sha matches the signed manifest $key"
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
  cat > /etc/systemd/system/trustdial-enclave.service <<UNIT
[Unit]
Description=trustdial: enclave from the verified EIF
Requires=nitro-enclaves-allocator.service
After=nitro-enclaves-allocator.service trustdial-kms-proxy.service
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
  systemctl enable --now nitro-enclaves-allocator.service trustdial-kms-proxy.service
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
readonly WORK_DIR=/opt/trustdial
readonly EIF_PATH={EIF_PATH}
"""
    checks = CHECKS.replace("@@RATIO@@", str(MEMORY_TO_EIF_RATIO))
    main = (
        MAIN.replace("@@WHEEL_INSTALL@@", wheel_install_snippet(settings.measurements_bucket))
        .replace("@@VENV@@", HOST_VENV)
        .replace("@@EIF_FIELD@@", MANIFEST_EIF_SHA384_FIELD)
    )
    return f"{header}\n{CHECKS_BEGIN}{checks}{CHECKS_END}\n{main}"


def extract_checks(script: str) -> str:
    """The function-only block of a rendered script (what tests source)."""
    start = script.index(CHECKS_BEGIN)
    end = script.index(CHECKS_END, start)
    return script[start:end]
