"""The inference sub-commands: predict, video, demo, export. None of them imports torch unless asked to."""

import json
import sys
from pathlib import Path

from resdropnet.errors import ResDropNetError
from resdropnet.faces import DEFAULT_DETECTOR, smaller_faces_hint
from resdropnet.images import is_uri, list_images
from resdropnet.inference.backends import BACKENDS
from resdropnet.predictions import FORMATS, VIDEO_SUFFIXES, PredictionWriter, is_video, video_record


def add_recognizer_arguments(parser) -> None:
    parser.add_argument("--weights", default="default", help="a shipped model ('default': most accurate, 'fast': distilled), a .safetensors or an .onnx file")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--detector", default=DEFAULT_DETECTOR,
                        help="centerface[:SIZE] (default; a CNN, SIZE: the longer side to detect at, default 416; "
                             "larger finds smaller faces in large photos), haar, haar-full, haar-alt2, yunet:PATH.onnx, "
                             "or none")
    parser.add_argument("--no-detect", action="store_true", help="treat each whole image as one face")
    parser.add_argument("--no-align", action="store_true",
                        help="crop the detector's box as it is, not turned upright by its landmarks (centerface)")
    parser.add_argument("--tta", default="none", choices=["none", "flip"])


def recognizer_options(args) -> dict:
    detector = "none" if args.no_detect else args.detector
    return {"weights": args.weights, "detector": detector, "backend": args.backend, "tta": args.tta,
            "align": not args.no_align}


def recognizer_from_args(args):
    from resdropnet.inference import EmotionRecognizer

    return EmotionRecognizer(**recognizer_options(args))


def cmd_predict(args) -> int:
    inputs = prediction_inputs(args)
    out = Path(args.out) if args.out else None
    errors: list[str] = []
    if args.engine == "ray":
        from resdropnet.distributed import predict_dataset

        records = predict_dataset(inputs, address=args.address, workers=args.workers, every=args.every,
                                  progress=not args.quiet, **recognizer_options(args))
        detector = args.detector
    else:
        recognizer = recognizer_from_args(args)
        records = local_records(recognizer, inputs, args.every, out, not args.quiet, errors)
        detector = recognizer.detector_name
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    found = faceless = failed = 0
    with PredictionWriter(args.format, out / f"predictions.{args.format}" if out else None) as writer:
        for record in records:
            writer.write(record)
            if "error" in record:
                errors.append(record["error"])
                failed += 1
            elif "faces" in record:
                found += len(record["faces"])
                faceless += not record["faces"]
    for error in errors:
        print(f"resdropnet: error: {error}", file=sys.stderr)
    print(f"{writer.count - failed} input(s), {found} face(s), {len(errors)} error(s)", file=sys.stderr)
    if writer.videos_left_out:
        print(f"{writer.videos_left_out} video(s) left out of the CSV: --format json, jsonl or parquet holds their "
              "frames", file=sys.stderr)
    hint = smaller_faces_hint(detector)
    if faceless and not args.no_detect and hint:
        print(f"{faceless} image(s) without a face found: {hint}", file=sys.stderr)
    return 1 if errors else 0


def prediction_inputs(args) -> list:
    """The PATHS, then the paths of each --list file and of the --parquet file's --column."""
    from resdropnet.distributed import read_parquet_paths, read_path_list

    inputs = list(args.paths)
    for list_file in args.list or []:
        inputs.extend(read_path_list(list_file))
    if args.parquet:
        inputs.extend(read_parquet_paths(args.parquet, args.column))
    if not inputs:
        raise ResDropNetError("nothing to predict: give PATHS, --list FILE or --parquet FILE")
    return inputs


