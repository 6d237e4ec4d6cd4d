"""Development publication for a split pipeline: build the dev EIF holding the ``tee`` segment
models and sign a measurement manifest pinning its PCRs, every segment's model, the zk
segments' artifacts and the policy hash (``trustdial pipeline publish-dev``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from verifier.composite.policy import MODE_EVIDENCE, PipelinePolicy

from trustdial.pipeline.dev_image import DevImage, build_dev_image
from trustdial.pipeline.dev_manifest import PublishedManifest, publish_dev_manifest
from trustdial.pipeline.run import SplitArtifacts


@dataclass(frozen=True)
class DevPublication:
    image: DevImage
    manifest: PublishedManifest


def publish_dev(policy: PipelinePolicy, split: SplitArtifacts, directory: Path) -> DevPublication:
    entries = json.loads((split.directory / "split.json").read_text())["manifest_entries"]
    tee_models = {s.name: split.segment_files[s.name] for s in policy.segments if "tee" in MODE_EVIDENCE[s.mode]}
    image = build_dev_image(tee_models, directory / "image")
    manifest = publish_dev_manifest(
        eif=image.eif,
        blobs={
            "synthetic-kernel": directory / "image" / "synthetic-kernel.bin",
            "synthetic-bootstrap": directory / "image" / "synthetic-bootstrap.cpio",
        },
        models={name: entry["sha256"] for name, entry in entries["models"].items()},
        zk=entries["zk"],
        policy_sha256=entries["pipeline_policy_sha256"],
        directory=directory,
    )
    return DevPublication(image=image, manifest=manifest)
