"""A TCP forwarder standing in for AWS's vsock-proxy: ``python tcp_forwarder.py TARGET_PORT [CAPTURE_FILE]`` listens on
127.0.0.1 (a free port), prints ``{"event": "listening", "address": "tcp:127.0.0.1:PORT"}``, and copies bytes both
ways to 127.0.0.1:TARGET_PORT without looking at them (TLS stays end to end), appending every byte it forwards to
CAPTURE_FILE when given (so tests can show what the host could see)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, capture: Path | None) -> None:
    try:
        while data := await reader.read(65536):
            if capture is not None:
                with capture.open("ab") as handle:
                    handle.write(data)
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(target_port: int, capture: Path | None) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        print(json.dumps({"event": "connection"}), file=sys.stderr, flush=True)
        await asyncio.gather(_pipe(reader, upstream_writer, capture), _pipe(upstream_reader, writer, capture))

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"event": "listening", "address": f"tcp:127.0.0.1:{port}"}), flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None))