def local_records(recognizer, inputs, every: int, out: Path | None, progress: bool, errors: list[str]):
    """predict's records in this process: the photos' (each drawn into OUT/annotated when out is given), then
    the videos'. A failure to write a drawing goes to errors; the record still comes."""
    photos, videos = [p for p in inputs if not is_video(p)], [p for p in inputs if is_video(p)]
    names = annotated_names(photos) if out is not None else {}
    for prediction in recognizer.predict_files(photos, progress=progress, keep_images=out is not None):
        record = prediction.to_dict()
        if out is not None and prediction.error is None:
            try:
                record["annotated"] = str(write_annotated(prediction.image, prediction.faces,
                                                          out / "annotated" / names[prediction.path]))
            except ResDropNetError as error:
                errors.append(str(error))
        yield record
    for video in videos:
        yield video_record(recognizer, video, every)


def annotated_names(paths) -> dict[Path, Path]:
    """Where each input image's annotated PNG goes, relative to OUT/annotated.

    A folder argument keeps its own name and its tree below it, a file argument its name; never the absolute path
    above what the user passed. Two inputs that would share a name (a/x.jpg and b/x.jpg, x.jpg and x.png) get
    x.png and x-2.png.
    """
    names, taken = {}, set()
    for argument in paths:
        folder_name = None if is_uri(argument) else Path(Path(argument).resolve().name or "root")
        for file in list_images([argument])[0]:
            if file in names:
                continue
            if is_uri(file):
                wanted = Path(file.rstrip("/").rsplit("/", 1)[-1] or "image")
            else:
                wanted = folder_name / file.relative_to(argument) if Path(argument).is_dir() else Path(file.name)
            target, copy = wanted.with_suffix(".png"), 2
            while target in taken:
                target, copy = wanted.with_name(f"{wanted.stem}-{copy}.png"), copy + 1
            names[file] = target
            taken.add(target)
    return names


def write_annotated(bgr, faces, target: Path) -> Path:
    import cv2

    from resdropnet.inference.annotate import annotate

    target.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), annotate(bgr, faces)):
        raise ResDropNetError(f"{target}: cannot write the annotated image")
    return target


def cmd_video(args) -> int:
    if (args.input is None) == (args.webcam is None):
        raise ValueError("give a video INPUT or --webcam [INDEX], not both")
    if args.plot:
        try:
            import matplotlib  # noqa: F401  (checked before the video is read, not after)
        except ImportError:
            raise ResDropNetError("--plot draws with matplotlib, which the core install lacks: "
                                  "pip install 'resdropnet[train]'") from None
    recognizer = recognizer_from_args(args)
    source = args.webcam if args.webcam is not None else args.input
    try:
        analysis = recognizer.predict_video(source, args.every, args.max_frames, args.out, progress=True,
                                            start=args.start, end=args.end)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    if args.csv:
        analysis.write_csv(args.csv)
    if args.plot:
        analysis.plot(args.plot)
    summary = analysis.summary()
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


def cmd_demo(args) -> int:
    import cv2

    from resdropnet.inference import EmotionRecognizer
    from resdropnet.inference.annotate import annotate

    try:
        from skimage import data
    except ImportError:
        raise ResDropNetError("the demo photo comes with scikit-image: pip install 'resdropnet[demo]'") from None
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)  # NASA's portrait of Eileen Collins, public domain
    recognizer = EmotionRecognizer(args.weights, backend=args.backend)
    faces = recognizer.predict(photo)
    print(f"astronaut.png from scikit-image ({photo.shape[1]}x{photo.shape[0]}): {len(faces)} face(s)")
    for face in faces:
        ranked = sorted(face.probabilities.items(), key=lambda item: -item[1])[:3]
        print(f"  box {face.box.to_list()}: {face.emotion} {face.confidence:.1%}  "
              f"(top 3: {', '.join(f'{e} {p:.1%}' for e, p in ranked)})")
    cv2.imwrite(args.out, annotate(photo, faces))
    print(f"wrote {args.out}")
    return 0


def cmd_export(args) -> int:
    from resdropnet.export import calibration_faces, export_onnx, quantize_int8

    result = export_onnx(args.weights, args.out)
    print(f"wrote {result['path']} (dynamic batch; max |onnxruntime - torch| on 64 random faces: "
          f"{result['max_abs_difference']:.2e})")
    if args.int8:
        out = Path(args.out).with_suffix(".int8.onnx")
        quantize_int8(args.out, out, calibration_faces(args.data))
        print(f"wrote {out} (int8, calibrated on 1,024 FER2013 Training faces from {args.data})")
    return 0


