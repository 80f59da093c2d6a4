"""VGG feature extractor for the perceptual (eq. 8) and Gram-matrix (eq. 10) losses.

torchvision's VGG layout (layer names ``conv1_1``, ``relu1_1``, … as BasicSR names them). Weights
come from the checked registry (``vgg19``, ``vggface``) or a file, never a download: a torchvision
``vgg16/vgg19`` state dict (``features.N.weight``) or a VGGFace checkpoint (Albanie's
``vgg_face_dag.pth``: ``conv1_1.weight`` …, VGG16, inputs 0–255 minus its mean RGB).
"""
from __future__ import annotations

import warnings

import torch
from basicsr.archs.vgg_arch import NAMES
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from mpcnet.checkpoint import load_model_file

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VGGFACE_MEAN = (129.186279296875 / 255, 104.76238250732422 / 255, 93.59396362304688 / 255)
VGGFACE_STD = (1 / 255,) * 3


def _is_vggface_layout(state: dict) -> bool:
    return "conv1_1.weight" in state


def _vggface_to_torchvision(state: dict) -> dict:
    """``conv5_3.weight`` → ``features.28.weight`` (VGG16 positions); the fc layers are dropped."""
    index = {name: i for i, name in enumerate(NAMES["vgg16"])}
    out = {}
    for key, value in state.items():
        layer, kind = key.rsplit(".", 1)
        if layer.startswith("conv"):
            out[f"features.{index[layer]}.{kind}"] = value
    return out


@ARCH_REGISTRY.register()
class MPCVGGFeatureExtractor(nn.Module):
    """``forward(x)`` with x RGB in [0, 1] → ``{layer name: feature}`` for ``layer_name_list``.

    ``weights``: a registry name or a file. ``vgg_type`` is taken from the file (VGGFace is VGG16);
    give it only with ``random_init=True``, which builds untrained weights (with a warning) and
    is meant for tests and smoke runs. The network is frozen and kept in eval mode.
    """

    def __init__(self, layer_name_list=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), weights="vgg19",
                 vgg_type=None, use_input_norm=True, random_init=False):
        super().__init__()
        face = False
        if random_init:
            warnings.warn("MPCVGGFeatureExtractor: random weights (random_init=True); perceptual and style "
                          "losses computed with it are meaningless for training", stacklevel=2)
            state, vgg_type = None, vgg_type or "vgg19"
        else:
            state = load_model_file(weights).state
            face = _is_vggface_layout(state)
            if face:
                state, vgg_type = _vggface_to_torchvision(state), "vgg16"
            else:
                vgg_type = "vgg16" if "features.30.weight" not in state else "vgg19"
        names = NAMES[vgg_type]
        self.layer_name_list = list(layer_name_list)
        unknown = [n for n in self.layer_name_list if n not in names]
        if unknown:
            raise ValueError(f"{vgg_type} has no layer {', '.join(unknown)} (layers: {', '.join(names)})")
        last = max(names.index(n) for n in self.layer_name_list)
        features = make_layers(cfgs["D" if vgg_type == "vgg16" else "E"])  # torchvision's vgg16/vgg19 .features
        if state is not None:
            features.load_state_dict({k[len("features."):]: v for k, v in state.items()
                                      if k.startswith("features.")}, strict=True)
        for layer in features:  # conv outputs can be returned: no in-place ReLU may overwrite them
            if isinstance(layer, nn.ReLU):
                layer.inplace = False
        self.vgg_net = nn.Sequential(*list(features)[:last + 1])
        self.names = names[:last + 1]
        self.vgg_type = vgg_type
        self.use_input_norm = use_input_norm
        mean, std = (VGGFACE_MEAN, VGGFACE_STD) if face else (IMAGENET_MEAN, IMAGENET_STD)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out = {}
        for name, layer in zip(self.names, self.vgg_net):
            x = layer(x)
            if name in self.layer_name_list:
                out[name] = x
        return out
