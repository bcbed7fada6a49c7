"""Soak: `resdropnet serve` with its default limits under good, bad, huge and stalled clients for N minutes.

    python benchmarks/soak.py [--minutes 10]

Reports requests served and their status codes per kind of client, p50/p99 latency, the slowest /healthz answer,
and the server's peak resident memory (VmHWM). Everything runs on 127.0.0.1: the server in its own process, the
clients in this one (they share the machine's cores). Clients:

  good     4 users posting a 512x512 photo with one face to /v1/predict (every 5th request: a batch of 3)
  bad      2 users posting non-images, truncated JPEGs, corrupt PNGs, a decompression bomb, a 10000x10 sliver
  huge     1 user posting a 40-Mpixel photo, 16 x 40-Mpixel PNGs in one batch, and a 40 MiB chunked body
  slow     50 connections that send half their headers, or headers and a tenth of the body, then stall
  healthz  GET /healthz every 0.2 s
"""

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import httpx
import numpy as np
from skimage import data as skimage_data

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402
from serve_load import start_server  # noqa: E402

from resdropnet.serving.app import Settings  # noqa: E402


def payloads() -> dict[str, list[tuple[str, bytes]]]:
    photo = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    jpeg = cv2.imencode(".jpg", photo)[1].tobytes()
    png = cv2.imencode(".png", photo)[1].tobytes()
    tiled = np.tile(photo, (13, 12, 1))[:6600, :6000]
    return {
        "good": [("face.jpg", jpeg)],
        "bad": [("notes.jpg", b"plain text, not pixels"), ("cut.jpg", jpeg[: len(jpeg) // 2]),
                ("corrupt.png", png[:100] + bytes(1000) + png[1100:]), ("bomb.png", bomb_png(30000, 30000)),
                ("sliver.png", cv2.imencode(".png", np.full((10, 10000, 3), 90, np.uint8))[1].tobytes())],
        "huge": [("big.jpg", cv2.imencode(".jpg", tiled, [cv2.IMWRITE_JPEG_QUALITY, 60])[1].tobytes()),
                 ("big.png", cv2.imencode(".png", np.zeros((6600, 6000, 3), np.uint8))[1].tobytes())],
    }


def bomb_png(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1024))) + chunk(b"IEND", b"")


class Tally:
    def __init__(self):
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.latencies: dict[str, list[float]] = defaultdict(list)

    async def timed(self, kind: str, request) -> None:
        started = time.perf_counter()
        try:
            response = await request
            self.statuses[kind][str(response.status_code)] += 1
        except httpx.HTTPError as error:
            self.statuses[kind][f"client error: {type(error).__name__}"] += 1
        self.latencies[kind].append((time.perf_counter() - started) * 1000)

    def summary(self) -> dict:
        return {kind: {"requests": sum(counts.values()), "statuses": dict(sorted(counts.items())),
                       **percentiles(self.latencies[kind])} for kind, counts in sorted(self.statuses.items())}


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50_ms": statistics.median(ordered), "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
            "max_ms": ordered[-1]} if ordered else {}


async def good_user(client, base, files, tally, deadline):
    count = 0
    while time.monotonic() < deadline:
        count += 1
        if count % 5:
            await tally.timed("good", client.post(f"{base}/v1/predict", files={"file": files[0]}))
        else:
            await tally.timed("good", client.post(f"{base}/v1/predict/batch", files=[("files", files[0])] * 3))


async def bad_user(client, base, files, tally, deadline, offset):
    count = offset
    while time.monotonic() < deadline:
        count += 1
        await tally.timed("bad", client.post(f"{base}/v1/predict", files={"file": files[count % len(files)]}))


MULTIPART_HEAD = b'--b\r\nContent-Disposition: form-data; name="file"; filename="upload.jpg"\r\n\r\n'


async def huge_user(client, base, files, tally, deadline):
    (big_jpeg, big_png), count = files, 0
    port = int(base.rsplit(":", 1)[1])
    while time.monotonic() < deadline:
        count += 1
        if count % 3 == 1:
            await tally.timed("huge", client.post(f"{base}/v1/predict", files={"file": big_jpeg}))
        elif count % 3 == 2:
            await tally.timed("huge", client.post(f"{base}/v1/predict/batch", files=[("files", big_png)] * 16))
        else:
            started = time.perf_counter()
            tally.statuses["huge"][await chunked_upload(port, 40 * 2**20)] += 1
            tally.latencies["huge"].append((time.perf_counter() - started) * 1000)


