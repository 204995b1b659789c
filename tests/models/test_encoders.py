"""The benchmark encoders: LeNet's trunk and the recommender tower map their inputs to the stated widths."""

from __future__ import annotations

import torch

from multitask.models import LeNet, RecommenderEncoder


def test_lenet_maps_28x28_images_to_its_width() -> None:
    assert LeNet()(torch.rand(3, 1, 28, 28)).shape == (3, 50)
    assert LeNet(width=16)(torch.rand(2, 1, 28, 28)).shape == (2, 16)


def test_recommender_encoder_joins_embeddings_and_side_features() -> None:
    encoder = RecommenderEncoder(num_users=5, num_items=7, side_features=3 + 4, dim=8, hidden=(16, 6))
    user, item = torch.tensor([0, 4]), torch.tensor([6, 1])
    output = encoder(user, item, torch.rand(2, 3), torch.rand(2, 4))
    assert output.shape == (2, 6)
    output.sum().backward()
    assert encoder.users.weight.grad is not None
    assert set(encoder.users.weight.grad.abs().sum(dim=1).nonzero().flatten().tolist()) <= {0, 4}
