"""Load on `resdropnet serve` over 127.0.0.1: requests/s and p50/p99 latency at several concurrencies.

    python benchmarks/serve_load.py [--seconds 60] [--concurrency 1,8,32] [--workers 1]

Each request posts one 640x480 JPEG with one face to /v1/predict. The server runs in its own process;
the load comes from an asyncio client in this one (both share the machine's cores).
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402
from inference import one_face_photo, test_faces  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "resdropnet", "serve", "--port", str(port), "--workers",
                                str(workers), "--log-level", "warning"], env=os.environ.copy())
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start")


async def load(base: str, photo: bytes, concurrency: int, seconds: float) -> dict:
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def user(client: httpx.AsyncClient):
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                response = await client.post(f"{base}/v1/predict", files={"file": ("face.jpg", photo, "image/jpeg")})
                ok = response.status_code == 200 and len(response.json()["faces"]) == 1
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - started) * 1000)
            errors += not ok

    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await asyncio.gather(*(user(client) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"concurrency": concurrency, "seconds": elapsed, "requests": len(latencies), "errors": errors,
            "requests_per_s": len(latencies) / elapsed, "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[int(0.99 * (len(latencies) - 1))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    image = one_face_photo(test_faces(64))
    photo = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    process, base = start_server(args.workers)
    try:
        rows = []
        for concurrency in map(int, args.concurrency.split(",")):
            row = asyncio.run(load(base, photo, concurrency, args.seconds))
            rows.append(row)
            print(f"concurrency {concurrency}: {row['requests_per_s']:.1f} req/s, p50 {row['p50_ms']:.1f} ms, "
                  f"p99 {row['p99_ms']:.1f} ms, {row['errors']} errors of {row['requests']}")
    finally:
        process.terminate()
        process.wait(timeout=30)
    write_result("serve_load", {"workers": args.workers, "photo_bytes": len(photo), "rows": rows})


if __name__ == "__main__":
    main()
