"""Typed deployment configuration: defaults, a JSON config file, and CDK context overrides.

Sources, later wins: the defaults below; the JSON file named by context ``config`` (keys = field names of
:class:`DeploymentConfig`, PCR sets under ``"pcrs": [{"pcr0": ..., "pcr1": ..., "pcr2": ...}, ...]``); the context
keys ``deployment`` and ``pcrs`` (a path to a JSON file holding the PCR set list, or a JSON string). Unknown keys
are refused so a typo cannot silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.cdk.errors import InfraConfigError
from infra.cdk.instance_types import parse_instance_type, require_enclave_capable
from infra.cdk.pcrs import DEVELOPMENT_PCRS, EnclavePcrs

DEPLOYMENT_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,11}")
VPC_ID_PATTERN = re.compile(r"vpc-[0-9a-f]{8,17}")
SUBNET_ID_PATTERN = re.compile(r"subnet-[0-9a-f]{8,17}")
MAX_PCR_SETS = 2  # current image, plus the next one while rolling forward


@dataclass(frozen=True)
class DeploymentConfig:
    """Everything that varies between deployments. Account and region come from the CDK environment."""

    deployment: str = "dev"
    # Accepted enclave images; the model-weights key decrypts only for an enclave matching one whole set.
    pcrs: tuple[EnclavePcrs, ...] = (DEVELOPMENT_PCRS,)
    enclave_instance_type: str = "m6i.xlarge"
    enclave_hosts_min: int = 1
    enclave_hosts_max: int = 2
    enclave_cpu_count: int = 2
    enclave_min_memory_mib: int = 2048
    enclave_vsock_port: int = 5000
    enclave_cid: int = 16
    gateway_port: int = 8443
    load_balancer_port: int = 443
    prover_instance_type: str = "r6i.2xlarge"
    prover_max_instances: int = 4
    prover_concurrency: int = 1
    prover_backlog_per_instance: int = 2
    prover_job_timeout_minutes: int = 60
    measurement_retention_days: int = 365
    build_compute_type: str = "LARGE"
    availability_zones: int = 2
    # CIDR of the VPC: the new VPC's range, or the imported VPC's (security group rules use it as a literal).
    vpc_cidr: str = "10.40.0.0/16"
    # Import an existing VPC instead of creating one: its id, private subnets (with egress) and their AZs.
    vpc_id: str | None = None
    private_subnet_ids: tuple[str, ...] = ()
    vpc_availability_zones: tuple[str, ...] = ()
    # PERMANENT when true: deny kms:PutKeyPolicy to every principal on the model-weights key. Nobody, including the
    # account root, can ever change its policy again, so the key can never accept a new enclave image's PCRs.
    immutable_key_policy_i_understand_this_is_permanent: bool = False

    def __post_init__(self) -> None:
        if DEPLOYMENT_PATTERN.fullmatch(self.deployment) is None:
            raise InfraConfigError(
                "BAD_CONFIG",
                f"deployment: expected 1-12 characters [a-z0-9-] starting with a letter, found {self.deployment!r}",
            )
        if not 1 <= len(self.pcrs) <= MAX_PCR_SETS:
            raise InfraConfigError(
                "BAD_CONFIG", f"pcrs: expected 1 or {MAX_PCR_SETS} PCR sets (current, next), found {len(self.pcrs)}"
            )
        require_enclave_capable(self.enclave_instance_type)
        parse_instance_type(self.prover_instance_type)
        ranges = {
            "enclave_hosts_min": (0, 100),
            "enclave_hosts_max": (1, 100),
            "enclave_cpu_count": (2, 64),
            "enclave_min_memory_mib": (64, 1024 * 1024),
            "enclave_vsock_port": (1, 65535),
            "enclave_cid": (4, 0xFFFFFFFE),
            "gateway_port": (1024, 65535),
            "load_balancer_port": (1, 65535),
            "prover_max_instances": (1, 1000),
            "prover_concurrency": (1, 64),
            "prover_backlog_per_instance": (1, 10000),
            "prover_job_timeout_minutes": (1, 12 * 60),
            "measurement_retention_days": (1, 36500),
            "availability_zones": (2, 6),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InfraConfigError("BAD_CONFIG", f"{name}: expected an integer in [{low}, {high}], found {value!r}")
        if self.enclave_hosts_min > self.enclave_hosts_max:
            raise InfraConfigError(
                "BAD_CONFIG",
                f"enclave_hosts_min ({self.enclave_hosts_min}) exceeds enclave_hosts_max ({self.enclave_hosts_max})",
            )
        if self.enclave_cpu_count % 2:
            raise InfraConfigError(
                "BAD_CONFIG",
                f"enclave_cpu_count: SMT siblings go together, expected an even number, found {self.enclave_cpu_count}",
            )
        self._validate_network()
        self._validate_immutable_policy()
        if self.build_compute_type not in ("MEDIUM", "LARGE", "X2_LARGE"):
            raise InfraConfigError(
                "BAD_CONFIG",
                f"build_compute_type: expected MEDIUM, LARGE or X2_LARGE, found {self.build_compute_type!r}",
            )

    def _validate_immutable_policy(self) -> None:
        value = self.immutable_key_policy_i_understand_this_is_permanent
        if not isinstance(value, bool):
            raise InfraConfigError(
                "BAD_CONFIG",
                f"immutable_key_policy_i_understand_this_is_permanent: expected true or false, found {value!r}",
            )
        if value and self.uses_development_pcrs:
            raise InfraConfigError(
                "IMMUTABLE_DEVELOPMENT_PCRS",
                "immutable_key_policy_i_understand_this_is_permanent with the DEVELOPMENT placeholder PCRs would make "
                "a key that decrypts for no enclave, forever; pass your image's PCRs first",
            )

    def _validate_network(self) -> None:
        try:
            network = ipaddress.ip_network(self.vpc_cidr)
        except ValueError as error:
            raise InfraConfigError("BAD_CONFIG", f"vpc_cidr: {error}") from error
        if not isinstance(network, ipaddress.IPv4Network) or not network.is_private or network.prefixlen > 24:
            raise InfraConfigError(
                "BAD_CONFIG", f"vpc_cidr: expected a private IPv4 range of /24 or larger, found {self.vpc_cidr!r}"
            )
        if self.vpc_id is None:
            if self.private_subnet_ids or self.vpc_availability_zones:
                raise InfraConfigError(
                    "BAD_CONFIG", "private_subnet_ids and vpc_availability_zones only apply with vpc_id"
                )
            return
        if VPC_ID_PATTERN.fullmatch(self.vpc_id) is None:
            raise InfraConfigError("BAD_CONFIG", f"vpc_id: expected vpc-<hex>, found {self.vpc_id!r}")
        subnets, zones = self.private_subnet_ids, self.vpc_availability_zones
        if len(subnets) < 2 or len(subnets) != len(zones) or len(set(zones)) != len(zones):
            raise InfraConfigError(
                "BAD_CONFIG",
                f"an imported VPC needs at least 2 private subnets, one per distinct availability zone; found "
                f"{len(subnets)} subnets in zones {list(zones)}",
            )
        bad = [subnet for subnet in subnets if SUBNET_ID_PATTERN.fullmatch(subnet) is None]
        if bad:
            raise InfraConfigError("BAD_CONFIG", f"private_subnet_ids: expected subnet-<hex>, found {bad}")

    @property
    def uses_development_pcrs(self) -> bool:
        return DEVELOPMENT_PCRS in self.pcrs

    @property
    def parameter_prefix(self) -> str:
        return f"/trustdial/{self.deployment}/measurements/"


def parse_pcr_sets(value: object, source: str) -> tuple[EnclavePcrs, ...]:
    """A list of ``{"pcr0", "pcr1", "pcr2"}`` objects (a single object is accepted as a one-element list)."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list) or not items:
        raise InfraConfigError("BAD_CONFIG", f"{source}: expected a non-empty list of PCR sets, found {value!r}")
    sets = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"pcr0", "pcr1", "pcr2"}:
            found = sorted(item) if isinstance(item, dict) else item
            raise InfraConfigError(
                "BAD_CONFIG", f"{source}: each PCR set needs exactly pcr0, pcr1, pcr2; found {found!r}"
            )
        sets.append(EnclavePcrs(pcr0=item["pcr0"], pcr1=item["pcr1"], pcr2=item["pcr2"]))
    return tuple(sets)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InfraConfigError("CONFIG_UNREADABLE", f"{what} {str(path)!r}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise InfraConfigError("CONFIG_UNREADABLE", f"{what} {str(path)!r} is not JSON: {error}") from error


def _pcrs_from_context(value: object) -> tuple[EnclavePcrs, ...]:
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith(("[", "{")):
            return parse_pcr_sets(_read_json(Path(text), "PCR file"), f"PCR file {text!r}")
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise InfraConfigError("BAD_CONFIG", f"context pcrs is not valid JSON: {error}") from error
        return parse_pcr_sets(parsed, "context pcrs")
    return parse_pcr_sets(value, "context pcrs")


def config_from_mapping(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(DeploymentConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InfraConfigError("BAD_CONFIG", f"{source}: unknown keys {unknown}; known keys are {sorted(known)}")
    result = dict(values)
    for key in ("private_subnet_ids", "vpc_availability_zones"):
        if isinstance(result.get(key), list):
            result[key] = tuple(result[key])
    if "pcrs" in result:
        result["pcrs"] = parse_pcr_sets(result["pcrs"], f"{source}: pcrs")
    return result


def load_config(context: Mapping[str, Any]) -> DeploymentConfig:
    """Build the configuration from CDK context values (``config``, ``deployment``, ``pcrs``)."""
    values: dict[str, Any] = {}
    config_path = context.get("config")
    if config_path is not None:
        data = _read_json(Path(str(config_path)), "config file")
        if not isinstance(data, dict):
            raise InfraConfigError("BAD_CONFIG", f"config file {config_path!r}: expected a JSON object")
        values.update(config_from_mapping(data, f"config file {config_path!r}"))
    if context.get("deployment") is not None:
        values["deployment"] = str(context["deployment"])
    if context.get("pcrs") is not None:
        values["pcrs"] = _pcrs_from_context(context["pcrs"])
    try:
        return DeploymentConfig(**values)
    except TypeError as error:
        raise InfraConfigError("BAD_CONFIG", str(error)) from error
