"""Prediction records, the same whichever engine made them, and their writers: JSON, JSON Lines, CSV or Parquet.

A record is what `resdropnet predict` prints for one input: an image's {"file", "width", "height", "faces"}, a
video's {"file", "video"} (its summary and the faces of each analysed frame), or {"file", "error"}.
"""

import json
import shutil
import sys
import tempfile
import textwrap
from contextlib import contextmanager
from pathlib import Path

from resdropnet.errors import ResDropNetError, first_line
from resdropnet.images import FILE_FAILURES, failure_message, is_uri
from resdropnet.labels import EMOTIONS

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
FORMATS = ("json", "jsonl", "csv", "parquet")
CSV_HEADER = ["file", "face", "x", "y", "w", "h", "emotion", "confidence", *EMOTIONS]


def is_video(path) -> bool:
    return str(path).lower().endswith(VIDEO_SUFFIXES)


def video_record(recognizer, path, every: int = 1) -> dict:
    """A video's record: its summary and, for each analysed frame, the faces with their track ids."""
    try:
        with local_copy(path) as local:
            analysis = recognizer.predict_video(local, every=every)
    except FILE_FAILURES as error:
        return {"file": str(path), "error": failure_message(path, error)}
    frames = [{"frame": f.frame, "timestamp_s": round(f.timestamp, 3),
               "faces": [{"track": track, **face.to_dict()} for track, face in zip(f.tracks, f.faces)]}
              for f in analysis.frames]
    return {"file": str(path), "video": {**analysis.summary(), "frames": frames}}


@contextmanager
def local_copy(path):
    """A local path to read the file from: path itself, or for a URI a temporary copy made through pyarrow.fs
    (OpenCV reads videos from local files only)."""
    if not is_uri(path):
        yield str(path)
        return
    try:
        from pyarrow import fs

        filesystem, inside = fs.FileSystem.from_uri(path)
        with tempfile.NamedTemporaryFile(suffix=Path(inside).suffix) as copy:
            with filesystem.open_input_stream(inside) as stream:
                shutil.copyfileobj(stream, copy)
            copy.flush()
            yield copy.name
    except ImportError:
        raise ResDropNetError(f"{path}: reading URIs needs pyarrow: pip install 'resdropnet[ray]'") from None
    except OSError as error:  # pyarrow's errors for missing files, unknown schemes, denied access
        raise ResDropNetError(f"{path}: cannot read ({first_line(error)})") from None


class PredictionWriter:
    """Writes records one at a time, so that a million-photo run never holds them all.

    fmt: json (one array), jsonl (a record a line), csv (a row a face; videos are left out and counted in
    videos_left_out) or parquet (a row a record, needs pyarrow). path None writes to stdout (not parquet).
    """

    def __init__(self, fmt: str, path: str | Path | None = None):
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
        if fmt == "parquet" and path is None:
            raise ResDropNetError("--format parquet writes a file: give --out")
        self.fmt, self.path, self.count, self.videos_left_out = fmt, path, 0, 0
        self._parquet_rows, self._parquet_writer = [], None
        if fmt != "parquet":
            self._handle = open(path, "w", newline="") if path is not None else sys.stdout
        if fmt == "csv":
            import csv

            self._csv = csv.writer(self._handle)
            self._csv.writerow(CSV_HEADER)
        elif fmt == "json":
            self._handle.write("[")

    def write(self, record: dict) -> None:
        """Appends one record."""
        getattr(self, f"_write_{self.fmt}")(record)
        self.count += 1

    def _write_json(self, record: dict) -> None:
        # the same text as json.dump(all_records, indent=2), one record at a time
        self._handle.write(("," if self.count else "") + "\n" + textwrap.indent(json.dumps(record, indent=2), "  "))

    def _write_jsonl(self, record: dict) -> None:
        self._handle.write(json.dumps(record) + "\n")

    def _write_csv(self, record: dict) -> None:
        if "video" in record:
            self.videos_left_out += 1
        for index, face in enumerate(record.get("faces", [])):
            self._csv.writerow([record["file"], index, *face["box"], face["emotion"], face["confidence"],
                                *(face["probabilities"][e] for e in EMOTIONS)])

    def _write_parquet(self, record: dict) -> None:
        self._parquet_rows.append({"file": record["file"], "width": record.get("width"),
                                   "height": record.get("height"), "faces": record.get("faces", []),
                                   "video": json.dumps(record["video"]) if "video" in record else None,
                                   "error": record.get("error")})
        if len(self._parquet_rows) >= 4096:
            self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self._parquet_rows, schema=parquet_schema())
        if self._parquet_writer is None:
            self._parquet_writer = pq.ParquetWriter(str(self.path), table.schema)
        self._parquet_writer.write_table(table)
        self._parquet_rows = []

    def close(self) -> None:
        """Ends the output: closes the JSON array and the file (stdout is only flushed)."""
        if self.fmt == "parquet":
            if self._parquet_rows or self._parquet_writer is None:
                self._flush_parquet()
            self._parquet_writer.close()
            return
        if self.fmt == "json":
            self._handle.write("\n]\n" if self.count else "]\n")
        if self.path is not None:
            self._handle.close()
        else:
            self._handle.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def record_from_parquet(row: dict) -> dict:
    """A row of a predictions Parquet file back in the JSON record's shape: null fields dropped, the video's
    JSON parsed."""
    if row.get("error") is not None:
        return {"file": row["file"], "error": row["error"]}
    if row.get("video") is not None:
        return {"file": row["file"], "video": json.loads(row["video"])}
    faces = [{key: value for key, value in face.items() if not (key == "landmarks" and value is None)}
             for face in row["faces"]]
    return {"file": row["file"], "width": row["width"], "height": row["height"], "faces": faces}


def parquet_schema():
    """Parquet columns: file, width, height, faces (a list of structs, as in JSON; landmarks null when the
    detector gives none), video (its JSON), error."""
    import pyarrow as pa

    face = pa.struct([("box", pa.list_(pa.int32())), ("detection_score", pa.float64()), ("emotion", pa.string()),
                      ("confidence", pa.float64()),
                      ("probabilities", pa.struct([(e, pa.float64()) for e in EMOTIONS])),
                      ("landmarks", pa.list_(pa.list_(pa.float64())))])
    return pa.schema([("file", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
                      ("faces", pa.list_(face)), ("video", pa.string()), ("error", pa.string())])
