"""Random logits and the comparison of OffsetAccuracy results shared by the metric's unit tests and
its real two-process DDP test."""
import torch

from avsync.offsets import get_grid

GRID21 = get_grid(21).values


def random_batches(n=200, c=21, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g), torch.randint(0, c, (n,), generator=g)


def assert_same_results(a, b):
    for key in ("acc@1", "acc_tol", "per_offset_acc@1", "per_offset_acc_tol", "confusion"):
        assert torch.equal(a[key].nan_to_num(-1), b[key].nan_to_num(-1)), key
