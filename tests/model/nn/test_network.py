"""The B-Cir U-Net: Table 1's counts, shapes, bad sizes, a backward pass."""

import pytest
import torch

from model.nn.network import BCirUNet, parameter_counts


def test_table1_parameter_counts():
    counts = parameter_counts(BCirUNet())
    assert counts["trunk_trainable_params"] == 1_274_289
    assert counts["trunk_bn_running_stats"] == 2_432
    assert counts["trunk_trainable_params"] + counts["trunk_bn_running_stats"] == 1_276_721  # Keras' total
    assert counts["head_params"] > 0


def test_skip_branch_counts_per_level():
    net = BCirUNet()
    for skip, channels in zip(net.trunk.skips, (16, 32, 64, 128)):
        convs = sum(p.numel() for n, p in skip.named_parameters() if "depthwise" in n or "pointwise" in n)
        assert convs == 4 * (9 * channels + channels * channels)


@pytest.mark.parametrize(("h", "w"), [(16, 16), (64, 48), (96, 160)])
def test_output_shapes(h, w):
    net = BCirUNet().eval()
    with torch.no_grad():
        mask, malignancy = net(torch.randn(3, 1, h, w))
    assert mask.shape == (3, 1, h, w)
    assert malignancy.shape == (3,)


@pytest.mark.parametrize("shape", [(1, 1, 50, 64), (1, 1, 64, 8), (1, 3, 64, 64), (64, 64)])
def test_bad_input_sizes_get_a_clear_error(shape):
    with pytest.raises(ValueError, match="multiple of 16|expected input"):
        BCirUNet()(torch.randn(*shape))


def test_one_backward_pass_reaches_every_parameter():
    net = BCirUNet()
    mask, malignancy = net(torch.randn(2, 1, 32, 32))
    (mask.mean() + malignancy.mean()).backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
