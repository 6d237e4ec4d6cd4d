"""Entry point of the short-lived process that proves one job (``python -m prover.prove_child``).

The worker proves in a child process so that it can abandon a proof on shutdown (and release the
message) and so that a prover crash or OOM never takes the worker down. On failure the child
writes ``{"code", "reason"}`` to the error path and exits with status 3.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from trustdial_verifier.errors import InputError, VerificationError
from trustdial_verifier.unstable.proof import load_tensor_file

from prover.errors import ProverError
from prover.prove import prove

EXIT_JOB_FAILED = 3


def main(argv: list[str]) -> int:
    artifacts_dir, input_path, proof_path, error_path = (Path(a) for a in argv)
    try:
        tensor = load_tensor_file(input_path, side="input")
        prove(artifacts_dir, tensor, proof_path)
    except (ProverError, InputError, VerificationError) as err:
        error_path.write_text(json.dumps({"code": err.code, "reason": err.reason}), encoding="utf-8")
        return EXIT_JOB_FAILED
    except OSError as err:
        error_path.write_text(json.dumps({"code": "IO_ERROR", "reason": str(err)}), encoding="utf-8")
        return EXIT_JOB_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
