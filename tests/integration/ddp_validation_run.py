"""Run by ``test_ddp_data.py`` as its own program: Lightning's ``ddp`` strategy re-launches this
script once per extra rank (2 CPU processes, gloo). Each rank writes the validation items it
scored, per epoch, to ``<out>/rank<r>.json``.

Usage: python ddp_validation_run.py <clip root> <out dir>
"""
import json
import sys
from pathlib import Path

import lightning as L
import torch

from avsync.data_modules import AcappellaDataModule

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared support helpers
from support.input_specs import TINY_SPEC  # noqa: E402

SPEC = TINY_SPEC


class Recorder(L.LightningModule):
    """One weight to train; validation only notes which items it saw."""

    def __init__(self, out: Path) -> None:
        super().__init__()
        self.input_spec = SPEC
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.out, self.seen, self.epochs = out, [], []

    def training_step(self, batch, batch_idx):
        return (self.weight * batch["audio"].mean() + self.weight ** 2).sum()

    def validation_step(self, batch, batch_idx):
        self.seen += [int(i) for i in batch["index"]]

    def on_validation_epoch_end(self):
        self.epochs.append(self.seen)
        self.seen = []
        (self.out / f"rank{self.global_rank}.json").write_text(json.dumps(self.epochs))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main(root: str, out: str) -> None:
    out_dir = Path(out)
    data = AcappellaDataModule(root=root, split_dirs={s: "clips" for s in ("train", "valid", "test")},
                               batch_size=2, num_workers=1, probe_cache_dir=str(out_dir / "cache"),
                               report_dir=str(out_dir / "report"))
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, limit_train_batches=1,
                        num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Recorder(out_dir), datamodule=data)


if __name__ == "__main__":
    main(*sys.argv[1:3])
