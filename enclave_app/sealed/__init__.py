"""Sealed models: weights under a data key only an attested enclave can unwrap (docs/sealed-models.md)."""
