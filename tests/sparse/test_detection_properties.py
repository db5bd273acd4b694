"""No false negatives: random programs in every front end vs numerical derivatives."""

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

from _detection_programs import OP_NAMES, jax_x64, make_params, program
from diffinterface.sparse.detection import (
    TracerLocalSparsityDetector,
    hessian_sparsity,
    jacobian_sparsity,
)

jax = pytest.importorskip("jax")
jnp = jax.numpy


_x64 = pytest.fixture(autouse=True)(jax_x64)


programs = st.tuples(
    st.lists(st.sampled_from(OP_NAMES), min_size=1, max_size=4),
    st.sampled_from([6, 8]),
    st.integers(0, 2**31 - 1),
)


def _numeric(names, params, x):
    f = program(names, params, jnp, jnp.asarray)
    xj = jnp.asarray(x)
    J = np.asarray(jax.jacfwd(f)(xj))

    def g(x):
        y = f(x)
        return jnp.sum(jnp.sin(y) * (1.0 + jnp.arange(y.shape[0])))

    H = np.asarray(jax.hessian(g)(xj))
    return J, H, g


def _covers(pattern, numeric):
    missing = (np.abs(numeric) > 0) & ~pattern.toarray()
    return not missing.any(), np.argwhere(missing)[:5]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs)
def test_no_false_negatives_jax_and_numpy(prog):
    names, n, seed = prog
    rng = np.random.default_rng(seed)
    params = make_params(rng, n)
    x = rng.uniform(-1, 1, n)
    J, H, g = _numeric(names, params, x)
    fnp = program(names, params, np)

    def gnp(x):
        y = fnp(x)
        return np.sum(np.sin(y) * (1.0 + np.arange(y.shape[0])))

    fj = program(names, params, jnp, jnp.asarray)
    for det in (None, TracerLocalSparsityDetector()):
        pj = jacobian_sparsity(fj, jnp.asarray(x), detector=det)
        pn = jacobian_sparsity(fnp, x, detector=det)
        hj = hessian_sparsity(g, jnp.asarray(x), detector=det)
        hn = hessian_sparsity(gnp, x, detector=det)
        for pat, num in ((pj, J), (pn, J), (hj, H), (hn, H)):
            ok, where = _covers(pat, num)
            assert ok, (names, det, where)
        assert (hj != hj.T).nnz == 0
        # the same function in jax.numpy and numpy gives the same pattern
        assert (pj != pn).nnz == 0, names
        assert (hj != hn).nnz == 0, names


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs)
def test_no_false_negatives_many(prog):
    test_no_false_negatives_jax_and_numpy.hypothesis.inner_test(prog)
