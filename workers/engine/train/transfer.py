"""Starting weights: torchvision's ImageNet weights from a local file, or a previous run's checkpoint.

Nothing here downloads. ImageNet weights are read from torchvision's own cache folder
(`$TORCH_HOME/hub/checkpoints`, where `torchvision.models.*(weights=...)` would have saved them) or
from a file the caller names; when neither is there the error says which file to put where.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import CheckpointError, WeightsNotFound
from .checkpoint import load_checkpoint, load_weights_file
from .models import Classifier


def imagenet_weights_path(arch: str, *, weights_file: str | os.PathLike | None = None) -> Path:
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise WeightsNotFound(f"the ImageNet weights file {path} does not exist")
        return path
    names = imagenet_file_names(arch)
    folder = imagenet_cache_folder()
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise WeightsNotFound(
        f"ImageNet weights for {arch} are not on this machine; put {names[0]} (torchvision's file) "
        f"into {shown_folder(folder)} or upload it as a weights file")


def imagenet_cache_folder() -> Path:
    """torchvision's own cache of downloaded weights on this machine ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def shown_folder(folder: Path) -> str:
    """A folder as people may see it: below the home directory as `~/...`, so messages and pages do not
    tell which account the workers run as."""
    try:
        return "~/" + str(folder.relative_to(Path.home()))
    except ValueError:
        return str(folder)


def imagenet_file_names(arch: str) -> list[str]:
    """torchvision's file names for the arch's ImageNet classification weights, the default first."""
    from torchvision.models import get_model_weights  # noqa: PLC0415  (only transfer from ImageNet needs it)

    enum = get_model_weights(arch)
    ordered = [enum.DEFAULT] + [w for w in enum if w is not enum.DEFAULT]
    return [w.url.rsplit("/", 1)[-1] for w in ordered if w.name.startswith("IMAGENET1K")]


def load_imagenet_weights(model: Classifier, *, weights_file: str | os.PathLike | None = None) -> Path:
    """Load into `model.features`; the ImageNet classifier is dropped, grayscale input adapted."""
    path = imagenet_weights_path(model.arch, weights_file=weights_file)
    state = load_weights_file(path)
    features = model.features
    own = features.state_dict()
    # torchvision's classifier (`fc` of ResNet, `classifier` of the others) is replaced by our head.
    state = {k: v for k, v in state.items() if k in own or not k.startswith(("fc.", "classifier."))}
    first = f"{model.first_conv}.weight"
    if first in state and first in own and state[first].shape[1] == 3 and own[first].shape[1] == 1:
        # Summing the RGB filters gives the response to a gray image of the same brightness.
        state[first] = state[first].sum(dim=1, keepdim=True)
    _load_exactly(features, state, source=path.name)
    return path


def load_start_checkpoint(model: Classifier, path: str | os.PathLike, *, classes: list[str]) -> bool:
    """Start from another run's weights; returns True when the head was kept, False when replaced.

    The backbone must match exactly. The head is kept only when the classes are the same ones in the
    same order; otherwise the freshly initialised head stays, to be trained for the new classes.
    """
    checkpoint = load_checkpoint(path)
    if checkpoint["config"]["arch"] != model.arch:
        raise CheckpointError(
            f"the starting checkpoint is a {checkpoint['config']['arch']} network, not {model.arch}")
    weights = checkpoint["model"]
    features = {k.removeprefix("features."): v for k, v in weights.items() if k.startswith("features.")}
    _load_exactly(model.features, features, source=Path(path).name)
    head = {k.removeprefix("head."): v for k, v in weights.items() if k.startswith("head.")}
    own_head = model.head.state_dict()
    same_shapes = head.keys() == own_head.keys() and all(head[k].shape == own_head[k].shape for k in head)
    if list(checkpoint["classes"]) == list(classes) and same_shapes:
        model.head.load_state_dict(head)
        return True
    return False


def set_backbone_frozen(model: Classifier, frozen: bool) -> None:
    """Freeze `features` (no gradients, batch-norm statistics kept) while only the head trains.

    Call after `model.train()`: a frozen backbone is put back in eval mode so its batch-norm
    layers keep the statistics they came with.
    """
    model.features.requires_grad_(not frozen)
    if frozen:
        model.features.eval()


def _load_exactly(module: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        first = (wrong or missing or unexpected)[0]
        raise CheckpointError(
            f"the weights in {source} do not fit this network ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(wrong)} of another shape, e.g. {first})")
    module.load_state_dict(state)
