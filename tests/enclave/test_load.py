"""Load: 32 concurrent verifying clients x 200 requests through gateway and enclave server on
loopback; zero failures, every receipt verified (the client returns nothing unverified)."""

from __future__ import annotations

import threading

import numpy as np
from trustdial_verifier._internal.client import Client
from trustdial_verifier._internal.tensors import Tensor
from trustdial_verifier.errors import InputError, VerificationError

from enclave.live_service import LiveService

CLIENTS = 32
REQUESTS = 200


def test_32_clients_x_200_requests_all_verified(live: LiveService) -> None:
    verified: list[int] = []
    failures: list[Exception] = []
    seqs: list[int] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        x = Tensor.from_array(np.full((1, 16), index, np.float32))
        try:
            with Client(live.url, live.expected()) as client:
                mine = [client.infer("mlp", {"x": x}).statement.seq for _ in range(REQUESTS)]
            with lock:
                verified.append(len(mine))
                seqs.extend(mine)
        except (VerificationError, InputError, OSError) as err:  # anything else also fails the count below
            with lock:
                failures.append(err)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert failures == []
    assert sum(verified) == CLIENTS * REQUESTS
    assert len(set(seqs)) == CLIENTS * REQUESTS  # every response has its own sequence number
