"""Batch inference on a Ray cluster: `resdropnet predict --engine ray` and predict_dataset.

Ray Data streams the inputs' paths through a fixed pool of actors. Each actor loads one EmotionRecognizer (the int8
onnxruntime model for shipped weights, threads_per_worker threads) and runs the single-process code on its batch:
EmotionRecognizer.predict_paths for photos, one video per task. So every record equals what `resdropnet predict`
gives for that file. An actor that dies mid-batch is restarted and its batch run again; records come back once each,
photos in input order, then videos in input order. Needs the ray extra: pip install 'resdropnet[ray]'.
"""

import json
from collections.abc import Iterator
from pathlib import Path

from resdropnet.errors import ResDropNetError
from resdropnet.images import list_images
from resdropnet.predictions import is_video, video_record


class SourceError(ResDropNetError, ValueError):
    """A list file or Parquet file of inputs that cannot be used; the message names it."""


def read_path_list(path: str | Path) -> list[str]:
    """The paths or URIs of a list file: one a line; blank lines and lines starting with # are skipped."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as error:
        raise SourceError(f"{path}: cannot read the list ({error.strerror or error})") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def read_parquet_paths(path: str | Path, column: str = "path") -> list[str]:
    """The paths or URIs in one string column of a Parquet file (empty rows skipped)."""
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(str(path))
    except ImportError:
        raise SourceError("reading Parquet needs pyarrow: pip install 'resdropnet[ray]'") from None
    except (OSError, ValueError) as error:
        raise SourceError(f"{path}: cannot read as Parquet ({error})") from None
    if column not in table.column_names:
        raise SourceError(f"{path}: no column {column!r} (it has {', '.join(table.column_names)})")
    return [str(value) for value in table.column(column).to_pylist() if value]


def expand_inputs(paths) -> tuple[list[str], list[dict]]:
    """Photos and videos to predict (folders searched for photos, URIs kept) and the error records of the local
    paths that do not exist, as `resdropnet predict` reports them."""
    found, absent = list_images(paths)
    from resdropnet.inference.recognizer import ImagePrediction

    return [str(p) for p in found], [ImagePrediction.missing(p).to_dict() for p in absent]


class RecognizerWorker:
    """One Ray actor: loads the model once, then predicts batch after batch of paths."""

    def __init__(self, recognizer_options: dict, every: int):
        import cv2

        from resdropnet.inference import EmotionRecognizer

        cv2.setNumThreads(recognizer_options.get("threads", 1))  # detection too keeps to the worker's share of cores
        self.recognizer = EmotionRecognizer(**recognizer_options)
        self.every = every

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        photos = iter(self.recognizer.predict_paths([p for p in paths if not is_video(p)]))
        records = [video_record(self.recognizer, p, self.every) if is_video(p) else next(photos).to_dict()
                   for p in paths]
        return {"record": [json.dumps(record) for record in records]}


def predict_dataset(source: "str | Path | list | ray.data.Dataset", *, address: str | None = None,
                    workers: int | None = None, column: str = "path", batch_size: int = 16,
                    threads_per_worker: int = 1, every: int = 1, progress: bool = False,
                    **recognizer_options: object) -> Iterator[dict]:
    """Predictions for many photos and videos on a Ray cluster, as `predict` records: the photos' in input order,
    then the videos'; missing local paths first, as `predict` reports them.

    Args:
        source: local paths and folders, URIs that pyarrow.fs reads (s3://, gs://, hdfs://, file://), a list of
            them, or a ray.data.Dataset with a string column `column`. A list file or a Parquet column is read
            with read_path_list or read_parquet_paths.
        address: the cluster ("auto", "ray://HOST:10001"); None starts a local one, unless Ray is already
            initialised in this process.
        workers: actors, each with one recognizer; default: the cluster's CPUs / threads_per_worker.
        batch_size: paths per task; a video is always a task of its own.
        threads_per_worker: onnxruntime's threads in each actor (and the CPUs each actor reserves).
        every: analyse every N-th frame of videos.
        **recognizer_options: EmotionRecognizer's arguments (weights, detector, backend, tta, margin); weights
            files must be readable at the same path on every node.

    Raises ResDropNetError for an unusable source; a bad photo or video is a record with its error, never a
    failed job.
    """
    try:
        import ray
    except ImportError:
        raise ResDropNetError("--engine ray needs Ray: pip install 'resdropnet[ray]'") from None
    if isinstance(source, (str, Path)):
        source = [source]
    missing = []
    if not isinstance(source, ray.data.Dataset):
        inputs, missing = expand_inputs(source)
    yield from missing
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=None if address else _local_cpus(workers, threads_per_worker),
                 include_dashboard=False, log_to_driver=False)
    try:
        if isinstance(source, ray.data.Dataset):  # its videos are predicted inside the photos' batches
            # read in full first: reading tasks would otherwise wait for the CPUs that the actors hold
            paths = source.select_columns([column]).rename_columns({column: "path"}).materialize()
            parts = [(paths, batch_size)]
        else:  # a task for each video, so that one long video does not hold up a batch of photos
            parts = [(ray.data.from_items([{"path": p} for p in chosen]), size)
                     for chosen, size in (([p for p in inputs if not is_video(p)], batch_size),
                                          ([p for p in inputs if is_video(p)], 1)) if chosen]
        for dataset, size in parts:
            yield from _run(ray, dataset, size, workers, threads_per_worker, every, progress, recognizer_options)
    finally:
        if started_here:
            ray.shutdown()


def _local_cpus(workers: int | None, threads_per_worker: int) -> int | None:
    return workers * threads_per_worker if workers else None


def _run(ray, dataset, batch_size, workers, threads_per_worker, every, progress, recognizer_options):
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // threads_per_worker)
    options = {"threads": threads_per_worker, **recognizer_options}
    # Ray Data's actor pools restart a dead actor and run its batches again (max_restarts and max_task_retries -1)
    predicted = dataset.map_batches(
        RecognizerWorker, fn_constructor_kwargs={"recognizer_options": options, "every": every},
        batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads_per_worker,
        batch_format="pandas")
    predicted.context.execution_options.preserve_order = True  # this dataset's own copy of the DataContext
    predicted.context.enable_progress_bars = progress
    for batch in predicted.iter_batches(batch_size=None, batch_format="pandas"):
        yield from map(json.loads, batch["record"])
