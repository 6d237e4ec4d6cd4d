"""``trustdial model seal``: envelope-encrypt a model for an attested enclave (docs/sealed-models.md)."""
