"""Matrix-free linear operators: the Hessian operator ``H_x: v -> ∇²f(x) v``.

``H = hessian_operator(f, backend, x)`` prepares once; ``H @ v`` and
``H @ V`` (a block of k columns, one batched evaluation) apply the Hessian at
the current point; ``H.update(x_new)`` moves to a new point reusing every
compiled function.  ``H.value`` and ``H.gradient`` come from the passes that
build the cached state where the engine computes them anyway (torch,
autograd); JAX's linearization leaves them out of its set-up (1.2-1.7x faster)
unless they were asked for at the previous point, so a Newton loop that asks
for them at every point (``scipy_objective``) pays no extra pass after the
first point, and one that takes its gradient elsewhere does not pay for it.

How the state at one x is cached, per engine:

* JAX: two strategies, measured once at construction.  ``jvp_of_grad`` (a
  jitted forward-over-reverse pass per product, no set-up) and ``linearize``
  (``jax.linearize`` of the gradient built inside ``jax.jit`` at each x, then
  only the tangent sweep per product).  The operator counts the products
  taken at each point and, at a new point, picks the strategy that is cheaper
  for that many products; within a point it switches to ``linearize`` once
  the products taken make the set-up pay for itself.
* torch: the gradient's graph kept with ``create_graph=True``; each product
  is one backward pass through it with ``retain_graph=True``.
* autograd: ``make_vjp`` of the gradient (the kept trace of ``make_hvp``).
* Other pairs (``SecondOrder``, finite differences): every product is a
  fresh gradient-and-HVP evaluation of the pair.

A pytree or n-d ``x`` is seen as its flattened vector: ``H.shape == (n, n)``
with ``n = x.size``, and ``H @ v`` takes and returns flat vectors;
``H.ravel(tree)`` and ``H.unravel(v)`` convert between the two, and
``H.gradient`` has the structure of x.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from diffinterface._arrays import NUMPY, SCALAR, TORCH, check_differentiable, matches_signature, signature, to_like
from diffinterface._errors import InvalidInputError
from diffinterface._timing import block, fastest_of_rounds, fastest_time
from diffinterface.prep import check_update
from diffinterface.backends import Example
from diffinterface.contexts import unwrap_contexts
from diffinterface.tree import is_tree, tree_spec

#: products queued back to back when a strategy's cost per product is timed (see
#: ``HessianOperator._measure``)
PIPELINE = 4

__all__ = ["HessianOperator", "hessian_operator", "RecomputeStrategy"]


class RecomputeStrategy:
    """Generic strategy: each product re-evaluates the pair's gradient-and-HVP."""

    name = "recompute"

    def __init__(self, engine, f, ex: Example) -> None:
        self._engine, self._f, self._ex = engine, f, ex
        self._by_batch: dict[int, Callable] = {}
        self._value = engine.inner.build_value(f, ex, True)

    def _fn(self, batch: int) -> Callable:
        fn = self._by_batch.get(batch)
        if fn is None:
            ex = Example(self._ex.x_shape, self._ex.x_dtype, (), self._ex.y_dtype, batch)
            fn = self._by_batch[batch] = self._engine.build_gradient_and_hvp(self._f, ex, True)
        return fn

    def setup(self, x, ctx):
        return {"x": x, "ctx": ctx}

    def apply(self, state, tangents):
        single = np.ndim(tangents) == len(self._ex.x_shape)
        batch = (tangents,) if single else tuple(tangents[i] for i in range(tangents.shape[0]))
        g, products = self._fn(len(batch))(state["x"], batch, *state["ctx"])
        state["gradient"] = g
        return products[0] if single else self._engine.stack(list(products))

    def value_and_gradient(self, state):
        if "gradient" not in state:
            g, _ = self._fn(1)(state["x"], (state["x"] * 0,), *state["ctx"])
            state["gradient"] = g
        if "value" not in state:
            state["value"] = self._value(self._engine.inner.to_native(state["x"]), *state["ctx"])
        return state["value"], state["gradient"]