async def chunked_upload(port: int, size: int) -> str:
    """A chunked body of size bytes, sent until the server answers; the answer's status (the server stops reading
    at its limit, so a client like httpx that only reads after sending would see a reset instead)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/predict HTTP/1.1\r\nHost: soak\r\ntransfer-encoding: chunked\r\n"
                 b"content-type: multipart/form-data; boundary=b\r\n\r\n")
    answer = asyncio.ensure_future(reader.read(200))
    try:
        for chunk in [MULTIPART_HEAD] + [b"\xff" * 2**20] * (size // 2**20):
            if answer.done():
                break
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        first = await asyncio.wait_for(answer, timeout=60)
        return first.split(b" ", 2)[1].decode() if first.startswith(b"HTTP/1.1 ") else "closed without answer"
    except ConnectionResetError:  # the server closed on the unread rest of the body after answering 413
        return "reset after the limit"
    except (OSError, asyncio.TimeoutError) as error:
        return f"client error: {type(error).__name__}"
    finally:
        answer.cancel()
        writer.close()


async def stalled_client(port: int, tally: Tally, deadline: float, body: bool) -> None:
    request = (b"POST /v1/predict HTTP/1.1\r\nHost: soak\r\ncontent-type: multipart/form-data; boundary=b\r\n"
               b"content-length: 100000\r\n\r\n" + MULTIPART_HEAD + b"\xff" * 10000) if body else b"POST /v1/predict HTTP/1.1\r\nHost: so"
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), timeout=max(1.0, deadline - time.monotonic() + 120))
            status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "closed without answer"
            writer.close()
        except (OSError, asyncio.TimeoutError) as error:
            status = f"client error: {type(error).__name__}"
        kind = "slow body" if body else "slow headers"
        tally.statuses[kind][status] += 1
        tally.latencies[kind].append((time.perf_counter() - started) * 1000)


async def probe_health(client, base, deadline, latencies: list[float], pid: int, memory: list[int]):
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            ok = (await client.get(f"{base}/healthz", timeout=30)).status_code == 200
        except httpx.HTTPError:
            ok = False
        latencies.append((time.perf_counter() - started) * 1000 if ok else float("inf"))
        memory.append(resident_kib(pid, "VmRSS"))
        await asyncio.sleep(0.2)


def resident_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


async def soak(base: str, pid: int, seconds: float) -> dict:
    files, tally, health, memory = payloads(), Tally(), [], []
    deadline = time.monotonic() + seconds
    port = int(base.rsplit(":", 1)[1])
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as client:
        tasks = [good_user(client, base, files["good"], tally, deadline) for _ in range(4)]
        tasks += [bad_user(client, base, files["bad"], tally, deadline, offset) for offset in range(2)]
        tasks += [huge_user(client, base, files["huge"], tally, deadline)]
        tasks += [stalled_client(port, tally, deadline, body=index % 5 == 0) for index in range(50)]
        tasks += [probe_health(client, base, deadline, health, pid, memory)]
        started = time.perf_counter()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    kinds = tally.summary()
    server_errors = sum(n for kind in kinds.values() for status, n in kind["statuses"].items() if status.startswith("5"))
    return {"seconds": elapsed, "clients": kinds, "server_errors_5xx": server_errors,
            "healthz": {"requests": len(health), **percentiles(health)},
            "peak_rss_mib": resident_kib(pid, "VmHWM") / 1024, "rss_mib_at_end": memory[-1] / 1024 if memory else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    process, base = start_server(workers=1)
    try:
        result = asyncio.run(soak(base, process.pid, args.minutes * 60))
    finally:
        process.terminate()
        process.wait(timeout=30)
    defaults = Settings()
    result["limits"] = {name: getattr(defaults, name) for name in (
        "max_upload_bytes", "max_pixels", "max_request_pixels", "max_inflight_pixels", "max_inflight_bytes", "max_batch",
        "timeout_s", "body_timeout_s", "header_timeout_s")}
    for kind, row in result["clients"].items():
        print(f"{kind:>12}: {row['requests']:>6,} requests {row['statuses']}, p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms")
    print(f"5xx: {result['server_errors_5xx']}; /healthz worst {result['healthz']['max_ms']:.0f} ms over "
          f"{result['healthz']['requests']:,} probes; peak RSS {result['peak_rss_mib']:.0f} MiB")
    write_result("soak", {"minutes": args.minutes, **result})


if __name__ == "__main__":
    main()
