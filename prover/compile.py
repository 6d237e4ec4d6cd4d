"""``trustdial zk compile``: model + calibration -> settings, circuit, keys, SRS and artifacts.json."""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

from trustdial_verifier.unstable.proof import (
    SRS_KIND_CEREMONY,
    SRS_KIND_DEV,
    ArtifactFile,
    Artifacts,
    sha256_file,
    write_artifacts,
)

from prover import ezkl_api
from prover.circuit_settings import CircuitOptions, write_settings
from prover.console import ezkl_prints_to_stderr, progress, ticking
from prover.errors import ProverError
from prover.srs_files import check_ceremony_srs, generate_dev_srs
from prover.tune import tune

MODEL_FILE = "model.onnx"
CALIBRATION_FILE = "calibration.json"
SETTINGS_FILE = "settings.json"
COMPILED_FILE = "network.compiled"
VK_FILE = "vk.key"
PK_FILE = "pk.key"
SRS_FILE = "kzg.srs"
DEFAULT_TOLERANCE = 1e-3


def compile_model(
    model: Path,
    calibration: Path,
    out_dir: Path,
    *,
    srs: Path | None = None,
    dev_srs: bool = False,
    options: CircuitOptions | None = None,
    tune_settings: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Artifacts:
    """Build every artifact needed to prove and verify ``model`` and pin them in ``out_dir/artifacts.json``.

    ``srs`` is a ceremony ``kzg{k}.srs`` (checked against the known digests) unless ``dev_srs``
    is set, in which case ``srs`` may name a previously generated dev SRS to reuse, and if absent a
    new insecure one is generated. With ``tune_settings`` the decomposition is searched (see
    ``prover.tune``) for the smallest circuit whose outputs stay within ``tolerance`` of onnxruntime.
    """
    if srs is None and not dev_srs:
        raise ProverError("SRS_REQUIRED", "pass a ceremony SRS file (--srs) or ask for an insecure dev SRS (--dev-srs)")
    options = options or CircuitOptions()
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, out_dir / MODEL_FILE)
    shutil.copyfile(calibration, out_dir / CALIBRATION_FILE)
    model_path, calibration_path = out_dir / MODEL_FILE, out_dir / CALIBRATION_FILE

    if tune_settings:
        options, _ = tune(model_path, calibration_path, options, tolerance=tolerance)
    settings_path = out_dir / SETTINGS_FILE
    with ticking("zk compile", "settings + calibration"):
        settings = write_settings(model_path, calibration_path, settings_path, options)
    logrows = int(settings["run_args"]["logrows"])
    progress("zk compile", f"logrows={logrows} rows={settings.get('num_rows')}")
    compiled = out_dir / COMPILED_FILE
    try:
        ezkl_api.compile_circuit(model_path, compiled, settings_path)
    except RuntimeError as err:
        raise ProverError("COMPILE_FAILED", f"ezkl could not compile {model}: {err}") from err

    srs_path = out_dir / SRS_FILE
    if dev_srs:
        if srs is not None:
            shutil.copyfile(srs, srs_path)
        else:
            generate_dev_srs(srs_path, logrows)
        kind = SRS_KIND_DEV
    else:
        assert srs is not None
        check_ceremony_srs(srs, logrows)
        shutil.copyfile(srs, srs_path)
        kind = SRS_KIND_CEREMONY

    vk, pk = out_dir / VK_FILE, out_dir / PK_FILE
    with ticking("zk compile", f"key setup (logrows={logrows})"), ezkl_prints_to_stderr():
        try:
            ezkl_api.setup(compiled, vk, pk, srs_path)
        except RuntimeError as err:
            raise ProverError(
                "SETUP_FAILED", f"ezkl setup failed (is the SRS large enough for k={logrows}?): {err}"
            ) from err

    files = {
        role: ArtifactFile(path=path.name, sha256=sha256_file(path))
        for role, path in (
            ("model", model_path),
            ("settings", settings_path),
            ("compiled_circuit", compiled),
            ("vk", vk),
            ("pk", pk),
            ("srs", srs_path),
        )
    }
    artifacts = Artifacts(
        ezkl_version=importlib.metadata.version("ezkl"),
        srs_kind=kind,
        input_visibility=options.input_visibility,
        output_visibility=options.output_visibility,
        param_visibility="fixed",
        logrows=logrows,
        input_scale=int(settings["model_input_scales"][0]),
        output_scale=int(settings["model_output_scales"][0]),
        files=files,
    )
    write_artifacts(out_dir, artifacts)
    progress("zk compile", f"wrote {out_dir / 'artifacts.json'} (srs {kind})")
    return artifacts
