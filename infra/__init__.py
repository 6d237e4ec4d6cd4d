"""AWS CDK app and stacks, and the reproducible enclave image build pipeline."""
