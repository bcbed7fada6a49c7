"""The HTTP service: FastAPI app with the model loaded once per worker and inference off the event loop.

Settings come from RESDROPNET_* environment variables so that every uvicorn worker sees the same ones.
"""

import json
import os
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path

import anyio
import cv2
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.formparsers import MultiPartParser

import resdropnet
from resdropnet.errors import first_line
from resdropnet.faces import DEFAULT_DETECTOR, smaller_faces_hint
from resdropnet.images import ImageError, declared_size, decode_image, sniff_format
from resdropnet.inference.recognizer import DeadlineExceeded, check_deadline
from resdropnet.labels import EMOTIONS
from resdropnet.serving.limits import PixelBudget, RequestGuard
from resdropnet.weights import is_shipped_name, shipped_folder

STATIC = Path(__file__).parent / "static"


@dataclass
class Settings:
    weights: str = "default"
    detector: str = DEFAULT_DETECTOR
    backend: str = "auto"
    max_upload_bytes: int = 10 * 2**20
    max_pixels: int = 40_000_000  # one image, as its header declares it
    max_request_pixels: int = 50_000_000  # all images of one request
    max_inflight_pixels: int = 80_000_000  # all requests being decoded or classified: about 3 bytes each in memory
    max_inflight_bytes: int = 128 * 2**20  # request bodies being received or processed
    max_batch: int = 16
    timeout_s: float = 30.0  # from the request's start to its answer; work past it stops at the next batch
    body_timeout_s: float = 60.0  # the whole request body must arrive within this
    header_timeout_s: float = 10.0  # read by serving.protocol: request headers must arrive within this
    docs: bool = True  # /docs, Swagger UI served from the package (no CDN)
    threads: int = 0

    @classmethod
    def from_env(cls) -> "Settings":
        values = {}
        for f in fields(cls):
            raw = os.environ.get(f"RESDROPNET_{f.name.upper()}")
            if raw is not None:
                kind = type(getattr(cls, f.name))
                values[f.name] = raw.lower() in ("1", "true", "yes") if kind is bool else kind(raw)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The settings as RESDROPNET_* environment variables, which every uvicorn worker reads."""
        return {f"RESDROPNET_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}


class FaceOut(BaseModel):
    box: list[int] = Field(description="x, y, width, height in pixels of the uploaded image")
    detection_score: float
    emotion: str = Field(description=f"the most probable of {', '.join(EMOTIONS)}")
    confidence: float
    probabilities: dict[str, float]
    landmarks: list[list[float]] | None = Field(
        None, description="[x, y] of the eyes, nose tip and mouth corners, from detectors that give them (centerface)")


class PredictionOut(BaseModel):
    file: str | None
    width: int
    height: int
    faces: list[FaceOut]


class BatchItemOut(BaseModel):
    file: str | None
    width: int | None = None
    height: int | None = None
    faces: list[FaceOut] | None = None
    error: str | None = Field(None, description="why this file was not processed; the others still were")


class BatchOut(BaseModel):
    results: list[BatchItemOut]


class ModelOut(BaseModel):
    name: str
    version: str
    labels: list[str]
    backend: str
    detector: str
    no_face_hint: str = Field("", description="what to try when the detector finds no face in a photo")
    private_test_accuracy: float | None = Field(
        None, description="PrivateTest accuracy of the model as served (this backend, no TTA), from its report")
    metrics: dict


class Problem(BaseModel):
    detail: str


ERRORS = {400: {"model": Problem, "description": "malformed multipart body"},
          408: {"model": Problem, "description": "request body not received within the body timeout"},
          413: {"model": Problem, "description": "upload or image too large"},
          415: {"model": Problem, "description": "not an image"},
          422: {"model": Problem, "description": "corrupt or truncated image, or a missing or malformed field"},
          503: {"model": Problem, "description": "server busy: too many bytes or pixels in flight; retry later"},
          504: {"model": Problem, "description": "inference took longer than the request timeout"}}


def model_metrics(weights: str) -> dict:
    """The measured metrics of a shipped model (from its report.json); empty for other weights."""
    report = shipped_folder(weights) / "report.json" if is_shipped_name(weights) else None
    if report is None or not report.is_file():
        return {}
    data = json.loads(report.read_text())
    metrics = {"model": data.get("model"),
               "private_test_accuracy": {tta: r["accuracy"] for tta, r in data.get("test", {}).items()},
               "public_test_accuracy": {tta: r["accuracy"] for tta, r in data.get("val", {}).items()}}
    if "onnx_int8" in data:
        metrics["onnx_int8"] = {"private_test_accuracy": data["onnx_int8"]["test_accuracy"],
                                "public_test_accuracy": data["onnx_int8"]["val_accuracy"]}
    return metrics


def served_accuracy(metrics: dict, backend: str) -> float | None:
    """PrivateTest accuracy without TTA of what a backend runs: the int8 copy has its own figure."""
    if backend == "onnx-int8":
        return metrics.get("onnx_int8", {}).get("private_test_accuracy")
    return metrics.get("private_test_accuracy", {}).get("none")


class ServerState:
    """What the service holds between requests: the model, its one inference slot, and the pixels in flight."""

    def __init__(self, settings: Settings):
        from resdropnet.inference import EmotionRecognizer

        self.recognizer = EmotionRecognizer(settings.weights, detector=settings.detector, backend=settings.backend,
                                            threads=settings.threads)
        # One inference at a time per worker: onnxruntime already uses every core for one batch, and
        # OpenCV's cascade is not documented as safe to share between threads.
        self.inference_slot = anyio.CapacityLimiter(1)
        self.pixels = PixelBudget(settings.max_inflight_pixels)
        self.running = 0


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI app that `resdropnet serve` runs, for mounting in your own ASGI server.

    settings: the model, detector and limits; by default read from the RESDROPNET_* environment variables.
    Raises ValueError when the pixel limits do not grow from one image to a request to all requests in flight.
    """
    settings = settings or Settings.from_env()
    if not settings.max_pixels <= settings.max_request_pixels <= settings.max_inflight_pixels:
        raise ValueError("pixel limits must grow: max_pixels <= max_request_pixels <= max_inflight_pixels, got "
                         f"{settings.max_pixels:,}, {settings.max_request_pixels:,}, {settings.max_inflight_pixels:,}")
    body_limits = {"/v1/predict": settings.max_upload_bytes + 64 * 1024,
                   "/v1/predict/batch": settings.max_upload_bytes * settings.max_batch + 64 * 1024}
    # Uploads stay in memory: Starlette would spool files over 1 MiB to a temporary file on disk. No file
    # can exceed the largest body limit, which RequestGuard enforces as the bytes arrive. The setting is
    # Starlette's, process-wide: with several apps in one process the largest limit holds for all.
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, max(body_limits.values()) + 1)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.server = ServerState(settings)
        yield

    app = FastAPI(title="resdropnet", version=resdropnet.__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Facial expression recognition (FER2013's seven emotions) with ResDropNet.")
    app.add_middleware(RequestGuard, limit_for=lambda path: body_limits.get(path, 64 * 1024),
                       body_timeout_s=settings.body_timeout_s, max_inflight_bytes=settings.max_inflight_bytes)
    app.state.settings = settings

    def decode(data: bytes, name: str | None):
        if len(data) > settings.max_upload_bytes:
            raise HTTPException(413, f"{name}: {len(data):,} bytes, more than the limit of {settings.max_upload_bytes:,}")
        try:
            return decode_image(data, name or "<upload>", settings.max_pixels)
        except ImageError as error:
            if not data or sniff_format(data) is None:
                raise HTTPException(415, str(error)) from None
            raise HTTPException(413 if "declares" in str(error) else 422, str(error)) from None

    def classify_uploads(server: ServerState, uploads: list[tuple[str | None, bytes]], deadline: float) -> list[dict]:
        """In a worker thread, holding the inference slot: each upload decoded, its faces found and cropped (the
        image dropped), then every face classified in shared batches. A bad upload gets its own error."""
        server.running += 1
        try:
            items, boxes, crops = [], [], []
            for name, data in uploads:
                check_deadline(deadline)
                try:
                    image = decode(data, name)
                    found, face_crops = server.recognizer.detect_and_crop(image)
                except HTTPException as error:
                    items.append({"file": name, "error": error.detail, "status": error.status_code})
                    continue
                except (cv2.error, ValueError, MemoryError) as error:
                    items.append({"file": name, "error": f"{name}: cannot be processed ({first_line(error)})", "status": 422})
                    continue
                items.append({"file": name, "width": image.shape[1], "height": image.shape[0]})
                boxes.append(found)
                crops.append(face_crops)
            faces = iter(server.recognizer.faces_from_crops(boxes, crops, deadline))
            for item in items:
                if "error" not in item:
                    item["faces"] = [face.to_dict() for face in next(faces)]
            return items
        finally:
            server.running -= 1

    async def recognise(request: Request, uploads: list[tuple[str | None, bytes]]) -> list[dict]:
        """Within the request's deadline: room for its pixels, then the inference slot, then the work. The slot
        is held until the work really ends; past the deadline it stops at the next batch and the answer is 504."""
        deadline = time.monotonic() + settings.timeout_s
        pixels = sum(declared_pixels(data, settings.max_pixels) for _name, data in uploads)
        if pixels > settings.max_request_pixels:
            raise HTTPException(413, f"the images of this request declare {pixels:,} pixels, more than the limit of "
                                     f"{settings.max_request_pixels:,} per request")
        server: ServerState = request.app.state.server
        try:
            with anyio.fail_after(settings.timeout_s):
                await server.pixels.acquire(pixels)
        except TimeoutError:
            raise HTTPException(503, f"server busy: no room for {pixels:,} more decoded pixels within "
                                     f"{settings.timeout_s:g} s; retry later") from None
        try:
            return await anyio.to_thread.run_sync(classify_uploads, server, uploads, deadline,
                                                  limiter=server.inference_slot)
        except DeadlineExceeded:
            raise HTTPException(504, f"inference took longer than {settings.timeout_s:g} s") from None
        finally:
            await server.pixels.release(pixels)

    @app.post("/v1/predict", response_model=PredictionOut, responses=ERRORS, summary="Emotions of the faces in one image")
    async def predict(request: Request, file: UploadFile = File(..., description="JPEG, PNG, WebP or BMP")):
        (item,) = await recognise(request, [(file.filename, await file.read())])
        if "error" in item:
            raise HTTPException(item["status"], item["error"])
        return item

    @app.post("/v1/predict/batch", response_model=BatchOut, responses=ERRORS,
              summary="Emotions of the faces in several images; a bad file gets its own error")
    async def predict_batch(request: Request, files: list[UploadFile] = File(..., min_length=1)):
        if len(files) > settings.max_batch:
            raise HTTPException(413, f"{len(files)} files, more than the limit of {settings.max_batch}")
        items = await recognise(request, [(upload.filename, await upload.read()) for upload in files])
        return {"results": [{key: value for key, value in item.items() if key != "status"} for item in items]}

    @app.get("/healthz", summary="Liveness: the model is loaded; inference and decoded pixels in flight")
    async def healthz(request: Request):
        server = getattr(request.app.state, "server", None)
        return {"status": "ok", "model_loaded": server is not None,
                "inference_running": bool(server and server.running), "pixels_in_flight": server.pixels.used if server else 0}

    @app.get("/v1/model", response_model=ModelOut, summary="The served model: name, version, labels, measured metrics")
    async def model_info(request: Request):
        recognizer = request.app.state.server.recognizer
        weights = request.app.state.settings.weights
        name = weights if is_shipped_name(weights) else recognizer.backend.path.stem
        metrics = model_metrics(weights)
        return {"name": name, "version": resdropnet.__version__, "labels": list(EMOTIONS),
                "backend": recognizer.backend.name, "detector": recognizer.detector_name,
                "no_face_hint": smaller_faces_hint(recognizer.detector_name),
                "private_test_accuracy": served_accuracy(metrics, recognizer.backend.name), "metrics": metrics}

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError):
        fields_ = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or 'body'}: {e['msg']}" for e in error.errors())
        return JSONResponse({"detail": f"invalid request: {fields_}"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def problem(_request: Request, error: HTTPException):
        return JSONResponse({"detail": error.detail}, status_code=error.status_code)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if settings.docs:
        add_offline_docs(app)
    return app


def declared_pixels(data: bytes, max_pixels: int) -> int:
    """Pixels an upload will decode to, from its header alone; 0 for what will be refused before decoding."""
    kind = sniff_format(data)
    size = declared_size(data, kind) if kind else None
    return size[0] * size[1] if size and size[0] * size[1] <= max_pixels else 0


def add_offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files served from the swagger-ui-bundle package, so the page works offline."""
    import swagger_ui_bundle
    from fastapi.openapi.docs import get_swagger_ui_html

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title}: API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")
