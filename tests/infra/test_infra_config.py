"""Synth inputs are validated before any CDK code runs: PCRs, instance types, the config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from infra_testkit import CURRENT_PCRS, NEXT_PCRS

from infra.cdk.config import DeploymentConfig, load_config
from infra.cdk.errors import InfraConfigError
from infra.cdk.instance_types import require_enclave_capable
from infra.cdk.pcrs import DEVELOPMENT_PCRS, EnclavePcrs, validate_pcr

HEX = "0123456789abcdef"


@given(st.text(alphabet=HEX, min_size=96, max_size=96).filter(lambda s: s != "0" * 96))
def test_any_96_lowercase_hex_pcr_is_accepted(value: str) -> None:
    assert validate_pcr("pcr0", value) == value


@given(st.text(alphabet=HEX, min_size=96, max_size=96), st.integers(min_value=0, max_value=95))
def test_pcr_with_an_uppercase_digit_is_refused(value: str, position: int) -> None:
    mutated = value[:position] + "A" + value[position + 1 :]
    with pytest.raises(InfraConfigError) as caught:
        validate_pcr("pcr1", mutated)
    assert caught.value.code == "BAD_PCR"


@pytest.mark.parametrize("value", ["", "ab" * 47, "ab" * 49, "g" * 96, "0x" + "a" * 94, None, 12])
def test_pcr_of_wrong_shape_is_refused(value: object) -> None:
    with pytest.raises(InfraConfigError) as caught:
        validate_pcr("pcr2", value)
    assert caught.value.code == "BAD_PCR"


def test_debug_mode_all_zero_pcr_is_refused() -> None:
    with pytest.raises(InfraConfigError) as caught:
        EnclavePcrs(pcr0="0" * 96, pcr1=CURRENT_PCRS["pcr1"], pcr2=CURRENT_PCRS["pcr2"])
    assert caught.value.code == "DEBUG_PCR"


def test_development_default_is_marked_and_distinct_per_pcr() -> None:
    config = DeploymentConfig()
    assert config.uses_development_pcrs
    assert len({DEVELOPMENT_PCRS.pcr0, DEVELOPMENT_PCRS.pcr1, DEVELOPMENT_PCRS.pcr2}) == 3


@pytest.mark.parametrize(
    "instance_type",
    [
        "m5.xlarge",
        "m6i.xlarge",
        "c6a.2xlarge",
        "r7i.48xlarge",
        "m5zn.6xlarge",
        "c7g.large",
        "m6gd.xlarge",
        "i4i.xlarge",
    ],
)
def test_enclave_capable_instance_types_are_accepted(instance_type: str) -> None:
    assert require_enclave_capable(instance_type).family == instance_type.split(".")[0]


@pytest.mark.parametrize(
    "instance_type",
    [
        "t3.xlarge",  # burstable
        "m5.large",  # Intel with 2 vCPUs
        "c6a.large",  # AMD with 2 vCPUs
        "c7g.medium",  # Graviton with 1 vCPU
        "m4.xlarge",  # Xen, not Nitro
        "a1.xlarge",  # first-generation Graviton
        "m6i.metal",  # bare metal
        "mac1.metal",
        "m7i-flex.xlarge",
        "p4d.24xlarge",  # not in the validated families
    ],
)
def test_non_enclave_instance_types_are_refused_with_a_clear_error(instance_type: str) -> None:
    with pytest.raises(InfraConfigError) as caught:
        require_enclave_capable(instance_type)
    assert caught.value.code == "NOT_ENCLAVE_CAPABLE"
    assert instance_type in caught.value.reason
    assert "m6i.xlarge" in caught.value.reason  # says what to use instead


@pytest.mark.parametrize("instance_type", ["xlarge", "m6i", "m6i.huge", "M6I.XLARGE"])
def test_unparseable_instance_type_is_refused(instance_type: str) -> None:
    with pytest.raises(InfraConfigError) as caught:
        require_enclave_capable(instance_type)
    assert caught.value.code in {"BAD_INSTANCE_TYPE", "NOT_ENCLAVE_CAPABLE"}


def test_config_with_non_enclave_instance_type_is_refused() -> None:
    with pytest.raises(InfraConfigError) as caught:
        DeploymentConfig(enclave_instance_type="t3.micro")
    assert caught.value.code == "NOT_ENCLAVE_CAPABLE"


def test_config_file_with_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"enclave_instance_typ": "m6i.xlarge"}))
    with pytest.raises(InfraConfigError) as caught:
        load_config({"config": str(path)})
    assert caught.value.code == "BAD_CONFIG"
    assert "enclave_instance_typ" in caught.value.reason


def test_missing_config_file_is_an_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(InfraConfigError) as caught:
        load_config({"config": str(tmp_path / "absent.json")})
    assert caught.value.code == "CONFIG_UNREADABLE"


def test_context_pcrs_override_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"deployment": "prod", "pcrs": [CURRENT_PCRS]}))
    config = load_config({"config": str(path), "pcrs": json.dumps([NEXT_PCRS])})
    assert config.deployment == "prod"
    assert config.pcrs == (EnclavePcrs(**NEXT_PCRS),)
    assert not config.uses_development_pcrs


def test_pcr_file_from_context_is_read(tmp_path: Path) -> None:
    path = tmp_path / "pcrs.json"
    path.write_text(json.dumps(CURRENT_PCRS))
    assert load_config({"pcrs": str(path)}).pcrs == (EnclavePcrs(**CURRENT_PCRS),)


def test_pcr_set_missing_pcr2_is_refused() -> None:
    incomplete = {"pcr0": CURRENT_PCRS["pcr0"], "pcr1": CURRENT_PCRS["pcr1"]}
    with pytest.raises(InfraConfigError) as caught:
        load_config({"pcrs": json.dumps([incomplete])})
    assert caught.value.code == "BAD_CONFIG"


def test_more_than_two_pcr_sets_are_refused() -> None:
    with pytest.raises(InfraConfigError) as caught:
        DeploymentConfig(pcrs=(EnclavePcrs(**CURRENT_PCRS),) * 3)
    assert caught.value.code == "BAD_CONFIG"


@pytest.mark.parametrize("deployment", ["", "Prod", "1st", "a-very-long-name", "dev_1"])
def test_bad_deployment_name_is_refused(deployment: str) -> None:
    with pytest.raises(InfraConfigError) as caught:
        DeploymentConfig(deployment=deployment)
    assert caught.value.code == "BAD_CONFIG"


def test_odd_enclave_cpu_count_is_refused() -> None:
    with pytest.raises(InfraConfigError) as caught:
        DeploymentConfig(enclave_cpu_count=3)
    assert caught.value.code == "BAD_CONFIG"


IMPORTED = {
    "vpc_id": "vpc-0123456789abcdef0",
    "vpc_cidr": "172.31.0.0/16",
    "private_subnet_ids": ("subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"),
    "vpc_availability_zones": ("eu-west-1a", "eu-west-1b"),
}


def test_imported_vpc_from_ids_is_accepted() -> None:
    assert DeploymentConfig(**IMPORTED).vpc_id == IMPORTED["vpc_id"]


@pytest.mark.parametrize(
    "change",
    [
        {"vpc_id": "vpc-XYZ"},
        {"private_subnet_ids": ("subnet-0aaaaaaaaaaaaaaa1",), "vpc_availability_zones": ("eu-west-1a",)},
        {"vpc_availability_zones": ("eu-west-1a", "eu-west-1a")},
        {"private_subnet_ids": ("subnet-0aaaaaaaaaaaaaaa1", "sg-0bbbbbbbbbbbbbbb2")},
        {"vpc_cidr": "8.8.0.0/16"},
        {"vpc_cidr": "10.0.0.0/28"},
        {"vpc_cidr": "not a cidr"},
    ],
)
def test_inconsistent_imported_vpc_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(InfraConfigError) as caught:
        DeploymentConfig(**{**IMPORTED, **change})  # type: ignore[arg-type]
    assert caught.value.code == "BAD_CONFIG"


def test_subnets_without_vpc_id_are_refused() -> None:
    with pytest.raises(InfraConfigError) as caught:
        DeploymentConfig(private_subnet_ids=IMPORTED["private_subnet_ids"])  # type: ignore[arg-type]
    assert caught.value.code == "BAD_CONFIG"


def test_imported_vpc_lists_from_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**IMPORTED, "private_subnet_ids": list(IMPORTED["private_subnet_ids"])}))
    config = load_config({"config": str(path)})
    assert config.private_subnet_ids == IMPORTED["private_subnet_ids"]
