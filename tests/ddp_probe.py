"""`resdropnet train`, as a launcher such as torchrun starts it on each node, with a probe that records which Training
faces this rank was given in each epoch and the weights it ended with.

    python ddp_probe.py PROBE_DIR TRAIN_FLAGS...   (what test_training.py's multi-node test launches)
"""

import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch

import resdropnet.training.fit as fit
from resdropnet.cli import main
from resdropnet.training.datamodule import BatchedTensors

fetched: list[tuple[int, list[int]]] = []  # (id of the dataset, the indices of one batch), as the DataLoader asks
original_getitems = BatchedTensors.__getitems__


def recording_getitems(self, indices):
    fetched.append((id(self), [int(i) for i in indices]))
    return original_getitems(self, indices)


class ShardProbe(pl.Callback):
    def __init__(self, out: Path):
        self.out, self.epochs = out, []

    def on_train_epoch_end(self, trainer, pl_module):
        train_set = id(trainer.datamodule.tensors["train"])
        self.epochs.append(sorted(i for dataset, batch in fetched if dataset == train_set for i in batch))
        fetched.clear()

    def on_train_end(self, trainer, pl_module):
        rank = trainer.global_rank
        torch.save({k: v.detach().cpu() for k, v in pl_module.state_dict().items()}, self.out / f"weights-{rank}.pt")
        (self.out / f"shards-{rank}.json").write_text(json.dumps({
            "world_size": trainer.world_size, "num_nodes": trainer.num_nodes,
            "train_size": len(trainer.datamodule.tensors["train"]), "epochs": self.epochs}))


def train_with_probe(cfg, resume=False, callbacks=None):
    return original_train(cfg, resume=resume, callbacks=[*(callbacks or []), ShardProbe(probe_dir)])


if __name__ == "__main__":
    probe_dir = Path(sys.argv[1])
    BatchedTensors.__getitems__ = recording_getitems
    original_train, fit.train = fit.train, train_with_probe
    sys.exit(main(["train", *sys.argv[2:]]))
