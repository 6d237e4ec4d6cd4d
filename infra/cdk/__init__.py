"""trustdial's AWS CDK constructs and stacks.

Pure-Python modules (no jsii, fast to import and test): ``errors``, ``pcrs``, ``instance_types``, ``config``,
``host_bootstrap``, ``prover_bootstrap``, ``buildspec``. CDK constructs, one per module: ``access_logs``,
``network``, ``measurement_store``, ``enclave_key``, ``enclave_host``, ``prover_fleet``, ``image_build``;
``stacks`` composes them and ``infra/app.py`` is the app entry point.
"""
