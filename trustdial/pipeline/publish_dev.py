"""Development publication for a split pipeline: build the dev EIF holding the ``tee`` segment
models and sign a measurement manifest pinning its PCRs, every segment's model, the zk
segments' artifacts and the policy hash (``trustdial pipeline publish-dev``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from trustdial_verifier.unstable.composite import MODE_EVIDENCE, MODE_TEE_ZK, PipelinePolicy, policy_sha256
from trustdial_verifier.unstable.proof import load_artifacts

from trustdial.pipeline.dev_image import DevImage, build_dev_image
from trustdial.pipeline.dev_manifest import PublishedManifest, publish_dev_manifest
from trustdial.pipeline.errors import PipelineError
from trustdial.pipeline.run import SplitArtifacts


@dataclass(frozen=True)
class DevPublication:
    image: DevImage
    manifest: PublishedManifest


def publish_dev(policy: PipelinePolicy, split: SplitArtifacts, directory: Path) -> DevPublication:
    document = json.loads((split.directory / "split.json").read_text())
    entries = document["manifest_entries"]
    check_split_fits(policy, document)
    tee_models = {s.name: split.segment_files[s.name] for s in policy.segments if "tee" in MODE_EVIDENCE[s.mode]}
    circuits = {
        s.name: split.zk_dirs[s.name] / load_artifacts(split.zk_dirs[s.name]).files["compiled_circuit"].path
        for s in policy.segments
        if s.mode == MODE_TEE_ZK
    }
    image = build_dev_image(tee_models, directory / "image", circuits=circuits)
    manifest = publish_dev_manifest(
        eif=image.eif,
        blobs={
            "synthetic-kernel": directory / "image" / "synthetic-kernel.bin",
            "synthetic-bootstrap": directory / "image" / "synthetic-bootstrap.cpio",
        },
        models={name: entry["sha256"] for name, entry in entries["models"].items()},
        zk=entries["zk"],
        policy_sha256=policy_sha256(policy),
        directory=directory,
    )
    return DevPublication(image=image, manifest=manifest)


def check_split_fits(policy: PipelinePolicy, split_document: dict[str, object]) -> None:
    """The split's work depends on where the model is cut and which segments need a circuit, not on
    the modes' reasons: a policy that changes only modes (e.g. ``zk`` -> ``tee+zk``) can be published
    from the same split, and the manifest then pins *that* policy. Anything else is refused."""
    segments = split_document.get("segments")
    zk = split_document.get("zk") or []
    assert isinstance(segments, list) and isinstance(zk, list)
    cut = [(s["name"], tuple(s["inputs"]), tuple(s["outputs"])) for s in segments]
    wanted = [(s.name, s.inputs, s.outputs) for s in policy.segments]
    if cut != wanted:
        raise PipelineError(
            "PIPELINE_SPLIT_MISMATCH", f"the split cuts the model as {cut}, the policy as {wanted}: split it again"
        )
    compiled = {z["name"] for z in zk}
    needed = [s.name for s in policy.segments if "zk" in MODE_EVIDENCE[s.mode] and s.name not in compiled]
    if needed:
        raise PipelineError(
            "PIPELINE_ZK_NOT_COMPILED", f"segments {needed} need a circuit: run split with --compile-zk"
        )
