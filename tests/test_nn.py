"""worldmodels.nn: the batched ensemble equals a loop over independent members."""

from __future__ import annotations

import pytest
import torch

from worldmodels.nn import EnsembleLinear, EnsembleMLP


def test_ensemble_linear_equals_per_member_linear():
    layer = EnsembleLinear(4, 3, 5)
    x = torch.randn(4, 7, 3)
    out = layer(x)
    for e in range(4):
        torch.testing.assert_close(out[e], x[e] @ layer.weight[e] + layer.bias[e, 0])
    shared = torch.randn(7, 3)
    torch.testing.assert_close(layer(shared), layer(shared.expand(4, 7, 3)))
    assert out.shape == (4, 7, 5)


def test_ensemble_mlp_equals_loop_of_mlps_forward_and_backward():
    ens = EnsembleMLP(3, 6, 2, hidden=(8, 8), activation="silu")
    x = torch.randn(3, 5, 6, requires_grad=True)
    out = ens(x)
    out.square().sum().backward()
    linears = [m for m in ens.net if isinstance(m, EnsembleLinear)]
    for e in range(3):
        xe = x[e].detach().clone().requires_grad_(True)
        h = xe
        for i, lin in enumerate(linears):
            h = h @ lin.weight[e] + lin.bias[e, 0]
            if i < len(linears) - 1:
                h = torch.nn.functional.silu(h)
        torch.testing.assert_close(out[e], h)
        h.square().sum().backward()
        torch.testing.assert_close(x.grad[e], xe.grad)


def test_init_matches_nn_linear_bounds_and_generator():
    layer = EnsembleLinear(2, 16, 4)
    assert layer.weight.abs().max() <= 0.25 and layer.bias.abs().max() <= 0.25
    a, b = EnsembleMLP(2, 3, 1, (4,)), EnsembleMLP(2, 3, 1, (4,))
    a.reset_parameters(torch.Generator().manual_seed(0))
    b.reset_parameters(torch.Generator().manual_seed(0))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_bad_shapes_and_values():
    with pytest.raises(ValueError, match=r"input shape \(3, 2, 3\), expected \(4, B, 3\) or \(B, 3\)"):
        EnsembleLinear(4, 3, 5)(torch.randn(3, 2, 3))
    with pytest.raises(ValueError, match="num_members=0"):
        EnsembleLinear(0, 3, 5)
    with pytest.raises(ValueError, match="activation='swish' is not one of"):
        EnsembleMLP(2, 3, 1, activation="swish")
