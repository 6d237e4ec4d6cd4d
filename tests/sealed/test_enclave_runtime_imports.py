"""The sealed-model code runs inside the enclave, whose Python environment is exactly
infra/image/enclave/requirements.lock (no boto3/botocore): importing it, and the host credential server, must
succeed with every other third-party module blocked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LOCK = Path(__file__).resolve().parents[2] / "infra" / "image" / "enclave" / "requirements.lock"

SCRIPT = r"""
import importlib.abc, importlib.metadata, sys
before = set(sys.modules)
locked = set(sys.argv[1].split(","))
# _openssl: registered by cryptography's own Rust extension module
allowed = set(sys.stdlib_module_names) | {"trustdial_verifier", "enclave_app", "_cffi_backend", "_openssl"}
for top, dists in importlib.metadata.packages_distributions().items():
    if any(d.lower().replace("_", "-") in locked for d in dists):
        allowed.add(top)
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in allowed:
            raise ImportError(f"{name} is not in the enclave runtime lock")
        return None
sys.meta_path.insert(0, Block())
for module in sys.argv[2:]:
    __import__(module)
leaked = sorted({m.split(".")[0] for m in set(sys.modules) - before} - allowed)
assert not leaked, leaked
print("ok")
"""

MODULES = [
    "enclave_app.sealed.serve_options",
    "enclave_app.sealed.unseal",
    "enclave_app.sealed.cms",
    "enclave_app.sealed.kms_client",
    "enclave_app.sealed.sigv4",
    "enclave_app.host_credentials",
    "enclave_app.host_credentials_command",
]


def locked_names() -> list[str]:
    names = []
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#") and "==" in line:
            names.append(line.split("==")[0].strip().lower().replace("_", "-"))
    return names


def test_the_lock_has_no_aws_sdk() -> None:
    assert not {"boto3", "botocore"} & set(locked_names())


def test_sealed_model_modules_import_with_only_the_enclave_lock() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, ",".join(locked_names()), *MODULES],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_blocker_does_block_what_the_lock_lacks() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, ",".join(locked_names()), "botocore.auth"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0 and "not in the enclave runtime lock" in done.stderr
