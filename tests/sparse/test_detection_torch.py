"""PyTorch front end: exact patterns, agreement with NumPy, local rules, errors."""

import numpy as np
import pytest

from _detection_programs import OP_NAMES, make_params, program
from diffinterface._errors import UnsupportedOperationError
from diffinterface.sparse.detection import TracerLocalSparsityDetector, hessian_sparsity, jacobian_sparsity
from diffinterface.testing.problems import CUTEST, brusselator_2d, brusselator_pattern, cutest_x0

torch = pytest.importorskip("torch")
LOCAL = TracerLocalSparsityDetector()


def test_brusselator_exact():
    x = torch.rand(2 * 16, dtype=torch.float64)
    assert (jacobian_sparsity(brusselator_2d, x) != brusselator_pattern(4)).nnz == 0


@pytest.mark.parametrize("name", sorted(CUTEST))
def test_cutest_hessian_exact_and_same_as_numpy(name):
    f = CUTEST[name]
    x0 = cutest_x0(12, seed=1)
    H = torch.autograd.functional.hessian(lambda x: f(x, torch), torch.tensor(x0)).numpy() != 0
    pat = hessian_sparsity(lambda x: f(x, torch), torch.tensor(x0))
    assert (pat.toarray() == H).all()
    assert (pat != hessian_sparsity(lambda x: f(x, np), x0)).nnz == 0


TORCH_OPS = [n for n in OP_NAMES if n not in ("transpose", "swap_halves", "outer_sum", "pad_slice")]


@pytest.mark.parametrize("name", TORCH_OPS)
def test_ops_cover_numeric_jacobian(name):
    """Single ops written for torch: no false negatives against torch.func."""
    rng = np.random.default_rng(3)
    n = 8
    params = make_params(rng, n)
    ops = {"roll": lambda x, k, a: torch.roll(x, k, a), "flip": lambda x, a: torch.flip(x, (a,)),
           "concatenate": torch.cat}
    xp = type("xp", (), {})
    for nm in ("exp", "sin", "tanh", "sum", "cumsum", "where", "maximum", "prod", "sort", "max",
               "repeat_interleave", "reshape", "round"):
        setattr(xp, nm, staticmethod(getattr(torch, nm)))
    xp.roll = staticmethod(ops["roll"])
    xp.flip = staticmethod(ops["flip"])
    xp.sort = staticmethod(lambda x: torch.sort(x).values)
    f = program([name], params, xp, lambda a: torch.as_tensor(a))
    x = torch.tensor(rng.uniform(-1, 1, n))
    J = torch.func.jacrev(f)(x).numpy() != 0
    for det in (None, LOCAL):
        pat = jacobian_sparsity(f, x, detector=det).toarray()
        assert not (J & ~pat).any(), (name, det)


def test_local_and_errors():
    x = torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)
    assert jacobian_sparsity(torch.relu, x).nnz == 3
    assert (jacobian_sparsity(torch.relu, x, detector=LOCAL).toarray() == np.diag([1, 0, 1])).all()
    with pytest.raises(UnsupportedOperationError, match="TracerLocalSparsityDetector"):
        jacobian_sparsity(lambda x: x if x[0] > 0 else -x, x)
