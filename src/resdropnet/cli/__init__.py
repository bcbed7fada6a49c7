"""The `resdropnet` command: one entry point, one sub-command per job."""

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import resdropnet
from resdropnet.cli.inference import add_inference_commands
from resdropnet.errors import ResDropNetError
from resdropnet.faces import DEFAULT_DETECTOR
from resdropnet.inference.backends import BACKENDS
from resdropnet.training.config import MIXES, OPTIMIZERS, SCHEDULES
from resdropnet.weights import SHIPPED_MODELS

# evaluation.tta.TTA_MODES, spelled out so that the CLI starts without importing torch
EVALUATION_TTAS = ("none", "flip", "tencrop", "flip+tencrop")


def cmd_models(args) -> int:
    from resdropnet.models import DESCRIPTIONS, count_macs, count_parameters, create_model, list_models, reparameterize

    rows = []
    for name in list_models():
        model = create_model(name)
        cfg = model.config
        rows.append({
            "name": name,
            "params": count_parameters(model),
            "mflops": 2 * count_macs(reparameterize(model), args.image_size) / 1e6,  # the inference graph's
            "widths": list(cfg.widths),
            "blocks": list(cfg.blocks),
            "dropout": "none" if cfg.drop_placement == "none" else f"{cfg.drop_placement} {cfg.drop_mode} {cfg.drop_rate}",
            "head_dropout": cfg.head_dropout,
            "description": DESCRIPTIONS[name],
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<26} {'params':>11} {'MFLOPs':>9}  {'widths':<20} {'blocks':<13} {'block dropout':<18} description")
    for r in rows:
        print(f"{r['name']:<26} {r['params']:>11,} {r['mflops']:>9.1f}  {str(r['widths']):<20} {str(r['blocks']):<13} "
              f"{r['dropout']:<18} {r['description']}")
    print(f"\nMFLOPs: 2 x multiply-accumulates of one {args.image_size}x{args.image_size} image.")
    return 0


def cmd_data_prepare(args) -> int:
    from resdropnet import data

    started = time.perf_counter()
    manifest = data.prepare(args.source, args.out, skip_bad=args.skip_bad, resize=args.resize)
    print(data.counts_table(manifest["counts"]))
    for note in manifest["notes"]:
        print(f"note: {note}")
    if manifest["skipped"]:
        print(f"skipped {len(manifest['skipped'])} bad record(s):")
        for record in manifest["skipped"][:20]:
            print(f"  {record}")
        if len(manifest["skipped"]) > 20:
            print(f"  ... and {len(manifest['skipped']) - 20} more, all listed in {Path(args.out) / 'manifest.json'}")
    print(f"wrote {args.out} ({manifest['num_images']:,} images, source sha256 {manifest['source_sha256'][:16]}...) "
          f"in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_data_teacher_targets(args) -> int:
    from resdropnet import data
    from resdropnet.training.distillation import save_teacher_targets, teacher_log_probs

    images, _labels = data.load(args.data).split("train", at_most=args.subset)
    path = save_teacher_targets(args.out, teacher_log_probs(args.teacher, images), images, args.teacher)
    print(f"wrote {path}: the teacher's targets for {len(images):,} training faces; train with --teacher {path}")
    return 0


def train_config_from_args(args):
    from resdropnet.training.config import TrainConfig

    cfg = TrainConfig.from_yaml(args.config) if args.config else TrainConfig()
    flags = {f.name: getattr(args, f.name) for f in fields(cfg) if getattr(args, f.name, None) is not None}
    if args.model_overrides:
        flags["model_overrides"] = {**cfg.model_overrides, **json.loads(args.model_overrides)}
    return replace(cfg, **flags)  # replace() validates the combination again


def cmd_train(args) -> int:
    from resdropnet.training.fit import train

    cfg = train_config_from_args(args)
    report = train(cfg, resume=args.resume)
    if report:
        accuracies = ", ".join(f"{tta} {m['accuracy']:.4f}" for tta, m in report["test"].items())
        print(f"PrivateTest accuracy by TTA: {accuracies}; report in {Path(cfg.out) / 'report.md'}")
    return 0


def cmd_ablate(args) -> int:
    from resdropnet.training.ablation import ablation_table, ablation_variants, run_ablation

    cfg = train_config_from_args(args)
    variants = ablation_variants(args.models.split(","), args.placements.split(","), [float(r) for r in args.rates.split(",")])
    seeds = [int(s) for s in args.seeds.split(",")]
    records = Path(args.records) if args.records else None
    results = run_ablation(cfg, variants, seeds, Path(args.ablation_out), tta=args.tta,
                           train_missing=not args.finished_only, records=records)
    print(ablation_table(results))
    return 0


def cmd_ship(args) -> int:
    from resdropnet.model_card import measure_missing_tta, quantize_shipped, ship, write_card

    if args.tta_only:
        added = measure_missing_tta(args.name, args.data)
        print(f"{args.name}: TTA {', '.join(added)} measured into its report and card" if added
              else f"{args.name}: its report already holds every TTA mode")
        return 0
    if args.card_only:
        print(f"rewrote {write_card(args.name)}")
        return 0
    if args.int8_only:
        int8 = quantize_shipped(args.name, args.data)
        print(f"{args.name}: model.int8.onnx remade; PublicTest {int8['val_accuracy']:.2%}, PrivateTest {int8['test_accuracy']:.2%}")
        return 0
    if not (args.run_dir and args.command):
        raise SystemExit("resdropnet ship: RUN_DIR and --command are required (or --int8-only, --card-only)")
    print(f"shipped {ship(args.run_dir, args.command, args.name, args.data)}")
    return 0


def cmd_evaluate(args) -> int:
    from resdropnet.evaluation.plots import plot_confusion_matrix, plot_reliability
    from resdropnet.evaluation.report import evaluate_deployed, evaluate_split, metrics_table
    from resdropnet.weights import load_ensemble

    if args.backend == "torch":
        report = evaluate_split(load_ensemble(args.weights), args.data, args.split, args.tta)
    else:
        report = evaluate_deployed(args.weights, args.data, args.split, args.backend, args.tta)
    report["weights"] = str(args.weights)
    if args.plot:
        plot_confusion_matrix(report["confusion_matrix"], args.plot, title=f"{args.split} split, TTA {args.tta}")
    if args.reliability:
        plot_reliability(report["calibration"], args.reliability, title=f"{args.split} split, TTA {args.tta}")
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"split {report['split']} ({report['num_images']:,} images), TTA {args.tta}")
    print(f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  ECE {report['ece']:.4f}\n")
    print(metrics_table(report))
    return 0


def cmd_serve(args) -> int:
    import os

    import uvicorn

    from resdropnet.serving.app import Settings

    settings = Settings(weights=args.weights, detector=args.detector, backend=args.backend,
                        max_upload_bytes=args.max_upload_mb * 2**20, max_batch=args.max_batch, timeout_s=args.timeout,
                        max_pixels=args.max_pixels, max_request_pixels=args.max_request_pixels, max_inflight_pixels=args.max_inflight_pixels,
                        max_inflight_bytes=args.max_inflight_mb * 2**20, body_timeout_s=args.body_timeout,
                        header_timeout_s=args.header_timeout, docs=not args.no_docs)
    os.environ.update(settings.to_env())  # every worker process builds its app (and reads its protocol's) from these
    uvicorn.run("resdropnet.serving.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, log_level=args.log_level, http="resdropnet.serving.protocol:HeaderDeadlineProtocol",
                timeout_keep_alive=args.keep_alive_timeout, limit_concurrency=args.limit_concurrency or None)
    return 0


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML recipe (e.g. configs/fast.yaml); flags override it")
    parser.add_argument("--data", help="FER2013 source: fer2013.csv, image folder, its .zip, or a prepared cache")
    parser.add_argument("--model", help="registered model name (see `resdropnet models`)")
    parser.add_argument("--model-overrides", help='JSON of model config fields, e.g. \'{"drop_rate": 0.2}\'')
    parser.add_argument("--out", help="run folder: config, checkpoints, logs, weights, report")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--schedule", choices=SCHEDULES)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--augment", type=float, help="augmentation strength, 0 turns it off (default 1)")
    parser.add_argument("--size-schedule", metavar="SIZE:END,...",
                        help='progressive resizing: "32:0.3,40:0.6" trains at 32 px for the first 30%% of the run, '
                             '40 px until 60%%, then 48 (default: 48 throughout)')
    parser.add_argument("--mix", choices=MIXES)
    parser.add_argument("--mix-alpha", type=float)
    parser.add_argument("--ema-decay", type=float, help="EMA of weights, e.g. 0.999; 0 turns it off")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--max-time", help="stop after DD:HH:MM:SS")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="train for this long, the schedule on the clock: epochs are what fits (--epochs is ignored)")
    parser.add_argument("--precision", help="auto (bf16-mixed where supported, else 32), 32, bf16-mixed, 16-mixed")
    parser.add_argument("--accelerator")
    parser.add_argument("--devices")
    parser.add_argument("--num-nodes", type=int)
    parser.add_argument("--strategy", help="Lightning strategy, e.g. ddp")
    parser.add_argument("--subset", type=int, help="use at most this many images per split")
    parser.add_argument("--threads", type=int, help="torch threads per process")
    parser.add_argument("--deterministic", action="store_const", const=True)
    parser.add_argument("--report-tta", help="comma-separated TTA modes for the end-of-run report (default all three)")
    parser.add_argument("--init", help="weights to start from instead of random ones (a .safetensors path or shipped name)")
    parser.add_argument("--teacher", help="weights to distil from (a .safetensors path or shipped name; comma-separated: "
                        "an ensemble), or a targets file from `resdropnet data teacher-targets`")
    parser.add_argument("--distill-weight", type=float, help="share of the loss from the teacher (default 0.5)")
    parser.add_argument("--distill-temperature", type=float, help="softening temperature (default 2)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.ckpt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resdropnet", description="Facial expression recognition with ResDropNet (FER2013).")
    parser.add_argument("--version", action="version", version=f"resdropnet {resdropnet.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list the registered models with parameters and MFLOPs")
    models.add_argument("--image-size", type=int, default=48)
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=cmd_models)

    data_parser = commands.add_parser("data", help="FER2013 data tools")
    data_commands = data_parser.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    prepare = data_commands.add_parser("prepare", help="turn fer2013.csv, an image folder or its .zip into a fast cache")
    prepare.add_argument("source", help="fer2013.csv, image folder, .zip of one, or a prepared cache")
    prepare.add_argument("--out", required=True, help="cache folder to write")
    prepare.add_argument("--skip-bad", action="store_true", help="skip bad rows/images and report them instead of failing")
    prepare.add_argument("--resize", action="store_true", help="resize images that are not 48x48 instead of failing")
    prepare.set_defaults(handler=cmd_data_prepare)
    targets = data_commands.add_parser("teacher-targets", help="run a teacher over the training faces once and save its "
                                       "targets, for students to read with --teacher FILE")
    targets.add_argument("--teacher", required=True, help="weights (a .safetensors path or shipped name; "
                         "comma-separated: an ensemble)")
    targets.add_argument("--data", required=True, help="fer2013.csv, image folder, .zip of one, or a prepared cache")
    targets.add_argument("--out", required=True, help="targets file to write (.safetensors)")
    targets.add_argument("--subset", type=int, default=0, help="as the students' --subset (at most this many faces)")
    targets.set_defaults(handler=cmd_data_teacher_targets)

    train_parser = commands.add_parser("train", help="train a model (Lightning)")
    add_train_arguments(train_parser)
    train_parser.set_defaults(handler=cmd_train)

    ablate = commands.add_parser("ablate", help="dropout placements and rates vs the plain ResNet, over several seeds")
    add_train_arguments(ablate)
    ablate.add_argument("--models", default="resdropnet_s", help="comma-separated registered models")
    ablate.add_argument("--placements", default="none,mid,post", help="comma-separated placements")
    ablate.add_argument("--rates", default="0.1", help="comma-separated dropout rates for mid/post")
    ablate.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    ablate.add_argument("--tta", default="none", choices=EVALUATION_TTAS,
                        help="a further TTA each run reports; none and flip always are")
    ablate.add_argument("--ablation-out", default="runs/ablation", help="folder for the runs, ablation.json, ablation.md and ablation.png")
    ablate.add_argument("--records", help="folder of kept run records (each run's benchmark.json, e.g. "
                        "benchmarks/results/ablation_runs): finished runs are copied there, runs found there are not "
                        "trained again")
    ablate.add_argument("--finished-only", action="store_true", help="train nothing: summarise the runs already finished")
    ablate.set_defaults(handler=cmd_ablate)

    evaluate = commands.add_parser("evaluate", help="accuracy, macro-F1, per-class metrics, confusion matrix, ECE")
    evaluate.add_argument("--data", required=True, help="FER2013 source")
    evaluate.add_argument("--weights", default="default", help="a safetensors file or a shipped model ('default', 'fast'); "
                          "comma-separated: their ensemble (probabilities averaged; torch backend)")
    evaluate.add_argument("--split", default="private", choices=["private", "public", "train"])
    evaluate.add_argument("--tta", default="none", choices=EVALUATION_TTAS)
    evaluate.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8"],
                          help="torch (the safetensors weights) or the ONNX copy that inference runs (fp32 or int8)")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--plot", help="write the confusion matrix to this PNG")
    evaluate.add_argument("--reliability", help="write the reliability diagram (accuracy against confidence) to this PNG")
    evaluate.set_defaults(handler=cmd_evaluate)
    ship_parser = commands.add_parser("ship", help="(maintainers) make a finished run one of the package's shipped models")
    ship_parser.add_argument("run_dir", nargs="?")
    ship_parser.add_argument("--name", default="default", choices=SHIPPED_MODELS, help="which shipped model it becomes")
    ship_parser.add_argument("--command", help="the exact command that trained the run, for the model card")
    ship_parser.add_argument("--int8-only", action="store_true",
                             help="only remake the shipped model's int8 ONNX from its model.onnx, calibrated on --data")
    ship_parser.add_argument("--tta-only", action="store_true",
                             help="only measure the shipped model on --data with the TTA modes its report lacks")
    ship_parser.add_argument("--card-only", action="store_true",
                             help="only rewrite the shipped model's MODEL_CARD.md from its report.json")
    ship_parser.add_argument("--data", default="../shared/data/fer2013.zip",
                             help="FER2013 source to calibrate and measure the int8 model on, or TTA (a run trained on another "
                                  "machine names a data path that is not here)")
    ship_parser.set_defaults(handler=cmd_ship)
    add_inference_commands(commands)

    serve = commands.add_parser("serve", help="HTTP API and web page (needs the serve extra)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind; 127.0.0.1 unless you mean to expose it")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="processes, each with its own copy of the model")
    serve.add_argument("--weights", default="default")
    serve.add_argument("--detector", default=DEFAULT_DETECTOR)
    serve.add_argument("--backend", default="auto", choices=BACKENDS)
    serve.add_argument("--max-upload-mb", type=int, default=10, help="largest accepted image file")
    serve.add_argument("--max-batch", type=int, default=16, help="most images in one batch request")
    serve.add_argument("--timeout", type=float, default=30.0,
                       help="seconds from a request's start to its answer; past it the work stops and the answer is 504")
    serve.add_argument("--max-pixels", type=int, default=40_000_000,
                       help="pixels of one image, from its header before decoding; more is 413")
    serve.add_argument("--max-request-pixels", type=int, default=50_000_000,
                       help="decoded pixels of all images in one request, from their headers; more is 413")
    serve.add_argument("--max-inflight-pixels", type=int, default=80_000_000,
                       help="decoded pixels of all requests at once (about 3 bytes each in memory); a request waits for room")
    serve.add_argument("--max-inflight-mb", type=int, default=128,
                       help="request bodies held at once; a body that would go over gets 503")
    serve.add_argument("--header-timeout", type=float, default=10.0,
                       help="seconds a client has to send a request's headers; a stalled connection gets 408 and is closed")
    serve.add_argument("--body-timeout", type=float, default=60.0, help="seconds a client has to send a request's body (408)")
    serve.add_argument("--keep-alive-timeout", type=int, default=5, help="seconds an idle connection is kept open")
    serve.add_argument("--limit-concurrency", type=int, default=512,
                       help="open connections and requests at once; past it new requests get 503 (0: no limit)")
    serve.add_argument("--no-docs", action="store_true", help="do not serve the API docs page at /docs")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ResDropNetError, ValueError, KeyError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"resdropnet: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
