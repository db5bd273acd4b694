"""Random programs for the sparsity-detection property tests (numpy / jax.numpy / torch)."""

import numpy as np

# each op: (name, needs_even_n) -> f(x, xp, rng_params) ; all keep the length n


def _ops(xp):
    def roll(x, p):
        return xp.roll(x, p["k"], 0) * 2.0 + x

    return {
        "exp": lambda x, p: xp.exp(x * 0.1),
        "sin": lambda x, p: xp.sin(x),
        "tanh": lambda x, p: xp.tanh(x),
        "square": lambda x, p: x * x,
        "mul_roll": lambda x, p: x * xp.roll(x, p["k"], 0),
        "add_flip": lambda x, p: x + xp.flip(x, 0),
        "roll": roll,
        "partial_sum": lambda x, p: x + xp.sum(x[p["a"]:p["b"]]),
        "matvec": lambda x, p: p["A"] @ x,
        "cumsum": lambda x, p: xp.cumsum(x, 0),
        "where": lambda x, p: xp.where(x > 0.3, x, x ** 2),
        "maximum": lambda x, p: xp.maximum(x, xp.flip(x, 0)),
        "transpose": lambda x, p: (x.reshape(2, -1).T).reshape(-1),
        "swap_halves": lambda x, p: xp.concatenate([x[x.shape[0] // 2:], x[: x.shape[0] // 2]]),
        "permute": lambda x, p: x[p["perm"]],
        "prod_slice": lambda x, p: x * xp.prod(x[p["a"]:p["b"]]),
        "divide": lambda x, p: x / (2.0 + xp.roll(x, p["k"], 0) ** 2),
        "pow": lambda x, p: (x * x + 1.0) ** 1.5,
        "outer_sum": lambda x, p: xp.sum(xp.reshape(x, (2, -1)) * 2.0, 0).repeat(2) if xp is np
        else xp.repeat(xp.sum(xp.reshape(x, (2, -1)) * 2.0, 0), 2),
        "round_product": lambda x, p: x + xp.round(x * xp.roll(x, 1, 0)),
        "pad_slice": lambda x, p: xp.pad(x, (2, 2))[1:-3] + x,
        "sort": lambda x, p: xp.sort(x),
        "max_reduce": lambda x, p: x * xp.max(x[p["a"]:p["b"]]),
    }


OP_NAMES = sorted(_ops(np))


def make_params(rng, n):
    a = int(rng.integers(0, n - 1))
    b = int(rng.integers(a + 1, n + 1))
    A = rng.standard_normal((n, n)) * (rng.random((n, n)) < 0.15)
    return {"k": int(rng.integers(1, n)), "a": a, "b": b, "A": A, "perm": rng.permutation(n)}


def program(names, params, xp, convert=None):
    """f(x) applying the named ops in order; ``convert`` turns numpy constants into xp arrays."""
    ops = _ops(xp)
    conv = convert or (lambda a: a)
    p = {k: conv(v) if isinstance(v, np.ndarray) else v for k, v in params.items()}

    def f(x):
        for nm in names:
            x = ops[nm](x, p)
        return x

    return f


def jax_x64():
    """Fixture body: float64 in JAX for the duration of one test only."""
    import jax

    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)
