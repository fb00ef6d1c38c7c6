"""EDM: Table 1's preconditioning against its formulas (and diffusers'), the loss of eq. (8), the time steps
of eq. (5), sampler determinism under a seeded generator, and samplers on a Gaussian whose ideal denoiser is
closed-form."""

from __future__ import annotations

import math

import pytest
import torch

from worldmodels.models.edm import EDM, SamplerConfig


class GaussianDenoiser(torch.nn.Module):
    """The network whose preconditioned output is the ideal denoiser of ``N(mu, s^2)`` data:
    ``D(x; sigma) = mu + s^2 / (s^2 + sigma^2) (x - mu)``, so ``F = (D - c_skip x) / c_out``."""

    def __init__(self, edm: EDM, mu: float, s: float):
        super().__init__()
        self.edm, self.mu, self.s = edm, mu, s
        self.calls = 0

    def forward(self, x_in, c_noise, scale=1.0):
        self.calls += 1
        sigma = (4 * c_noise).exp().double()
        c_skip, c_out, c_in, _ = self.edm.coefficients(sigma)
        view = (-1,) + (1,) * (x_in.ndim - 1)
        x = x_in.double() / c_in.view(view)
        d = self.mu + self.s**2 / (self.s**2 + sigma.view(view) ** 2) * (x - self.mu)
        return (scale * (d - c_skip.view(view) * x) / c_out.view(view)).to(x_in.dtype)


def test_coefficients_match_table_1():
    edm = EDM(sigma_data=0.5)
    for sigma in (0.002, 0.1, 0.5, 1.0, 20.0, 80.0):
        c_skip, c_out, c_in, c_noise = edm.coefficients(torch.tensor(sigma, dtype=torch.float64))
        sd = 0.5
        assert c_skip.item() == pytest.approx(sd**2 / (sigma**2 + sd**2), rel=1e-12)
        assert c_out.item() == pytest.approx(sigma * sd / math.sqrt(sigma**2 + sd**2), rel=1e-12)
        assert c_in.item() == pytest.approx(1 / math.sqrt(sigma**2 + sd**2), rel=1e-12)
        assert c_noise.item() == pytest.approx(math.log(sigma) / 4, rel=1e-12, abs=1e-15)
        # unit variance of the network's input and training target (the point of Table 1)
        assert (c_in**2 * (sd**2 + sigma**2)).item() == pytest.approx(1.0)
    assert edm.loss_weight(torch.tensor(0.3)).item() == pytest.approx(
        1 / edm.coefficients(torch.tensor(0.3))[1] ** 2
    )


def test_precondition_matches_diffusers_edm_scheduler():
    from diffusers import EDMEulerScheduler

    edm = EDM(sigma_data=0.7)
    sched = EDMEulerScheduler(sigma_data=0.7)
    x = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor(1.3)
    net = lambda x_in, c_noise: torch.tanh(x_in) + c_noise.view(-1, 1, 1, 1)  # noqa: E731
    ours = edm.precondition(net, x, sigma)
    theirs = sched.precondition_outputs(
        x, net(sched.precondition_inputs(x, sigma), sched.precondition_noise(sigma).expand(3)), sigma
    )
    torch.testing.assert_close(ours, theirs)


def test_precondition_per_sample_sigma_and_cond():
    edm = EDM(sigma_data=0.5)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.01, 0.5, 2.0, 10.0])
    net = lambda x_in, c_noise, bias: x_in * 2 + bias  # noqa: E731
    out = edm.precondition(net, x, sigma, bias=1.0)
    for i in range(4):
        s = sigma[i].item()
        c_skip, c_out, c_in = (
            0.25 / (s**2 + 0.25),
            s * 0.5 / math.sqrt(s**2 + 0.25),
            1 / math.sqrt(s**2 + 0.25),
        )
        torch.testing.assert_close(out[i], c_skip * x[i] + c_out * (2 * c_in * x[i] + 1.0))


def test_loss_is_eq_8():
    edm = EDM(sigma_data=0.5, p_mean=-0.4, p_std=1.2)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    net = lambda x_in, c_noise: 0.5 * x_in  # noqa: E731
    sigma = torch.tensor([0.01, 0.1, 0.5, 1.0, 3.0, 20.0])
    noise = torch.randn(6, 3, generator=torch.Generator().manual_seed(3))
    per = edm.loss(net, x, sigma=sigma, noise=noise, reduce=False)
    y = x + sigma[:, None] * noise
    d = edm.precondition(net, y, sigma)
    expected = edm.loss_weight(sigma) * (d - x).pow(2).mean(1)  # lambda(sigma) ||D - x||^2
    torch.testing.assert_close(per, expected, rtol=1e-4, atol=1e-6)


