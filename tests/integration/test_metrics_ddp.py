"""OffsetAccuracy under a real two-process gloo DDP run: every rank computes the global result
(the metric's other tests: tests/unit/test_metrics.py)."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avsync.evaluation.metrics import OffsetAccuracy
from support.offset_accuracy_cases import GRID21, assert_same_results, random_batches


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        logits, target = random_batches(seed=2)
        metric = OffsetAccuracy(GRID21, classes=1)
        metric.update(logits[rank::world], target[rank::world])
        torch.save(metric.compute(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_real_two_process_gloo_ddp_gives_the_global_result_on_every_rank(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    logits, target = random_batches(seed=2)
    whole = OffsetAccuracy(GRID21, classes=1)
    whole.update(logits, target)
    for rank in range(2):
        assert_same_results(torch.load(tmp_path / f"rank{rank}.pt"), whole.compute())
