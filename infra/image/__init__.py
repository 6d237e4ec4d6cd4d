"""Reproducible enclave image build: EIF writer, linuxkit-compatible ramdisks, Docker layer
application, pinned AWS blobs, and the ``trustdial eif`` command group."""