class HessianOperator:
    """The Hessian of a scalar ``f`` at a point, as a matrix-free linear map.

    Build it with :func:`hessian_operator`.  ``H @ v`` for ``v`` of shape
    ``(n,)`` and ``H @ V`` for ``(n, k)`` (one batched evaluation);
    ``H.update(x_new)`` moves to a new point and returns ``H``;
    ``H.value``/``H.gradient`` are ``f`` and ``∇f`` (shaped like x) at the
    current point; ``H.aslinearoperator()`` is a SciPy ``LinearOperator``.
    The operator holds its own copy of x.
    """

    def __init__(self, f: Callable, backend: Any, x: Any, *contexts: Any) -> None:
        from diffinterface.backends._second_order import get_second_order_engine

        engine = get_second_order_engine(backend)
        self._engine = engine
        self._f = f
        self._spec = None
        if is_tree(x):  # a pytree x: the operator acts on its flat vector
            from diffinterface.prep import flat_function

            self._spec = tree_spec(x)
            x = self._spec.ravel(x)
            f = flat_function(self._f, self._spec, tree_output=False)
        self._f_engine = f
        self.backend = backend
        self._kind = check_differentiable("x", x, engine.accepts, engine.display)
        self._sig = signature(x)
        self._ctx_kinds = tuple(type(c) for c in contexts)
        self._contexts = contexts
        self._ctx = unwrap_contexts(contexts, engine)
        self._sparse_prep = None
        xn = engine.copy_native(engine.to_native(x))
        y_shape, y_dtype = engine.output_info(f, xn, self._ctx, True)
        # the tangent that times the strategies, made before staging: eager arithmetic on a
        # staged float64 JAX array outside x64 mode would give float32
        probe = engine.stage(xn * 0 + 1)
        xn = engine.stage(xn)
        if y_shape != ():
            raise InvalidInputError(
                f"hessian_operator needs a scalar-valued f, but f returned shape {y_shape}; "
                "for vector functions use di.jacobian_operator or di.gauss_newton_operator"
            )
        self._x_shape = tuple(np.shape(xn))
        self._x = xn
        self.n = int(np.prod(self._x_shape))
        self.shape = (self.n, self.n)
        self.dtype = np.dtype(str(xn.dtype).replace("torch.", ""))
        ex = Example(self._x_shape, xn.dtype, y_shape, y_dtype, 1)
        self._strategies = engine.hessian_operator_strategies(self._f_engine, ex)
        self._costs = self._measure(xn, probe) if len(self._strategies) > 1 else None
        self._expected_products = 1
        self._products_here = 0
        self._gradient_expected = False  # whether f / ∇f are asked for at a point (learned as products are)
        self._gradient_here = False
        self._strategy = None
        self._state = None
        self._choices: dict[int, int] = {}  # strategy index by expected number of products
        # JAX: blocks either by a strategy needing no state at x (``columns_at``) or by a
        # stateful one's ``apply_columns``, whichever the first block of each size measures
        # faster, set-up included (so a block never pays for a linearization it would not use)
        self._setup_free_blocks = next((s for s in self._strategies if hasattr(s, "columns_at")), None)
        self._block_choice: dict[int, tuple] = {}  # k -> (strategy index or None: setup-free, column mode)
        # the hot paths of update and H @ v: an array x / v of the type, shape, dtype (and
        # device) seen here needs no validation beyond this comparison
        self._plain = self._spec is None and len(self._x_shape) == 1 and self._sig[1:2] == (self._x_shape,)
        self._native_input = self._kind == getattr(engine, "native_kind", None) and self._kind not in (NUMPY, SCALAR)
        self.products = 0  # total number of Hessian-vector products taken

    # --- strategy choice ---------------------------------------------------
    def _measure(self, xn, tangent) -> list[tuple[float, float]]:
        """(set-up seconds, seconds per product) of each strategy at x.

        A product is timed as it runs in a Newton loop: ``PIPELINE`` products queued
        back to back and waited for once (JAX and CUDA run asynchronously, so a product
        timed alone would also count the wait for its result, the same for every
        strategy, and overstate the cost of cheap products: at n = 1e4 that made 10
        jvp-of-grad products look cheaper than a linearization plus 10 of its
        products, which run 2x faster in the loop).  The set-up is a set-up and one
        product, waited for, less that product.  The fastest of rounds that
        alternate the strategies (``fastest_of_rounds``), so a burst of load elsewhere on
        the machine hits all of them alike instead of deciding the choice."""
        states = []
        for strategy in self._strategies:
            setup = getattr(strategy, "setup_products_only", strategy.setup)
            for _ in range(2):  # compile, then warm caches
                state = setup(xn, self._ctx)
                block(state)
                block(strategy.apply(state, tangent))
            states.append(state)
        runs = []  # per strategy: set-up + first product, then PIPELINE products queued
        for strategy, state in zip(self._strategies, states):
            setup = getattr(strategy, "setup_products_only", strategy.setup)
            runs.append(lambda strategy=strategy, setup=setup: fastest_time(
                lambda: strategy.apply(setup(xn, self._ctx), tangent), repeats=1))
            runs.append(lambda strategy=strategy, state=state: fastest_time(
                lambda: [strategy.apply(state, tangent) for _ in range(PIPELINE)], repeats=1) / PIPELINE)
        seconds = fastest_of_rounds(runs)
        return [(max(first - product, 0.0), product) for first, product in zip(seconds[::2], seconds[1::2])]

    def _choose(self, products: int) -> int:
        if self._costs is None:
            return 0
        index = self._choices.get(products)
        if index is None:
            totals = [setup + products * apply for setup, apply in self._costs]
            index = self._choices[products] = totals.index(min(totals))
        return index

    @property
    def strategy(self) -> str:
        """The name of the strategy in use at the current point."""
        index = self._strategy if self._strategy is not None else self._choose(self._expected_products)
        return self._strategies[index].name

    def _ensure_state(self, upcoming: int = 1):
        if self._state is None:
            self._strategy = self._choose(max(self._expected_products, upcoming))
            self._state = self._setup(self._strategy)
        elif self._costs is not None:
            # within a point, rent-or-buy: switch to a strategy with cheaper
            # products once the extra cost paid so far would have bought its set-up
            taken = self._products_here + upcoming
            apply_now = self._costs[self._strategy][1]
            for index, (setup, apply) in enumerate(self._costs):
                if apply < apply_now and taken * (apply_now - apply) >= setup:
                    self._strategy = index
                    self._state = self._setup(index)
                    break
        return self._strategies[self._strategy], self._state

    def _setup(self, index: int) -> Any:
        """Strategy ``index``'s state at the current x: with f and ∇f where they were
        asked for at the previous point (or are asked for at this one), else the
        products-only set-up where the strategy has one (JAX's linearization)."""
        strategy = self._strategies[index]
        if self._gradient_here or self._gradient_expected or not hasattr(strategy, "setup_products_only"):
            return strategy.setup(self._x, self._ctx)
        return strategy.setup_products_only(self._x, self._ctx)

    # --- the public operator interface -------------------------------------
    def ravel(self, tree: Any) -> Any:
        """A pytree shaped like x as the flat vector the operator acts on."""
        return tree if self._spec is None else self._spec.ravel(tree)

    def unravel(self, v: Any) -> Any:
        """A flat vector (a product ``H @ v``, say) as a pytree shaped like x."""
        return v if self._spec is None else self._spec.unravel(v)

    def update(self, x: Any, *contexts: Any) -> "HessianOperator":
        """Move to a new point (same type, shape and dtype); returns ``self``."""
        sig = self._sig
        if not (self._plain and not contexts and matches_signature(x, sig)):
            if self._spec is not None:
                x = self._spec.ravel(x)
            check_update(sig, self._ctx_kinds, x, contexts, "hessian_operator")
            if contexts:
                self._ctx = unwrap_contexts(contexts, self._engine)
                self._contexts = contexts
        engine = self._engine
        self._x = engine.stage(engine.copy_native(engine.to_native(x)))
        if self._products_here or self._gradient_here:
            self._gradient_expected = self._gradient_here
        if self._products_here:
            self._expected_products = self._products_here
        self._products_here = 0
        self._gradient_here = False
        self._state = None
        self._strategy = None
        return self

    @property
    def x(self) -> Any:
        """A copy of the current point."""
        return self._out(self._engine.copy_native(self._x), shape=self._x_shape)

    @property
    def value(self) -> Any:
        """``f`` at the current point."""
        self._gradient_here = True
        strategy, state = self._ensure_state(0)
        y, _ = strategy.value_and_gradient(state)
        y = np.asarray(y) if self._kind in (NUMPY, SCALAR) else y
        return y[()] if self._kind in (NUMPY, SCALAR) else y

    @property
    def gradient(self) -> Any:
        """``∇f`` at the current point, shaped like x (a fresh copy: callers such
        as SciPy may modify it in place without touching the cached state)."""
        self._gradient_here = True
        strategy, state = self._ensure_state(0)
        _, g = strategy.value_and_gradient(state)
        if self._kind in (NUMPY, SCALAR):
            g = np.array(g, dtype=self.dtype).reshape(self._x_shape)
        else:
            g = self._engine.copy_native(g).reshape(self._x_shape)
        return self.unravel(g)

    def _out(self, result: Any, shape: tuple) -> Any:
        if self._kind in (NUMPY, SCALAR):
            return to_like(result, NUMPY).reshape(shape)
        return result if tuple(result.shape) == tuple(shape) else result.reshape(shape)

    def matvec(self, v: Any) -> Any:
        """``H v`` for a flat ``v`` of shape ``(n,)``; same as ``H @ v``."""
        return self @ v

    def __matmul__(self, v: Any) -> Any:
        sig = self._sig
        if self._plain and self._native_input and type(v) is sig[0] and v.shape == sig[1]:
            strategy, state = self._ensure_state(1)
            result = strategy.apply(state, v)  # device and dtype: as the strategy's own product checks
            self._products_here += 1
            self.products += 1
            return result
        shape = tuple(v.shape) if hasattr(v, "shape") else tuple(np.shape(v))
        if shape == (self.n,) or (shape == () and self.n == 1 and self._x_shape == ()):
            batch, stacked = 1, False
        elif len(shape) == 2 and shape[0] == self.n:
            batch, stacked = shape[1], True
        else:
            raise InvalidInputError(
                f"H @ v needs v of shape ({self.n},) or ({self.n}, k), got {shape}; "
                "n-d and pytree x are seen as flat vectors"
            )
        native = self._engine.to_native(_as_native_input(v, self._kind))
        if stacked and self._setup_free_blocks is not None:
            result = self._block(native, batch)
        else:
            strategy, state = self._ensure_state(batch)
            if not stacked:
                # reshape only when needed: an eager JAX reshape costs as much as a small product
                tangent = native if tuple(native.shape) == self._x_shape else native.reshape(self._x_shape)
                result = strategy.apply(state, tangent)
            else:  # contiguous k-leading seeds: products on strided columns cost 2-3x more
                from diffinterface.backends._jacobian_strategies import k_leading

                # a fresh buffer per block: a product may return its seed (f quadratic in a
                # way autograd passes the cotangent through), so a reused one could alias results
                seeds = k_leading(native, batch, self._x_shape)
                result = strategy.apply(state, seeds).reshape(batch, self.n).T
        self._products_here += batch
        self.products += batch
        if stacked:
            return to_like(result, NUMPY) if self._kind in (NUMPY, SCALAR) else result
        return self._out(result, shape=(self.n,) if shape else ())

    def _block(self, V: Any, k: int) -> Any:
        """``H @ V`` for engines with a setup-free block path (see ``__init__``): that
        path or a stateful strategy's columns, each in each of the engine's column
        modes, whichever the first block of this size measures fastest."""
        if k not in self._block_choice:
            free = self._setup_free_blocks
            options = []  # ((strategy index or None for the setup-free path, mode), run)
            for mode in free.column_modes:
                options.append(((None, mode), (lambda m: lambda: free.columns_at(self._x, self._ctx, V, m))(mode)))
                options += [((i, mode), (lambda i, s, m: lambda: s.apply_columns(self._setup(i), V, m))(i, s, mode))
                            for i, s in enumerate(self._strategies) if s is not free and hasattr(s, "apply_columns")]
            for _, run in options:
                block(run())  # compile
                block(run())  # warm up
            costs = fastest_of_rounds([lambda run=run: fastest_time(run, repeats=1) for _, run in options])
            self._block_choice[k] = options[costs.index(min(costs))][0]
        index, mode = self._block_choice[k]
        if index is None:
            return self._setup_free_blocks.columns_at(self._x, self._ctx, V, mode)
        if self._state is None or self._strategy != index:
            self._strategy, self._state = index, self._setup(index)
        return self._strategies[index].apply_columns(self._state, V, mode)

    def rmatvec(self, v: Any) -> Any:
        """``Hᵀ v = H v`` (the Hessian is symmetric)."""
        return self @ v

    def aslinearoperator(self):
        """A ``scipy.sparse.linalg.LinearOperator`` (matvec, matmat, rmatvec, rmatmat)."""
        from scipy.sparse.linalg import LinearOperator

        to_numpy = (lambda a: a.detach().cpu().numpy()) if self._kind == TORCH else np.asarray
        return LinearOperator(
            self.shape,
            matvec=lambda v: to_numpy(self @ _from_numpy(v.reshape(-1), self._kind, self._x)),
            matmat=lambda m: to_numpy(self @ _from_numpy(m, self._kind, self._x)),
            rmatvec=lambda v: to_numpy(self @ _from_numpy(v.reshape(-1), self._kind, self._x)),
            rmatmat=lambda m: to_numpy(self @ _from_numpy(m, self._kind, self._x)),
            dtype=self.dtype,
        )

    def todense(self) -> np.ndarray:
        """The dense Hessian at the current point as a NumPy array (n x n): n products."""
        return np.asarray(self.aslinearoperator() @ np.eye(self.n, dtype=self.dtype))

    def tosparse(self) -> Any:
        """The Hessian at the current point as a sparse matrix (for direct solvers).

        With an ``AutoSparse`` backend this is the compressed sparse Hessian
        (prepared once, reused at every point); otherwise the dense Hessian from
        ``n`` products, stored sparse.  Same sparse types as ``di.hessian``.
        """
        x = self.x
        if getattr(self.backend, "dense_backend", None) is not None:
            from diffinterface.operators.second_order import hessian, prepare_hessian

            if self._sparse_prep is None:
                self._sparse_prep = prepare_hessian(self._f_engine, self.backend, x, *self._contexts)
            return hessian(self._f_engine, self.backend, x, *self._contexts, prep=self._sparse_prep)
        from diffinterface.sparse._autosparse import to_sparse_like

        return to_sparse_like(self.todense() if self._kind in (NUMPY, SCALAR) else self._native_dense(), self._kind)

    def _native_dense(self) -> Any:
        eye = self._engine.to_native(np.eye(self.n, dtype=self.dtype))
        if self._kind == TORCH:
            eye = eye.to(self._x.device)
        return self @ eye

    def __repr__(self) -> str:
        return f"HessianOperator(shape={self.shape}, dtype={self.dtype}, backend={self.backend!r}, strategy={self.strategy})"


def _as_native_input(v: Any, kind: str) -> Any:
    if kind in (NUMPY, SCALAR):
        return np.asarray(v)
    return v


def _from_numpy(v: np.ndarray, kind: str, like: Any) -> Any:
    if kind == TORCH:
        import torch

        return torch.as_tensor(v, dtype=like.dtype, device=like.device)
    if kind not in (NUMPY, SCALAR):
        import jax.numpy as jnp

        return jnp.asarray(v, dtype=like.dtype)
    return v


def hessian_operator(f: Callable, backend: Any, x: Any, *contexts: Any) -> HessianOperator:
    """The Hessian of scalar ``f`` at ``x`` as a matrix-free operator.

    >>> import numpy as np, diffinterface as di
    >>> H = di.hessian_operator(lambda x: np.sum(x ** 3), di.AutoFiniteDiff(), np.array([1.0, 2.0]))
    >>> (H @ np.array([1.0, 0.0])).round(4)
    array([6., 0.])
    >>> (H.update(np.array([2.0, 2.0])) @ np.array([1.0, 1.0])).round(4)
    array([12., 12.])
    """
    return HessianOperator(f, backend, x, *contexts)
