"""Everything of the verifier that is not its public API: no stability promise.

Third parties import `trustdial_verifier` (the public names) and `trustdial_verifier.errors`;
nothing under `_internal` may be relied on across versions."""
