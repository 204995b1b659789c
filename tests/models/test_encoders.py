"""The encoders: LeNet's trunk, the configurable ConvNet and the recommender tower map inputs to the stated widths."""

from __future__ import annotations

import pytest
import torch

from multitask.errors import ConfigError
from multitask.models import ConvNet, LeNet, RecommenderEncoder


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


def test_convnet_reads_out_by_averaging_or_flattening_the_last_map() -> None:
    images = torch.rand(3, 1, 28, 28)
    averaged = ConvNet(1, [4, 6], hidden=[5])
    assert averaged(images).shape == (3, 5) and averaged.out_features == 5 and averaged.read_width == 6
    flat = ConvNet(1, [4, 6], readout="flatten", in_size=(28, 28))
    assert flat.map_shape == (6, 7, 7) and flat(images).shape == (3, 6 * 7 * 7) == (3, flat.out_features)
    # the same blob moved sideways: the average read-out cannot tell, the flattened one can
    blob = torch.zeros(1, 1, 28, 28)
    blob[..., 10:18, 10:14] = 1.0
    moved = blob.roll(shifts=8, dims=3)
    for readout, same in (("average", True), ("flatten", False)):
        net = ConvNet(1, [4], pool=False, batch_norm=False, readout=readout, in_size=(28, 28)).eval()
        with torch.no_grad():
            assert torch.allclose(net(blob), net(moved)) is same


def test_convnet_can_return_its_feature_map_for_dense_heads() -> None:
    net = ConvNet(3, [4, 5], readout="none")
    assert net(torch.rand(2, 3, 16, 12)).shape == (2, 5, 4, 3) and net.out_features == 5
    with pytest.raises(ConfigError, match="hidden layers need a read-out"):
        ConvNet(3, [4], readout="none", hidden=[8])


def test_convnet_refuses_bad_shapes() -> None:
    with pytest.raises(ConfigError, match="odd"):
        ConvNet(1, [4], kernel=4)
    with pytest.raises(ConfigError, match="in_size"):
        ConvNet(1, [4], readout="flatten")
    with pytest.raises(ConfigError, match="leave nothing"):
        ConvNet(1, [4, 4, 4], readout="flatten", in_size=(4, 4))
    with pytest.raises(ConfigError, match="positive"):
        ConvNet(1, [])