def add_inference_commands(commands) -> None:
    predict = commands.add_parser("predict", help="emotions of the faces in photos, folders and videos, on this "
                                                  "machine or a Ray cluster")
    predict.add_argument("paths", nargs="*", metavar="PATH",
                         help="images (JPEG, PNG, WebP, BMP), folders (searched recursively for images), videos "
                              f"({', '.join(VIDEO_SUFFIXES)}) or URIs that pyarrow.fs reads (s3://, gs://, file://)")
    predict.add_argument("--list", action="append", metavar="FILE", help="a file of paths or URIs, one a line")
    predict.add_argument("--parquet", metavar="FILE", help="a Parquet file whose --column holds paths or URIs")
    predict.add_argument("--column", default="path", help="the --parquet column of paths (default: path)")
    predict.add_argument("--out", help="folder for predictions.FORMAT and, with the local engine, annotated images; "
                                       "stdout if absent")
    predict.add_argument("--format", default="json", choices=FORMATS, help="json, jsonl (a record a line), csv (a "
                                                                           "row a face) or parquet (needs --out)")
    predict.add_argument("--every", type=int, default=1, help="analyse every N-th frame of videos")
    predict.add_argument("--engine", default="local", choices=["local", "ray"],
                         help="local: this process; ray: a Ray cluster (pip install 'resdropnet[ray]')")
    predict.add_argument("--address", help="with --engine ray: the cluster, 'auto' or ray://HOST:10001 (default: "
                                           "start a local one)")
    predict.add_argument("--workers", type=int, help="with --engine ray: model-holding actors (default: one per CPU)")
    predict.add_argument("--quiet", action="store_true", help="no progress bar")
    add_recognizer_arguments(predict)
    predict.set_defaults(handler=cmd_predict)

    video = commands.add_parser("video", help="emotions over a video or a live webcam")
    video.add_argument("input", nargs="?", help="video file")
    video.add_argument("--webcam", type=int, nargs="?", const=0, help="read camera INDEX (default 0) instead")
    video.add_argument("--out", help="annotated video to write (.mp4)")
    video.add_argument("--csv", help="per-frame, per-face emotions to write")
    video.add_argument("--plot", help="PNG of emotions over time to write")
    video.add_argument("--summary", help="JSON summary to write (it is also printed)")
    video.add_argument("--every", type=int, default=1, help="analyse every N-th frame")
    video.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    video.add_argument("--start", help="begin at this time: seconds (90.5) or [HH:]MM:SS; times stay absolute")
    video.add_argument("--end", help="stop at this time: seconds or [HH:]MM:SS")
    add_recognizer_arguments(video)
    video.set_defaults(handler=cmd_video)

    demo = commands.add_parser("demo", help="the shipped model on a public-domain photo (needs the demo extra)")
    demo.add_argument("--out", default="resdropnet_demo.png", help="annotated image to write")
    demo.add_argument("--weights", default="default")
    demo.add_argument("--backend", default="auto", choices=BACKENDS)
    demo.set_defaults(handler=cmd_demo)

    export = commands.add_parser("export", help="export weights to ONNX (needs the train extra)")
    export.add_argument("--format", default="onnx", choices=["onnx"])
    export.add_argument("--weights", default="default",
                        help="a .safetensors path or shipped name; comma-separated: one graph that averages their "
                             "probabilities (an ensemble)")
    export.add_argument("--out", default="model.onnx")
    export.add_argument("--int8", action="store_true", help="also write OUT's .int8.onnx: static int8, calibrated on FER2013")
    export.add_argument("--data", default="../shared/data/fer2013.zip", help="FER2013 source for --int8 calibration")
    export.set_defaults(handler=cmd_export)
