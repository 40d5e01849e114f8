"""What the processes that train will see, asked before anything trains: the
device ``[train] device`` resolves to, whether CUDA is usable, torch's version,
and each data setting's shape, classes and split sizes (for the components'
data checks).

With ``--jobs N`` a worker answers (it has torch imported and the data loaded
for its first runs anyway), so the coordinating process never imports torch;
with one job this process answers itself. ``probe`` is the one place either
asks from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ablate.components import DataInfo
from ablate.spec import RunSpec, canonical_json

if TYPE_CHECKING:
    from ablate.components import DataInfo
    from ablate.plugin.registry import Registry


@dataclass(frozen=True)
class Environment:
    device: str  # "cuda" or "cpu": what the study's device setting gives where runs train
    cuda: bool  # a usable CUDA GPU is visible to torch
    torch: str  # torch's version
    data: dict[str, DataInfo]  # data_key(spec) -> what that data setting looks like


def data_key(spec: RunSpec) -> str:
    """Which data a run trains on (its data set, parameters, split, file contents and where they are)."""
    return canonical_json([spec.data.to_json(), spec.split_seed, spec.data_hash, spec.data_dir])


def probe(specs: list[RunSpec], registry: Registry, wanted_device: str) -> Environment:
    """The environment here, each spec's data loaded as a run loads it (and kept for training)."""
    import torch

    from ablate.train.build import load_data, pick_device  # torch: only when this runs, not at start-up

    cuda = torch.cuda.is_available()
    device = pick_device(wanted_device) if cuda else torch.device("cpu")
    infos = {}
    for spec in specs:
        data = load_data(spec, registry, device)
        infos[data_key(spec)] = DataInfo.of(data, spec.data.name)
    return Environment(device.type, cuda, str(torch.__version__), infos)
