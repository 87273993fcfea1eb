"""Training epoch means kept as metrics (for exact resume) weigh each batch by its size, as Lightning's own mean."""
import lightning as L
import torch

from avsync.training.epoch_means import log_epoch_mean


class _Logs(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        (x,) = batch
        log_epoch_mean(self, "train/v", torch.tensor(float(batch_idx + 1)), batch_size=len(x))
        return (self.w * x.sum()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_epoch_mean_is_weighted_by_batch_size(tmp_path):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(22, 1)), batch_size=8)  # 8, 8, 6
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(_Logs(), data)
    assert float(trainer.callback_metrics["train/v_epoch"]) == torch.tensor((1 * 8 + 2 * 8 + 3 * 6) / 22).item()
