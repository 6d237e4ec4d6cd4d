"""PCR computation throughput on a generated EIF (>= 256 MiB) against the floor measured in the
same process: plain hashlib SHA-384 over exactly the bytes the PCR definitions require (PCR0's
content, plus PCR2's content which no single hash can share), read with the same 1 MiB chunks.

Usage: python bench/pcr_throughput.py [--mib 272] [--repeat 5] [--record]; the best of the interleaved repeats is
compared.
Progress on stderr; the last stdout line is
one JSON object with mb_per_s, floor_mb_per_s, ratio_to_floor, peak_rss_mb (growth of peak RSS
over the whole run after imports, an upper bound for the PCR pass), plus context fields.
Targets: ratio_to_floor >= 0.8, peak_rss_mb < 64.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from json_line import emit
from trustdial_verifier.unstable.eif import measure_eif

from infra.image.eif_metadata import EifMetadata
from infra.image.eif_writer import write_eif

MIB = 1 << 20
RESULTS = Path(__file__).resolve().parent / "results" / "pcr_throughput.json"


def _write_file(path: Path, mib: int, seed: bytes) -> None:
    block = hashlib.shake_256(seed).digest(MIB)
    with path.open("wb") as out:
        for i in range(mib):
            out.write(block[i % 7 :] + block[: i % 7])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _floor(path: Path, sections: list[tuple[str, int, int]]) -> float:
    """Seconds to SHA-384 the PCR0 content and the PCR2 content of the file, nothing else."""
    start = time.perf_counter()
    pcr0, pcr2 = hashlib.sha384(), hashlib.sha384()
    buffer = bytearray(MIB)
    view = memoryview(buffer)
    ramdisks = 0
    with path.open("rb", buffering=0) as stream:
        for kind, offset, size in sections:
            if kind not in ("kernel", "cmdline", "ramdisk"):
                continue
            later_ramdisk = kind == "ramdisk" and ramdisks > 0
            ramdisks += kind == "ramdisk"
            stream.seek(offset + 12)
            left = size
            while left:
                got = stream.readinto(view[: min(left, MIB)])
                chunk = view[:got]
                pcr0.update(chunk)
                if later_ramdisk:
                    pcr2.update(chunk)
                left -= got
    pcr0.digest(), pcr2.digest()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=272, help="total EIF size in MiB (>= 256)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--record", action="store_true", help=f"also write the JSON line to {RESULTS.name}")
    args = parser.parse_args()
    rss_before = _peak_rss_mb()  # after imports; every later step streams, so growth bounds the PCR pass
    workdir = Path(tempfile.mkdtemp(prefix="trustdial-bench-pcr-"))
    try:
        sys.stderr.write(f"generating a {args.mib} MiB EIF in {workdir}...\n")
        kernel, boot, app = workdir / "kernel", workdir / "boot.cpio", workdir / "app.cpio"
        _write_file(kernel, 8, b"kernel")
        _write_file(boot, 4, b"bootstrap")
        _write_file(app, max(args.mib - 12, 244), b"application")
        eif = workdir / "bench.eif"
        write_eif(eif, kernel=kernel, cmdline=b"console=ttyS0", ramdisks=[boot, app], arch="x86_64",
                  metadata=EifMetadata("bench", "1.0"))  # fmt: skip
        for p in (kernel, boot, app):
            p.unlink()
        size_mb = eif.stat().st_size / 1e6
        sys.stderr.write("warming the page cache...\n")
        layout = [(s.name, s.offset, s.size) for s in measure_eif(eif, file_digests=False).sections]
        ours, floor, with_digests = [], [], []
        for i in range(args.repeat):
            sys.stderr.write(f"round {i + 1}/{args.repeat}\n")
            start = time.perf_counter()
            measure_eif(eif, file_digests=False)
            ours.append(time.perf_counter() - start)
            floor.append(_floor(eif, layout))
            start = time.perf_counter()
            measure_eif(eif, file_digests=True)
            with_digests.append(time.perf_counter() - start)
        peak_growth = _peak_rss_mb() - rss_before
        result = {
            "mb_per_s": round(size_mb / min(ours), 1),
            "floor_mb_per_s": round(size_mb / min(floor), 1),
            "ratio_to_floor": round(min(floor) / min(ours), 3),
            "peak_rss_mb": round(peak_growth, 1),
            "eif_mb": round(size_mb, 1),
            "with_file_digests_mb_per_s": round(size_mb / min(with_digests), 1),
            "repeat": args.repeat,
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "cores": os.cpu_count(),
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        emit(result, RESULTS, args.record)
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
