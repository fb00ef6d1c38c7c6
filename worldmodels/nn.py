"""Shared vectorised building blocks: ensembles of linear layers and MLPs computed in one batched matmul.

An ensemble of ``E`` independent MLPs (critics of SAC-N/RAVL, members of a probabilistic dynamics ensemble)
is written as one module whose weights carry a leading member axis, so a forward pass costs one
``torch.baddbmm`` per layer instead of a Python loop over members:

* :class:`EnsembleLinear`: weights ``(E, in, out)``, bias ``(E, 1, out)``; input ``(E, B, in)`` (one batch
  per member) or ``(B, in)`` (one batch shared by all members, broadcast without a copy) -> ``(E, B, out)``.
* :class:`EnsembleMLP`: a stack of them with an activation between layers.

Each member is initialised like ``torch.nn.Linear`` (weights and bias uniform in
``[-1/sqrt(in), 1/sqrt(in)]``, which is what ``nn.Linear``'s Kaiming-uniform with ``a = sqrt(5)`` gives), so
an ensemble of one member trains like the plain MLP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

#: activations by name (configs store the name, not the class)
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (one of :data:`ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation={name!r} is not one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class EnsembleLinear(nn.Module):
    """``E`` independent linear layers evaluated as one batched matmul.

    Args:
        num_members: ensemble size ``E`` (>= 1).
        in_features: input size.
        out_features: output size.
        bias: learn an additive bias per member.

    Shapes: ``x (E, B, in)`` -> ``(E, B, out)`` (member ``e`` sees ``x[e]``), or ``x (B, in)`` shared by every
    member -> ``(E, B, out)``.
    """

    def __init__(self, num_members: int, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        if num_members < 1 or in_features < 1 or out_features < 1:
            raise ValueError(f"{num_members=}, {in_features=} and {out_features=} must all be >= 1")
        self.num_members, self.in_features, self.out_features = num_members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(num_members, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num_members, 1, out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Each member like ``nn.Linear``: uniform in ``[-1/sqrt(in), 1/sqrt(in)]`` (from ``generator``)."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        """``(E, B, in)`` or shared ``(B, in)`` -> ``(E, B, out)``."""
        if x.dim() == 2:  # one batch for all members: broadcast (stride 0), no copy
            x = x.unsqueeze(0).expand(self.num_members, *x.shape)
        elif x.dim() != 3 or x.shape[0] != self.num_members:
            raise ValueError(
                f"EnsembleLinear: input shape {tuple(x.shape)}, expected ({self.num_members}, B, "
                f"{self.in_features}) or (B, {self.in_features})"
            )
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return (
            f"num_members={self.num_members}, in_features={self.in_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )


class EnsembleMLP(nn.Module):
    """``E`` independent MLPs ``in -> hidden... -> out`` with one batched matmul per layer.

    Args:
        num_members: ensemble size ``E``.
        in_features: input size.
        out_features: output size.
        hidden: widths of the hidden layers (default ``(256, 256)``).
        activation: name of the activation between layers (``relu``, ``silu``, ``tanh``, ``elu``,
            ``gelu``); none after the last layer.

    Shapes: ``x (E, B, in)`` or shared ``(B, in)`` -> ``(E, B, out)``.
    """

    def __init__(
        self,
        num_members: int,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        dims = [in_features, *hidden, out_features]
        layers: list[nn.Module] = []
        for i in range(len(dims) - 1):
            layers.append(EnsembleLinear(num_members, dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                layers.append(make_activation(activation))
        self.net = nn.Sequential(*layers)
        self.num_members = num_members

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-initialise every layer (see :meth:`EnsembleLinear.reset_parameters`)."""
        for layer in self.net:
            if isinstance(layer, EnsembleLinear):
                layer.reset_parameters(generator)

    def forward(self, x: Tensor) -> Tensor:
        """``(E, B, in)`` or shared ``(B, in)`` -> ``(E, B, out)``."""
        return self.net(x)
