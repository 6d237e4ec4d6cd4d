"""Composite (hybrid) evidence: a pipeline policy that assigns each model segment a trust mode,
and composite receipts whose steps are checked one by one and linked by tensor commitments.

Public surface: :mod:`trustdial_verifier._internal.composite.policy` (the pipeline policy, its modes and hash),
:mod:`trustdial_verifier._internal.composite.receipt` (the composite receipt document),
:mod:`trustdial_verifier._internal.composite.verify` (the one entry point), and the checks it runs:
``structure`` (before any evidence: policy pin, step order, modes, nonces, boundary records), the evidence checkers
``evidence_tee`` / ``evidence_zk`` (producing ``evidence.VerifiedEvidence``), ``links`` (the verified facts of all
steps together) with ``step_checks`` and ``agreement``; ``manifest_facts``, ``nonce``, ``options`` and ``report`` hold
the inputs and outputs of those checks.
"""
