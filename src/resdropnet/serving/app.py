"""The HTTP service: FastAPI app with the model loaded once per worker and inference off the event loop.

Settings come from RESDROPNET_* environment variables so that every uvicorn worker sees the same ones.
"""

import json
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from pathlib import Path

import anyio
from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.formparsers import MultiPartParser

import resdropnet
from resdropnet.images import ImageError, decode_image, sniff_format
from resdropnet.labels import EMOTIONS
from resdropnet.serving.limits import BodySizeLimit
from resdropnet.weights import is_shipped_name, shipped_folder

STATIC = Path(__file__).parent / "static"


@dataclass
class Settings:
    weights: str = "default"
    detector: str = "haar"
    backend: str = "auto"
    max_upload_bytes: int = 10 * 2**20
    max_pixels: int = 40_000_000
    max_batch: int = 16
    timeout_s: float = 30.0
    threads: int = 0

    @classmethod
    def from_env(cls) -> "Settings":
        values = {}
        for f in fields(cls):
            raw = os.environ.get(f"RESDROPNET_{f.name.upper()}")
            if raw is not None:
                values[f.name] = type(getattr(cls, f.name))(raw)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        return {f"RESDROPNET_{f.name.upper()}": str(getattr(self, f.name)) for f in fields(self)}


class FaceOut(BaseModel):
    box: list[int] = Field(description="x, y, width, height in pixels of the uploaded image")
    detection_score: float
    emotion: str = Field(description=f"the most probable of {', '.join(EMOTIONS)}")
    confidence: float
    probabilities: dict[str, float]


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
    private_test_accuracy: float | None = Field(
        None, description="PrivateTest accuracy of the model as served (this backend, no TTA), from its report")
    metrics: dict


class Problem(BaseModel):
    detail: str


ERRORS = {400: {"model": Problem, "description": "malformed multipart body"},
          413: {"model": Problem, "description": "upload or image too large"},
          415: {"model": Problem, "description": "not an image"},
          422: {"model": Problem, "description": "corrupt or truncated image, or a missing or malformed field"},
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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    body_limit = settings.max_upload_bytes * settings.max_batch + 64 * 1024
    # Uploads stay in memory: Starlette would spool files over 1 MiB to a temporary file on disk. No file
    # can exceed body_limit, which BodySizeLimit enforces before the parser sees the bytes. The setting is
    # Starlette's, process-wide: with several apps in one process the largest limit holds for all.
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, body_limit + 1)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from resdropnet.inference import EmotionRecognizer

        # One inference at a time per worker: onnxruntime already uses every core for one batch, and
        # OpenCV's cascade is not documented as safe to share between threads.
        app.state.inference_slot = anyio.CapacityLimiter(1)
        app.state.recognizer = EmotionRecognizer(settings.weights, detector=settings.detector,
                                                 backend=settings.backend, threads=settings.threads)
        yield

    app = FastAPI(title="resdropnet", version=resdropnet.__version__, lifespan=lifespan,
                  description="Facial expression recognition (FER2013's seven emotions) with ResDropNet.")
    app.add_middleware(BodySizeLimit, max_bytes=body_limit)
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

    async def recognise(request: Request, images: list):
        try:
            with anyio.fail_after(settings.timeout_s):
                # abandon_on_cancel: the timeout answers now; the worker thread finishes in the background.
                return await anyio.to_thread.run_sync(request.app.state.recognizer.predict_many, images,
                                                      abandon_on_cancel=True, limiter=request.app.state.inference_slot)
        except TimeoutError:
            raise HTTPException(504, f"inference took longer than {settings.timeout_s:g} s") from None

    @app.post("/v1/predict", response_model=PredictionOut, responses=ERRORS, summary="Emotions of the faces in one image")
    async def predict(request: Request, file: UploadFile = File(..., description="JPEG, PNG, WebP or BMP")):
        image = decode(await file.read(), file.filename)
        (faces,) = await recognise(request, [image])
        return {"file": file.filename, "width": image.shape[1], "height": image.shape[0],
                "faces": [face.to_dict() for face in faces]}

    @app.post("/v1/predict/batch", response_model=BatchOut, responses=ERRORS,
              summary="Emotions of the faces in several images; a bad file gets its own error")
    async def predict_batch(request: Request, files: list[UploadFile] = File(..., min_length=1)):
        if len(files) > settings.max_batch:
            raise HTTPException(413, f"{len(files)} files, more than the limit of {settings.max_batch}")
        items, images = [], []
        for upload in files:
            try:
                images.append(decode(await upload.read(), upload.filename))
                items.append({"file": upload.filename})
            except HTTPException as error:
                items.append({"file": upload.filename, "error": error.detail})
        results = iter(await recognise(request, images))
        for item, image in zip((i for i in items if "error" not in i), images):
            item.update(width=image.shape[1], height=image.shape[0], faces=[f.to_dict() for f in next(results)])
        return {"results": items}

    @app.get("/healthz", summary="Liveness: the model is loaded")
    async def healthz(request: Request):
        return {"status": "ok", "model_loaded": hasattr(request.app.state, "recognizer")}

    @app.get("/v1/model", response_model=ModelOut, summary="The served model: name, version, labels, measured metrics")
    async def model_info(request: Request):
        recognizer = request.app.state.recognizer
        weights = request.app.state.settings.weights
        name = weights if is_shipped_name(weights) else recognizer.backend.path.stem
        metrics = model_metrics(weights)
        return {"name": name, "version": resdropnet.__version__, "labels": list(EMOTIONS),
                "backend": recognizer.backend.name, "detector": recognizer.detector_name,
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
    return app
