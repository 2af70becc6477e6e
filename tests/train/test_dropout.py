"""The CPU dropout kernel: F.dropout's semantics, the mask of graphtrain's counter RNG, exactly."""
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from graphtrain.kernels.rng import rand_u64_np
from graphtrain.train.dropout import _draw_key, _threshold, dropout, relu_dropout


def _reference_keep(key, n: int, p: float) -> np.ndarray:
    """bool [n]: element i is kept when 32-bit draw i (low, then high half of word i // 2) >= the threshold."""
    words = rand_u64_np(key, np.arange((n + 1) // 2, dtype=np.uint64))
    halves = np.stack([words & np.uint64(0xFFFFFFFF), words >> np.uint64(32)], axis=1).reshape(-1)[:n]
    return halves >= _threshold(p)


@pytest.mark.parametrize("shape", [(33, 17), (1000,), (1,), (4, 5, 6)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_and_gradient_equal_the_numpy_reference(shape, dtype):
    p = 0.3
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    torch.manual_seed(11)
    y = dropout(x, p)
    torch.manual_seed(11)
    keep = _reference_keep(_draw_key(), x.numel(), p).reshape(shape)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    scale = np_dtype(1 / (1 - p))
    expected = x.detach().numpy() * (scale * keep.astype(np_dtype))
    np.testing.assert_array_equal(y.detach().numpy(), expected)
    g = torch.randn(shape, dtype=dtype)
    y.backward(g)
    np.testing.assert_array_equal(x.grad.numpy(), g.numpy() * (scale * keep.astype(np_dtype)))


@pytest.mark.parametrize("p", [0.05, 0.2, 0.5, 0.9])
def test_drop_rate_and_pair_independence(p):
    n = 1_000_000
    torch.manual_seed(0)
    kept = (dropout(torch.ones(n), p) != 0).numpy()
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs((1 - kept.mean()) - p) < 6 * sigma
    # the two halves of one 64-bit word are independent: both dropped with probability p**2
    both = (~kept[0::2] & ~kept[1::2]).mean()
    assert abs(both - p * p) < 6 * np.sqrt(p * p * (1 - p * p) / (n // 2))
    # kept elements are scaled by 1 / (1 - p)
    y = dropout(torch.full((1000,), 2.0), p)
    assert torch.all((y == 0) | torch.isclose(y, torch.tensor(2.0 / (1 - p))))


def test_masks_follow_torch_seed():
    x = torch.ones(10_000)
    torch.manual_seed(5)
    a = dropout(x, 0.5)
    b = dropout(x, 0.5)
    torch.manual_seed(5)
    c = dropout(x, 0.5)
    assert torch.equal(a, c)
    assert not torch.equal(a, b)  # a new stream key per call


def test_identity_cases_and_errors():
    x = torch.randn(10, 4)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        dropout(x, 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        dropout(x, -0.1)
    assert dropout(torch.zeros(0, 3), 0.5).shape == (0, 3)


def test_non_contiguous_input_matches_its_contiguous_copy():
    x = torch.randn(40, 30).t()
    assert not x.is_contiguous()
    torch.manual_seed(2)
    a = dropout(x, 0.4)
    torch.manual_seed(2)
    b = dropout(x.contiguous(), 0.4)
    assert torch.equal(a, b)


def test_other_dtypes_use_torch_dropout():
    x = torch.ones(10_000, dtype=torch.bfloat16)
    torch.manual_seed(1)
    y = dropout(x, 0.5)
    torch.manual_seed(1)
    assert torch.equal(y, F.dropout(x, 0.5, True))


@pytest.mark.parametrize("shape", [(33, 17), (7,)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_relu_dropout_equals_relu_then_dropout(shape, dtype):
    """The fused pass gives dropout(relu(x))'s values and gradients (the same mask, from the same key)."""
    x = torch.randn(shape, dtype=dtype)
    x.view(-1)[0] = 0.0  # ReLU's gradient at 0 is 0 in both
    g = torch.randn(shape, dtype=dtype)
    results = []
    for fused in (True, False):
        xi = x.clone().requires_grad_(True)
        torch.manual_seed(4)
        y = relu_dropout(xi, 0.3) if fused else dropout(torch.relu(xi), 0.3)
        y.backward(g)
        results.append((y.detach(), xi.grad))
    (y1, g1), (y2, g2) = results
    assert torch.equal(y1, y2)  # -0.0 == 0.0 where a negative input is dropped
    assert torch.equal(g1, g2)
    assert torch.equal(relu_dropout(x, 0.3, training=False), torch.relu(x))
    assert torch.equal(relu_dropout(x, 0.0), torch.relu(x))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        relu_dropout(x, 1.0)


def test_relu_dropout_other_dtypes_use_torch():
    x = torch.randn(1000).to(torch.bfloat16)
    torch.manual_seed(1)
    y = relu_dropout(x, 0.5)
    torch.manual_seed(1)
    assert torch.equal(y, F.dropout(torch.relu(x), 0.5, True))


def test_keyed_dropout_is_torch_dropout_with_an_explicit_generator():
    """The models' default path: F.dropout(F.relu(x))'s CPU algorithm, the mask from the layer's key,
    the same values and gradients as F.dropout after torch.manual_seed(key)."""
    from graphtrain.train.dropout import keyed_relu_dropout

    x = torch.randn(300, 40)
    g = torch.randn(300, 40)
    got, want = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    y = keyed_relu_dropout(got, 0.3, (1234, False))
    torch.manual_seed(1234)
    z = F.dropout(F.relu(want), 0.3, True)
    assert torch.equal(y, z)
    y.backward(g)
    z.backward(g)
    assert torch.equal(got.grad, want.grad)
    # the fused kernel (opt-in) keys its counter stream with the same key: other draws, same semantics
    fused = keyed_relu_dropout(x, 0.3, (1234, True))
    keep = _reference_keep(np.uint64(1234), x.numel(), 0.3).reshape(x.shape) & (x.numpy() > 0)
    np.testing.assert_array_equal(fused.numpy(), x.numpy() * (np.float32(1 / 0.7) * keep.astype(np.float32)))


def test_a_step_generator_keys_the_layers_and_leaves_the_global_rng_alone():
    from graphtrain.train.dropout import draw_layer_key, step_randomness
    from graphtrain.train.models import GNN, ModelConfig

    torch.manual_seed(0)
    model = GNN(ModelConfig("sage", in_channels=8, out_channels=2, hidden_channels=16, num_layers=3, dropout=0.5)).train()
    x, ei = torch.randn(50, 8), torch.randint(0, 50, (2, 200))
    outs = []
    for _ in range(2):
        before = torch.get_rng_state()
        with step_randomness(torch.Generator().manual_seed(77)):
            outs.append(model(x, ei))
        assert torch.equal(torch.get_rng_state(), before)  # no draw from torch's global generator
    assert torch.equal(outs[0], outs[1])  # the step's generator fixes every mask
    with step_randomness(torch.Generator().manual_seed(78)):
        assert not torch.equal(model(x, ei), outs[0])
    gen = torch.Generator().manual_seed(5)
    with step_randomness(gen, fused=True):
        key, fused = draw_layer_key()
    assert fused and key == int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(5)))
    key, fused = draw_layer_key()  # outside a step: torch's default generator, not fused
    assert not fused
