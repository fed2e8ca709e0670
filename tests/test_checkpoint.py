"""Loading into modules built on the meta device (checkpoint.build_empty / load_into)."""


from __future__ import annotations

import pytest
import torch
from torch import nn

from indextts_core.checkpoint import build_empty, load_into
from indextts_core.errors import CheckpointError
from indextts_core.models.s2mel import TimestepEmbedder


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("table", torch.empty(4))
        self.reset_buffers()

    def reset_buffers(self) -> None:
        self.table = torch.arange(4.0, device=self.table.device)


def _empty(factory=_Net) -> nn.Module:
    return build_empty(factory, device="cpu", dtype=torch.float32)


def _file() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"lin.weight": torch.randn(2, 3, generator=g), "lin.bias": torch.randn(2, generator=g),
            "table": torch.randn(4, generator=g), "unused.weight": torch.zeros(1)}


def test_meta_build_takes_the_files_tensors_without_a_copy() -> None:
    sd = _file()
    net = _empty()
    load_into(net, sd, file="net.pt")
    for key, value in net.state_dict().items():
        assert not value.is_meta
        assert value.data_ptr() == sd[key].data_ptr()  # assigned, not copied
    x = torch.ones(1, 3)
    assert torch.equal(net.lin(x), x @ sd["lin.weight"].T + sd["lin.bias"])


def test_meta_build_converts_dtype_once() -> None:
    sd = {k: v.double() for k, v in _file().items()}
    net = _empty()
    load_into(net, sd, file="net.pt")
    assert net.lin.weight.dtype == torch.float32 and net.lin.weight.device.type == "cpu"
    assert torch.equal(net.lin.weight, sd["lin.weight"].float())


def test_an_optional_buffer_missing_from_the_file_is_computed_by_the_module() -> None:
    sd = _file()
    del sd["table"]
    net = _empty()
    load_into(net, sd, file="net.pt", optional=["table"])
    assert torch.equal(net.table, torch.arange(4.0))


def test_missing_key_is_named_for_a_meta_build() -> None:
    sd = _file()
    del sd["lin.bias"]
    with pytest.raises(CheckpointError, match=r"lin\.bias"):
        load_into(_empty(), sd, file="net.pt")


def test_timestep_frequencies_are_rebuilt_after_a_meta_build() -> None:
    empty = _empty(lambda: TimestepEmbedder(8, freq_dim=16))
    assert torch.equal(empty.freqs, TimestepEmbedder(8, freq_dim=16).freqs)
