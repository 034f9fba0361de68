"""Training-free scores of an architecture at initialization, and the rule by which the search
screens candidates with one before training any (``--screen``).

- synflow (Tanaka et al. 2020): with every weight replaced by its absolute value (float64, eval
  mode), the sum over weights of |weight x gradient| of the summed output for an all-ones
  input; reported as its natural log (the order is what counts).
- naswot (Mellor et al. 2021): over a batch of training images in train mode, the binary code
  of which inputs of each ReLU are positive; K[i, j] counts the units on which images i and j
  agree; the score is log |det K|.

NASWOT is the screen: over the 26 rows of the 30 ms band it ranked like the ground truth about
as well as anything measured, for a fraction of a CPU second (``results/fidelity/report.md``).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from repghost import NetConfig

from .proxy import ProxyConfig, build_for, normalizer, split_for

NASWOT_BATCH = 64


def synflow_of(model: torch.nn.Module, input_shape: tuple[int, ...]) -> float:
    """log of sum |weight x d(sum of outputs)/d(weight)| with every weight made positive, in
    float64 and eval mode, for an all-ones input (``model`` is changed: pass a fresh one)."""
    model = model.double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.abs_()
    model(torch.ones(input_shape, dtype=torch.float64)).sum().backward()
    total = sum(float((p.detach() * p.grad).abs().sum()) for p in model.parameters() if p.grad is not None)
    return math.log(total) if total > 0 else -math.inf


def naswot_of(model: torch.nn.Module, images: torch.Tensor) -> float:
    """log |det K|, K[i, j] = the ReLU inputs on whose sign images i and j agree, over every
    ``nn.ReLU`` of ``model`` (forward in the model's current mode)."""
    count = int(images.shape[0])
    kernel = torch.zeros(count, count, dtype=torch.float64)

    def record(_module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        codes = (inputs[0].detach().reshape(count, -1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, torch.nn.ReLU)]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


def _fresh(config: NetConfig, proxy: ProxyConfig) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(proxy.seed)
        return build_for(config, split_for(proxy))


def synflow(config: NetConfig, proxy: ProxyConfig) -> float:
    """synflow of ``config`` at initialization (seed ``proxy.seed``), at the proxy's resolution."""
    return synflow_of(_fresh(config, proxy), (1, split_for(proxy).channels, proxy.resolution, proxy.resolution))


def naswot(config: NetConfig, proxy: ProxyConfig, batch: int = NASWOT_BATCH) -> float:
    """NASWOT of ``config`` at initialization, in train mode, over ``batch`` of the proxy's
    training images (seed ``proxy.seed`` picks them and the initialization)."""
    data = split_for(proxy)
    generator = torch.Generator().manual_seed(proxy.seed)
    pick = torch.randperm(int(data.train_images.shape[0]), generator=generator)[:batch]
    mean, std = normalizer(data.train_images)
    with torch.random.fork_rng(devices=[]):  # train mode: dropout draws must not move the caller's stream
        return naswot_of(_fresh(config, proxy).train(), (data.train_images[pick].float() - mean) / std)


def passes_screen(score: float, earlier: Iterable[float], factor: int) -> bool:
    """A candidate goes on to training when its score ranks within the top ``1/factor`` of the
    candidates screened so far, itself included (rank 1 the highest; a tie ranks as high as it
    can). Over a long stream of random candidates about one in ``factor`` passes; more pass
    early on (the first always does: ceil(n / factor) ranks out of n) and when the candidates
    improve, as they do when a sampler learns from the screened-out ones."""
    if factor < 1:
        raise ValueError(f"screening factor must be 1 or more, got {factor}")
    earlier = list(earlier)
    rank = 1 + sum(other > score for other in earlier)
    return rank <= math.ceil((len(earlier) + 1) / factor)
