"""Device names (seqrec.devices.resolve_device): what a machine cannot run is one paragraph."""

import pytest
import torch

from seqrec.devices import resolve_device
from seqrec.errors import ConfigError


def test_cpu_and_auto_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize(
    "name, message",
    [
        ("cuda", "device=cuda was asked for but no CUDA GPU is available here; use device=cpu or device=auto."),
        ("mps", "device=mps was asked for but no Apple GPU (MPS) is available here; use device=cpu or device=auto."),
    ],
)
def test_an_absent_gpu_is_named_not_a_traceback(monkeypatch, name, message):
    # a GPU the machine lacks is refused here, before the data split would crash on it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError) as err:
        resolve_device(name)
    assert str(err.value) == message


def test_a_cuda_index_beyond_the_gpus_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ConfigError, match=r"--device cuda:3 was asked for but this machine has 1 CUDA GPU\(s\)"):
        resolve_device("cuda:3", "--device ")


def test_a_name_torch_does_not_know():
    with pytest.raises(ConfigError, match="'gpu0' is not a device"):
        resolve_device("gpu0")
