"""The PyTorch reference: the same network as ``nn.Sequential`` trained with ``torch.optim``.

Idiomatic PyTorch, as a user switching to xpscratch would have written it: autograd,
``nn.CrossEntropyLoss``, ``zero_grad(set_to_none=True)``, the optimizers' default
implementations.  Hyperparameters match xpscratch's (BN epsilon 1e-6 and running-average
weight 0.1 = 1 - 0.9, Adam epsilon 1e-7).  Autograd does not compute the gradient of the
input, so the first layer's ``dx`` (which the book's code computes and discards) is skipped.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def make_model(
    sizes, *, use_batchnorm=False, use_dropout=False, dropout_ratio=0.5, dtype, device
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i == len(sizes) - 2:
            break
        if use_batchnorm:
            layers.append(nn.BatchNorm1d(sizes[i + 1], eps=1e-6, momentum=0.1))
        layers.append(nn.ReLU())
        if use_dropout:
            layers.append(nn.Dropout(dropout_ratio))
    model = nn.Sequential(*layers).to(device=device, dtype=getattr(torch, dtype))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):  # He initialisation, zero biases, as xpscratch
                m.weight.normal_(0.0, math.sqrt(2.0 / m.in_features))
                m.bias.zero_()
    return model


def make_optimizer(name: str, params) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01)
    if name == "adam":
        return torch.optim.Adam(params, lr=0.001, eps=1e-7)
    raise ValueError(f"unknown optimizer {name!r}")


def train_step(model, optimizer, loss_fn, x, t) -> torch.Tensor:
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), t)
    loss.backward()
    optimizer.step()
    return loss.detach()
