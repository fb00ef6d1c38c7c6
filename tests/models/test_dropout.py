"""The CPU dropout with cheap draws: its statistics, gradient, seeding and the attention that uses it."""

import pytest
import torch
import torch.nn.functional as F

from worldmodels.models import latent_predictor
from worldmodels.models.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_rate_and_expectation(p):
    torch.manual_seed(0)
    x = torch.ones(400_000)
    y = dropout(x, p)
    kept = (y != 0).float().mean().item()
    # binomial standard deviation at n=4e5 is < 1e-3; the rounding of p to 2**-16 is < 1e-5
    assert abs(kept - (1 - p)) < 5e-3, kept
    assert abs(y.mean().item() - 1.0) < 1e-2
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 65536 / (65536 - round(p * 65536))))


def test_identity_when_not_training_or_zero_p():
    x = torch.randn(3, 5)
    assert dropout(x, 0.3, training=False) is x
    assert dropout(x, 0.0) is x
    m = Dropout(0.3).eval()
    assert m(x) is x


def test_invalid_p_is_rejected():
    with pytest.raises(ValueError, match=r"p=1\.0"):
        dropout(torch.ones(2), 1.0)
    with pytest.raises(ValueError, match=r"p=-0\.1"):
        Dropout(-0.1)


def test_gradient_uses_the_forward_mask():
    torch.manual_seed(1)
    x = torch.randn(64, 33, requires_grad=True)
    y = dropout(x, 0.25)
    y.sum().backward()
    keep = y.detach() != 0
    scale = 65536 / (65536 - round(0.25 * 65536))
    assert torch.equal(x.grad, keep.float() * scale)
    assert torch.allclose(y.detach(), x.detach() * keep * scale)


def test_seeded_draws_repeat_and_odd_sizes_work():
    torch.manual_seed(3)
    a = dropout(torch.ones(7, 3, 5), 0.5)
    torch.manual_seed(3)
    b = dropout(torch.ones(7, 3, 5), 0.5)
    assert torch.equal(a, b) and a.shape == (7, 3, 5)
    assert (a == 0).any() and (a != 0).any()


def test_attention_with_dropout_equals_pytorchs_math_when_nothing_is_dropped(monkeypatch):
    """The materialised attention the CPU dropout path uses is the same function as SDPA: with the mask
    forced to keep everything, outputs match PyTorch's kernel (with and without a boolean mask)."""
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 10, 8), torch.randn(2, 4, 15, 8), torch.randn(2, 4, 15, 8)
    mask = torch.rand(10, 15) > 0.3
    mask[:, 0] = True
    monkeypatch.setattr(
        "worldmodels.models.dropout._keep_mask", lambda shape, p, device: torch.ones(shape, dtype=torch.bool)
    )
    for m in (None, mask):
        ours = latent_predictor._sdpa(q, k, v, m, 0.2)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=m) / (1 - round(0.2 * 65536) / 65536)
        assert torch.allclose(ours, ref, atol=1e-5), m


def test_attention_dropout_drops_about_p_of_the_probabilities():
    """With all values 1 each output row is the sum of its kept, rescaled probabilities: mean 1."""
    torch.manual_seed(0)
    q, k = torch.randn(1, 2, 256, 8), torch.randn(1, 2, 256, 8)
    out = latent_predictor._sdpa(q, k, torch.ones(1, 2, 256, 1), None, 0.3)
    assert abs(out.mean().item() - 1.0) < 0.03
    assert out.std().item() > 0.05  # rows differ: probabilities were dropped
