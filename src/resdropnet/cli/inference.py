"""The inference sub-commands: predict, video, demo, export. None of them imports torch unless asked to."""

import csv
import json
import sys
from pathlib import Path

from resdropnet.errors import ResDropNetError
from resdropnet.images import list_images
from resdropnet.inference.backends import BACKENDS
from resdropnet.labels import EMOTIONS


def add_recognizer_arguments(parser) -> None:
    parser.add_argument("--weights", default="default", help="a shipped model ('default': most accurate, 'fast': distilled), a .safetensors or an .onnx file")
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--detector", default="haar", help="haar (default), haar-full, haar-alt2, yunet:PATH.onnx, or none")
    parser.add_argument("--no-detect", action="store_true", help="treat each whole image as one face")
    parser.add_argument("--tta", default="none", choices=["none", "flip"])


def recognizer_from_args(args):
    from resdropnet.inference import EmotionRecognizer

    detector = "none" if args.no_detect else args.detector
    return EmotionRecognizer(args.weights, detector=detector, backend=args.backend, tta=args.tta)


def cmd_predict(args) -> int:
    recognizer = recognizer_from_args(args)
    out = Path(args.out) if args.out else None
    names = annotated_names(args.paths) if out is not None else {}
    records, errors = [], []
    for prediction in recognizer.predict_files(args.paths, progress=not args.quiet, keep_images=out is not None):
        if prediction.error:
            errors.append(prediction.error)
            continue
        record = prediction.to_dict()
        records.append(record)
        if out is not None:
            try:
                record["annotated"] = str(write_annotated(prediction.image, prediction.faces,
                                                          out / "annotated" / names[prediction.path]))
            except ResDropNetError as error:
                errors.append(str(error))
    write_predictions(records, args.format, out)
    for error in errors:
        print(f"resdropnet: error: {error}", file=sys.stderr)
    found = sum(len(r["faces"]) for r in records)
    print(f"{len(records)} image(s), {found} face(s), {len(errors)} error(s)", file=sys.stderr)
    faceless = sum(1 for r in records if not r["faces"])
    if faceless and recognizer.detector_name == "haar":
        print(f"{faceless} image(s) without a face found: the haar detector finds faces at least 1/8 of a photo's "
              "longer side; --detector haar-full finds smaller ones", file=sys.stderr)
    return 1 if errors else 0


def annotated_names(paths) -> dict[Path, Path]:
    """Where each input image's annotated PNG goes, relative to OUT/annotated.

    A folder argument keeps its own name and its tree below it, a file argument its name; never the absolute path
    above what the user passed. Two inputs that would share a name (a/x.jpg and b/x.jpg, x.jpg and x.png) get
    x.png and x-2.png.
    """
    names, taken = {}, set()
    for argument in map(Path, paths):
        folder_name = Path(argument.resolve().name or "root")
        for file in list_images([argument])[0]:
            if file in names:
                continue
            wanted = folder_name / file.relative_to(argument) if argument.is_dir() else Path(file.name)
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


def write_predictions(records: list[dict], fmt: str, out: Path | None) -> None:
    handle = open(out / f"predictions.{fmt}", "w", newline="") if out else sys.stdout
    try:
        if fmt == "json":
            json.dump(records, handle, indent=2)
            handle.write("\n")
        else:
            writer = csv.writer(handle)
            writer.writerow(["file", "face", "x", "y", "w", "h", "emotion", "confidence", *EMOTIONS])
            for record in records:
                for index, face in enumerate(record["faces"]):
                    writer.writerow([record["file"], index, *face["box"], face["emotion"], face["confidence"],
                                     *(face["probabilities"][e] for e in EMOTIONS)])
    finally:
        if out:
            handle.close()


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
        analysis = recognizer.predict_video(source, args.every, args.max_frames, args.out, progress=True)
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
    predict = commands.add_parser("predict", help="emotions of the faces in photos and folders")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="images (JPEG, PNG, WebP, BMP) or folders, searched recursively")
    predict.add_argument("--out", help="folder for predictions.json/csv and annotated images; stdout if absent")
    predict.add_argument("--format", default="json", choices=["json", "csv"])
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
    add_recognizer_arguments(video)
    video.set_defaults(handler=cmd_video)

    demo = commands.add_parser("demo", help="the shipped model on a public-domain photo (needs the demo extra)")
    demo.add_argument("--out", default="resdropnet_demo.png", help="annotated image to write")
    demo.add_argument("--weights", default="default")
    demo.add_argument("--backend", default="auto", choices=BACKENDS)
    demo.set_defaults(handler=cmd_demo)

    export = commands.add_parser("export", help="export weights to ONNX (needs the train extra)")
    export.add_argument("--format", default="onnx", choices=["onnx"])
    export.add_argument("--weights", default="default")
    export.add_argument("--out", default="model.onnx")
    export.add_argument("--int8", action="store_true", help="also write OUT's .int8.onnx: static int8, calibrated on FER2013")
    export.add_argument("--data", default="../shared/data/fer2013.zip", help="FER2013 source for --int8 calibration")
    export.set_defaults(handler=cmd_export)
