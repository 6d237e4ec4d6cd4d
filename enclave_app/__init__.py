"""What runs inside the Nitro enclave (NSM access, inference server, receipts) and the
host-side gateway in front of it."""
