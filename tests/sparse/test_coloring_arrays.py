"""Decompression of JAX and torch compressed matrices: result type, device, values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from diffinterface.sparse.coloring import GreedyColoringAlgorithm, coloring

CASES = [
    ("column", dict(partition="column")),
    ("row", dict(partition="row")),
    ("star", dict(structure="symmetric")),
    ("acyclic", dict(structure="symmetric",
                     algorithm=GreedyColoringAlgorithm(decompression="substitution"))),
]
IDS = [c[0] for c in CASES]


def _decompressed(problem, kw, convert):
    """(matrix, its compressed form as NumPy, as converted, the decompressed result)."""
    rng = np.random.default_rng(0)
    a = sp.random(30, 30, density=0.12, rng=rng, format="csr")
    if problem in ("star", "acyclic"):
        a = sp.triu(a) + sp.triu(a, k=1).T + sp.eye_array(30)
    a = sp.csr_array(a)
    res = coloring(a, **kw)
    seed = res.seed_matrix()
    b = np.asarray(seed.T @ a if res.problem == "row" else a @ seed)
    conv = convert(b)
    return a, b, conv, res, res.decompress(conv)


@pytest.mark.parametrize("problem,kw", CASES, ids=IDS)
def test_jax_decompression(problem, kw):
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    from jax.experimental import sparse as jsparse

    a, _, b, res, out = _decompressed(problem, kw, jnp.asarray)
    assert isinstance(out, jsparse.BCOO)
    assert out.shape == a.shape
    np.testing.assert_allclose(np.asarray(out.todense()), a.toarray(), rtol=0, atol=1e-14)
    # under jit too (indices become constants of the trace)
    dense = jax.jit(lambda x: res.decompress(x).todense())(b)
    np.testing.assert_allclose(np.asarray(dense), a.toarray(), rtol=0, atol=1e-14)
    assert next(iter(out.data.devices())) == next(iter(b.devices()))


@pytest.mark.parametrize("problem,kw", CASES, ids=IDS)
def test_torch_decompression(problem, kw):
    torch = pytest.importorskip("torch")

    a, b_np, b, res, out = _decompressed(problem, kw, torch.as_tensor)
    assert out.layout == torch.sparse_csr
    assert out.device == b.device and out.dtype == b.dtype
    np.testing.assert_allclose(out.to_dense().numpy(), a.toarray(), rtol=0, atol=1e-14)
    np.testing.assert_array_equal(out.crow_indices().numpy(), a.indptr)
    # substitution leaves its input alone
    np.testing.assert_array_equal(b.numpy(), b_np)


@pytest.mark.parametrize("library", ["jax", "torch"])
def test_bidirectional_decompression(library):
    mod = pytest.importorskip(library)
    convert = mod.numpy.asarray if library == "jax" else mod.as_tensor
    rng = np.random.default_rng(1)
    a = sp.random(25, 20, density=0.15, rng=rng, format="lil")
    a[0, :] = 1.0  # a dense row: the row products pay off
    a = sp.csr_array(a)
    res = coloring(a, partition="bidirectional")
    s_r, s_c = res.seed_matrix()
    out = res.decompress((convert(np.asarray(s_r.T @ a)), convert(np.asarray(a @ s_c))))
    dense = out.todense() if library == "jax" else out.to_dense()
    np.testing.assert_allclose(np.asarray(dense), a.toarray(), rtol=0, atol=1e-14)
