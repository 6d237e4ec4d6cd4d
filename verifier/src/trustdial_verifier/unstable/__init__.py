"""The verifier's encoders and decoders for trustdial's own packages. UNSTABLE: no compatibility promise.

The enclave (``enclave_app``), the prover, the infrastructure code, the operator CLI (``trustdial``) and the
benchmarks produce the evidence this verifier checks, so they need its canonical encodings, strict decoders,
COSE_Sign1 builder, bundle and manifest builders and model types, byte for byte. They import them from here and
never from ``trustdial_verifier._internal`` (a test in tests/ fails if they do).

Nothing here is part of the verifier's public API. Names may be renamed, moved or removed in any release,
without deprecation. Third parties use ``trustdial_verifier`` and ``trustdial_verifier.errors`` only.

One submodule per kind of evidence:

- :mod:`~trustdial_verifier.unstable.attestation`: verifying attestation documents (the enclave's own client use)
- :mod:`~trustdial_verifier.unstable.cli`: the shared argument parser
- :mod:`~trustdial_verifier.unstable.client`: the verifying enclave client
- :mod:`~trustdial_verifier.unstable.composite`: composite receipt policies and formats
- :mod:`~trustdial_verifier.unstable.cose`: COSE_Sign1 encoding for signers
- :mod:`~trustdial_verifier.unstable.decoding`: strict CBOR and JSON decoders for untrusted input
- :mod:`~trustdial_verifier.unstable.eif`: EIF layout and measurement
- :mod:`~trustdial_verifier.unstable.llm`: LLM bundles, requests and statements
- :mod:`~trustdial_verifier.unstable.measurements`: measurement manifests and their signed form
- :mod:`~trustdial_verifier.unstable.proof`: ezkl artifacts, tensor files, quantization
- :mod:`~trustdial_verifier.unstable.receipts`: receipt models, encodings and seals
- :mod:`~trustdial_verifier.unstable.tensors`: canonical tensor encoding and commitment
"""