def test_sample_sigma_lognormal_and_clipping():
    edm = EDM(p_mean=-0.4, p_std=1.2)
    s = edm.sample_sigma(200_000, torch.Generator().manual_seed(0))
    assert s.log().mean().item() == pytest.approx(-0.4, abs=0.01)
    assert s.log().std().item() == pytest.approx(1.2, abs=0.01)
    clipped = EDM(p_mean=-0.4, p_std=1.2, sigma_min_train=0.1, sigma_max_train=5.0).sample_sigma(
        200_000, torch.Generator().manual_seed(0)
    )
    assert clipped.min().item() == pytest.approx(0.1) and clipped.max().item() == pytest.approx(5.0)
    torch.testing.assert_close(clipped, s.clamp(0.1, 5.0))


def test_karras_sigmas_eq_5_and_diffusers():
    from diffusers import EDMEulerScheduler

    cfg = SamplerConfig(steps=5, sigma_min=0.002, sigma_max=80.0, rho=7.0)
    t = EDM.sigmas(cfg)
    assert t.shape == (6,) and t[-1] == 0
    for i in range(5):
        ref = (80 ** (1 / 7) + i / 4 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
        assert t[i].item() == pytest.approx(ref, rel=1e-6)
    sched = EDMEulerScheduler(sigma_min=0.002, sigma_max=80.0, rho=7.0)
    sched.set_timesteps(5)
    torch.testing.assert_close(t, sched.sigmas.float())
    assert EDM.sigmas(SamplerConfig(steps=1, sigma_max=5.0)).tolist() == [5.0, 0.0]


@pytest.mark.parametrize(
    "solver,churn", [("euler", 0.0), ("heun", 0.0), ("heun", 10.0), ("dpmsolver++", 0.0)]
)
def test_sampler_deterministic_under_seed(solver, churn):
    edm = EDM(sigma_data=1.0)
    net = GaussianDenoiser(edm, mu=0.3, s=0.7)
    cfg = SamplerConfig(steps=4, solver=solver, s_churn=churn)
    a = edm.sample(net, (8, 3), cfg, torch.Generator().manual_seed(5))
    b = edm.sample(net, (8, 3), cfg, torch.Generator().manual_seed(5))
    c = edm.sample(net, (8, 3), cfg, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert net.calls == 3 * cfg.nfe


def test_churn_draws_noise_and_changes_samples():
    edm = EDM(sigma_data=1.0)
    net = GaussianDenoiser(edm, 0.0, 1.0)
    noise = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    base = SamplerConfig(steps=6, solver="heun")
    plain = edm.sample(net, (16, 2), base, torch.Generator().manual_seed(1), noise=noise)
    plain2 = edm.sample(net, (16, 2), base, torch.Generator().manual_seed(2), noise=noise)
    assert torch.equal(plain, plain2)  # deterministic sampler: the generator only draws the initial noise
    churned = edm.sample(net, (16, 2), SamplerConfig(steps=6, solver="heun", s_churn=40), torch.Generator().manual_seed(1), noise=noise)  # fmt: skip
    assert not torch.allclose(plain, churned)


@pytest.mark.parametrize(
    "cfg,tol",
    [
        (SamplerConfig(steps=32, solver="heun"), 0.02),
        (SamplerConfig(steps=64, solver="euler"), 0.03),
        (SamplerConfig(steps=32, solver="heun", s_churn=40, s_tmin=0.05, s_tmax=50, s_noise=1.003), 0.03),
        (SamplerConfig(steps=32, solver="dpmsolver++"), 0.02),
    ],
)
def test_sampler_recovers_gaussian(cfg, tol):
    """With the ideal denoiser of N(mu, s^2) the samplers must return N(mu, s^2) samples."""
    mu, s = 1.5, 0.4
    edm = EDM(sigma_data=0.5)
    net = GaussianDenoiser(edm, mu, s)
    x = edm.sample(net, (20_000, 2), cfg, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert x.mean().item() == pytest.approx(mu, abs=tol)
    assert x.std().item() == pytest.approx(s, abs=tol)


def test_euler_matches_diffusers_edm_euler_scheduler():
    from diffusers import EDMEulerScheduler

    edm = EDM(sigma_data=0.5)
    net = GaussianDenoiser(edm, 0.2, 0.6)
    cfg = SamplerConfig(steps=5, sigma_max=5.0)
    noise = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    ours = edm.sample(net, (4, 3), cfg, noise=noise)
    sched = EDMEulerScheduler(sigma_min=cfg.sigma_min, sigma_max=cfg.sigma_max, sigma_data=0.5, rho=7.0)
    sched.set_timesteps(5)
    x = noise * sched.sigmas[0]
    for t in sched.timesteps:
        f = net(sched.scale_model_input(x, t), t.expand(4).float())
        x = sched.step(f, t, x).prev_sample
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-5)


def test_bad_config():
    with pytest.raises(ValueError, match="steps=0"):
        SamplerConfig(steps=0)
    with pytest.raises(ValueError, match="solver='rk4'"):
        SamplerConfig(solver="rk4")
    with pytest.raises(ValueError, match="s_churn > 0"):
        SamplerConfig(solver="dpmsolver++", s_churn=1.0)
    with pytest.raises(ValueError, match="noise has shape"):
        EDM().sample(lambda x, c: x, (2, 3), noise=torch.zeros(3, 2))
