"""Receipt signing inside the enclave: the receipt key and the micro-batch sealer."""
