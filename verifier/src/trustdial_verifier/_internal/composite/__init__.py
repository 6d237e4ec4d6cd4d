"""Composite (hybrid) evidence: a pipeline policy that assigns each model segment a trust mode,
and composite receipts whose steps are checked one by one and linked by tensor commitments.

Public surface: :mod:`trustdial_verifier._internal.composite.policy` (the pipeline policy, its modes and hash),
:mod:`trustdial_verifier._internal.composite.receipt` (the composite receipt document),
:mod:`trustdial_verifier._internal.composite.chain` (the link and policy checks over verified steps).
"""
