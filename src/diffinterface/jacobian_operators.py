"""Functions as linear maps: the Jacobian operator.

``J = jacobian_operator(f, backend, x)`` is the Jacobian of ``f`` at ``x`` as
a matrix-free map of shape ``(m, n)`` with ``m = f(x).size`` and ``n =
x.size``: ``J @ v`` is a JVP, ``J.T @ w`` and ``w @ J`` are VJPs, ``J @ V``
(``V`` of shape ``(n, k)``) and ``J.T @ W`` (``(m, k)``) take a block of k
columns in one batched evaluation.  Inputs and outputs of any shape are seen
as flat vectors (C order); ``J.ravel(a)`` flattens an array shaped like x or
f(x), ``J.unravel(v)`` gives a flat vector the shape of x (n entries) or of
f(x) (m entries).

``J.update(x_new)`` moves to a new point (same type, shape, dtype) reusing
everything prepared: no new trace or compile.  The operator holds its own
copy of x.  What is cached at one point depends on the engine and is chosen
by measurement (see ``backends/_jacobian_strategies.py``):

* JAX: ``linearize`` (linearization and its ``jax.linear_transpose`` built
  inside ``jax.jit``; products are linear sweeps) or ``recompute`` (a jitted
  JVP or VJP per product; nothing kept); neither computes f(x) unless
  ``value`` is asked for;
* torch: ``kept_graph`` (the forward graph kept, built at the first VJP, or
  with the first JVP when that comes first and the point's workload takes VJPs:
  one forward-mode pass through f with x requiring grad gives both; VJPs are
  backward passes with ``retain_graph=True``, JVPs ``torch.func.jvp``),
  ``double_backward`` (JVPs by a backward pass through the kept graph of
  ``u -> Jᵀu``) or ``recompute`` (``torch.func.jvp`` / ``torch.func.vjp`` per
  product, nothing kept; a block of VJPs is one ``torch.func.vmap`` of the
  pullback: matrix-matrix products for dense layers);
* autograd: ``make_vjp`` (the kept trace, built at the first VJP; JVPs by
  ``make_jvp``) or ``vjp_of_vjp`` (JVPs through the trace of ``u -> Jᵀu``);
* finite differences: JVPs by differences, VJPs through the Jacobian (built
  once per point, on the first VJP).

The strategies of an engine are timed once at construction (set-up, the
per-kind preparations, JVP and VJP cost, products queued back to back as a
solver runs them, and a first JVP that builds the graph where a strategy
can; in alternating rounds, the fastest of each; with an ``AutoSparse``
backend at the first product instead, so an operator used only for ``value``
and ``tosparse()`` never compiles them).  Products that two
strategies run with the same code (torch's VJPs through the kept forward graph
in ``kept_graph`` and ``double_backward``, say) are timed once and share the
cost, so timing noise never decides between equal products.  A strategy
that raises on f there is skipped for what it failed: a torch f through an
``autograd.Function`` without ``setup_context`` (which ``torch.func``
refuses) runs on ``double_backward``; a JAX f with a ``custom_vjp`` serves
VJPs, while its JVPs raise JAX's own error.
The first block of each kind and size (``J @ V``, ``J.T @ W``, ``G @ V``)
and the first ``G @ v`` time every strategy in each of its modes (vmap, a
loop of single products, for JAX ``lax.map`` inside the jitted call; for
``G @ v`` one fused call or a JVP then a VJP): which is fastest depends on f
by 2-3x either way.  At each new point the operator takes the strategy
cheapest for the products taken at the previous point (singles and blocks),
and within a point, once the products taken exceed that workload, it
switches when they make a costlier set-up pay for itself.  When the first
strategy costs under ``MEASURE_ABOVE_S`` (0.1 ms) for a set-up and one
product of each kind, call overhead dominates and it is used alone, in its
default mode.

Blocks ``(size, k)`` go to JAX as they are (the layout change happens inside
the jitted call); torch and NumPy engines take them as one contiguous
``(k, size)`` copy in a buffer the operator reuses (products on strided
columns cost 2-3x more; a block already k-leading in memory, ``Wk.T``, is
used as a view), and the k results are written into one ``(k, size)`` array
returned as its ``(size, k)`` transposed view.

The Gauss-Newton operator built on it lives in ``diffinterface.gauss_newton``.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from diffinterface._arrays import NUMPY, SCALAR, TORCH, check_differentiable, matches_signature, signature
from diffinterface._errors import InvalidInputError, UnsupportedOperationError
from diffinterface._timing import block, fastest_of_rounds
from diffinterface.linear_operators import PIPELINE
from diffinterface.prep import check_update
from diffinterface.backends import Example, get_engine
from diffinterface.contexts import unwrap_contexts

__all__ = ["JacobianOperator", "jacobian_operator"]


#: below this many seconds for (set-up + JVP + VJP) of an engine's first
#: strategy, the others are not measured (tests set it to 0 to exercise them)
MEASURE_ABOVE_S = 1e-4

#: blocks of more columns than this are not timed per strategy and mode (their
#: cost is estimated from the single products; the default mode is used)
BLOCK_MEASURE_MAX = 256

#: twins predicted within this fraction of each other count as a close call (see ``_choose``)
TWIN_MARGIN = 0.10

_UNMEASURED = object()


def _ones_like(a: Any) -> Any:
    if hasattr(a, "detach"):  # torch: same device and dtype
        return a.detach() * 0 + 1
    return np.ones(np.shape(a), dtype=_np_dtype(a.dtype))  # NumPy, and JAX with x64 off


def _test_point(n: int) -> bool:
    """Whether the n-th product at a point runs the rent-or-buy test (see ``_due``)."""
    return (n & (n - 1)) == 0 or n % 16 == 0


def _aliases(result: Any, seeds: Any) -> bool:
    if hasattr(result, "untyped_storage") and hasattr(seeds, "untyped_storage"):
        return result.untyped_storage().data_ptr() == seeds.untyped_storage().data_ptr()
    return isinstance(result, np.ndarray) and isinstance(seeds, np.ndarray) and np.may_share_memory(result, seeds)


def _np_dtype(dtype: Any) -> np.dtype:
    return np.dtype(str(dtype).replace("torch.", ""))


class JacobianOperator:
    """The Jacobian of ``f`` at a point as a matrix-free linear map, shape ``(m, n)``.

    Build it with :func:`jacobian_operator`.  ``J @ v`` (JVP), ``J.T @ w`` and
    ``w @ J`` (VJP), ``J @ V`` / ``J.T @ W`` for blocks; ``J.update(x_new)``
    returns ``J``; ``J.value`` is ``f`` at the current point (shaped like
    f(x)); ``J.aslinearoperator()`` is a SciPy ``LinearOperator``;
    ``J.todense()`` the ``(m, n)`` NumPy matrix; with an ``AutoSparse``
    backend ``J.tosparse()`` the sparse Jacobian (prepared once, reused at
    every point).  Results follow x's library.
    """

    __array_ufunc__ = None  # ``ndarray @ J`` defers to ``J.__rmatmul__``

    def __init__(self, f: Callable, backend: Any, x: Any, *contexts: Any) -> None:
        from diffinterface.backends._jacobian_strategies import jacobian_strategies

        if not callable(f):
            raise InvalidInputError(f"f must be callable, got {type(f).__name__}")
        self.backend = backend
        self._sparse_backend = getattr(backend, "dense_backend", None) is not None
        engine = get_engine(backend.dense_backend if self._sparse_backend else backend)
        self._engine, self._f = engine, f
        self._kind = check_differentiable("x", x, engine.accepts, engine.display)
        self._sig = signature(x)
        self._ctx_kinds = tuple(type(c) for c in contexts)
        self._ctx = unwrap_contexts(contexts)
        self._contexts = contexts  # as given (the AutoSparse prep of tosparse takes them)
        self._shared = {"sparse_prep": None, "costs": None, "blocks": {}, "decisions": {}}  # shared with forks
        xn = engine.copy_native(engine.to_native(x))
        y_shape, y_dtype = engine.output_info(f, xn, self._ctx, True)
        self._x, self._x_shape, self._y_shape = xn, tuple(np.shape(xn)), tuple(y_shape)
        self.n, self.m = int(np.prod(self._x_shape)), int(np.prod(self._y_shape))
        self.shape = (self.m, self.n)
        self.dtype = np.result_type(_np_dtype(xn.dtype), _np_dtype(y_dtype))
        self._strategies = jacobian_strategies(engine, f, Example(self._x_shape, xn.dtype, self._y_shape, y_dtype, 1))
        self._columns = all(getattr(s, "columns", False) for s in self._strategies)
        # with AutoSparse measured lazily, on the first product (an operator used only for
        # its value and tosparse() never compiles the product strategies); shared with forks
        self._shared["costs"] = None if len(self._strategies) < 2 else (
            _UNMEASURED if self._sparse_backend else self._measure(xn))
        self._expected = {"jvp": 1, "vjp": 1}  # the workload expected at a new point
        self._here: dict = {}  # the workload taken at this point
        self._strategy: int | None = None
        self._state = None
        self.products = {"jvp": 0, "vjp": 0}  # totals, for inspection
        self._workspace: dict = {}  # k-leading copies of blocks, reused (see k_leading)
        self._vectors_native = (self._kind == getattr(engine, "native_kind", None) and self._kind != SCALAR
                                and len(self._x_shape) == 1 and len(self._y_shape) == 1)

    # --- strategy choice ---------------------------------------------------
    # A workload is a dict {key: count} of the products taken at one point: keys "jvp",
    # "vjp", "gn" (one of each, fused) and (kind, k) for blocks of k columns.  Its cost
    # for a strategy: set-up + the lazy per-kind preparations it needs + its products
    # (singles from the costs measured at construction, blocks from the measurement
    # made at the first block of that kind and size, in the fastest block mode).
    @property
    def _costs(self) -> list[tuple[float, ...]] | None:
        if self._shared["costs"] is _UNMEASURED:
            self._shared["costs"] = self._measure(self._x)
        return self._shared["costs"]

    def _measure(self, xn) -> list[tuple[float, ...]] | None:
        """(set-up, JVP preparation, VJP preparation, JVP, VJP, fused first JVP) seconds
        of each strategy at x (the last ``inf`` where the strategy does not fuse, see
        ``Strategy.fuses_first_jvp``); None (use the first) when the first costs under
        ``MEASURE_ABOVE_S`` for a set-up and one product of each kind: then call overhead
        dominates and compiling the others would cost more than they could save.

        A strategy whose set-up or product raises here (torch.func on an
        ``autograd.Function`` without ``setup_context``, JAX's JVP of a
        ``custom_vjp`` function) costs ``inf`` for what failed and is never chosen
        for it; when every strategy fails a kind, the products of that kind raise the
        engine's own error when asked for (if the set-up fails everywhere, here)."""
        t = _ones_like(xn)
        # per strategy: the timed callables (set-up, JVP prep, VJP prep, JVP, VJP, fused first
        # JVP), None: failed (or, for the last, not a strategy that fuses)
        runs = []
        failed: dict = {}  # (strategy index, position) -> the error
        for index, strategy in enumerate(self._strategies):
            try:
                state = strategy.setup(xn, self._ctx)  # compiles
                w = _ones_like(strategy.value(state))
            except Exception as error:  # noqa: BLE001 - another strategy may work; re-raised if none does
                failed.update({(index, position): error for position in range(6)})
                runs.append([None] * 6)
                continue
            timers = self._timers(strategy, state, xn, t, w)
            for position, run in ((3, lambda: strategy.jvp(state, t, False)),
                                  (4, lambda: strategy.vjp(state, w, False))):
                try:
                    block(run())
                except Exception as error:  # noqa: BLE001 - as above
                    failed[(index, position)] = error
                    timers[position] = timers[position - 2] = None  # the product and its preparation
                    if position == 3:
                        timers[5] = None
            runs.append(timers)
            if index == 0 and None not in timers[:5]:
                first = [min(fn() for _ in range(2)) for fn in timers[:5]]
                if first[0] + first[3] + first[4] < MEASURE_ABOVE_S:
                    return None
        # nothing works: raise the first strategy's error (a failed set-up is recorded as
        # the error of every part, its JVP included)
        if all((index, position) in failed for index in range(len(runs)) for position in (3, 4)):
            raise failed[(0, 3)]
        # the fastest of rounds alternating between the strategies (see fastest_of_rounds);
        # products a twin runs the same code for are timed once, as the twin's (one cost:
        # timing noise never decides between equal products; construction stays shorter)
        twins = {(index, position): self._twin(index, kind)
                 for index in range(len(runs)) for position, kind in ((3, "jvp"), (4, "vjp"))}
        best = [[float("inf")] * 6 for _ in runs]
        timed = [(index, position, fn) for index, timers in enumerate(runs) for position, fn in enumerate(timers)
                 if fn is not None and twins.get((index, position)) is None]
        for (index, position, _), seconds in zip(timed, fastest_of_rounds([fn for _, _, fn in timed])):
            best[index][position] = seconds
        for (index, position), twin in twins.items():
            if twin is not None:
                best[index][position] = best[twin][position]
        return [tuple(b) for b in best]

    def _usable(self, index: int, kind: str) -> bool:
        """Whether strategy ``index`` ran the products ``kind`` needs at construction."""
        jvp, vjp = self._costs[index][3:5]
        return (kind == "vjp" or jvp < float("inf")) and (kind == "jvp" or vjp < float("inf"))

    def _twin(self, index: int, kind: str) -> int | None:
        """The strategy whose products of ``kind`` run the same code as strategy
        ``index``'s (see ``Strategy.same_products``), or None."""
        name = self._strategies[index].same_products.get(kind)
        return next((i for i, s in enumerate(self._strategies) if s.name == name and i != index), None)

    def _timers(self, strategy, state, xn, t, w) -> list:
        ctx = self._ctx

        def timed(fn, repeat=1):
            # products are queued back to back and waited for once, as they run in a
            # solver's loop (a product waited for alone would also count the wait)
            def run():
                start = time.perf_counter()
                block([fn() for _ in range(repeat)])
                return (time.perf_counter() - start) / repeat
            return run

        def prep(kind):
            def run():
                fresh = block(strategy.setup(xn, ctx))
                start = time.perf_counter()
                strategy.prepare(fresh, kind)
                block(fresh)
                return time.perf_counter() - start
            return run

        def fused_jvp():
            fresh = block(strategy.setup(xn, ctx))
            strategy.fuse(fresh)
            start = time.perf_counter()
            block(strategy.jvp(fresh, t, False))
            seconds = time.perf_counter() - start
            return seconds if strategy.fuses_first_jvp else float("inf")  # turned off: f refused it

        return [timed(lambda: strategy.setup(xn, ctx)), prep("jvp"), prep("vjp"),
                timed(lambda: strategy.jvp(state, t, False), PIPELINE),
                timed(lambda: strategy.vjp(state, w, False), PIPELINE),
                fused_jvp if strategy.fuses_first_jvp else None]

    def _products_cost(self, index: int, work: dict) -> float:
        a, b = self._costs[index][3:5]
        blocks = self._shared["blocks"]
        total = 0.0
        for key, count in work.items():
            if key == "jvp":
                total += count * a
            elif key == "vjp":
                total += count * b
            elif key == "gn":
                measured = blocks.get(("gn", None))
                total += count * (measured[index][1] if measured is not None else a + b)
            else:
                measured = blocks.get(key)
                if measured is not None:
                    total += count * measured[index][1]
                else:
                    kind, k = key
                    total += count * k * (a if kind == "jvp" else b if kind == "vjp" else a + b)
        return total

    @staticmethod
    def _kinds(work: dict) -> set:
        """The product kinds ("jvp", "vjp") that ``work`` takes (``G @ v``: both)."""
        kinds = {key if isinstance(key, str) else key[0] for key, count in work.items() if count}
        return (kinds - {"gn"}) | ({"jvp", "vjp"} if "gn" in kinds else set())

    def _fixed_cost(self, index: int, work: dict, first: str | None = None) -> float:
        setup, prep_jvp, prep_vjp = self._costs[index][:3]
        kinds = self._kinds(work)
        if self._fuses(index, work, first):  # the first JVP does the VJP preparation
            prep_vjp = self._costs[index][5] - self._costs[index][3]
        return setup + (prep_jvp if "jvp" in kinds else 0.0) + (prep_vjp if "vjp" in kinds else 0.0)

    def _fuses(self, index: int, work: dict, first: str | None) -> bool:
        """Whether strategy ``index`` at a point whose first product is ``first`` ("jvp",
        "gn" or another key) and which takes ``work`` should have its first JVP do the
        VJP preparation: where the work takes VJPs and that costs less than apart."""
        costs = self._costs[index] if self._costs is not None else ()
        return (first in ("jvp", "gn") and len(costs) > 5 and "vjp" in self._kinds(work)
                and self._strategies[index].fuses_first_jvp and costs[5] < costs[3] + costs[2])

    def _choose(self, work: dict, first: str | None = None) -> int:
        """The strategy predicted cheapest for ``work``; between twins (strategies sharing
        products of a kind ``work`` takes) predicted within ``TWIN_MARGIN`` of each other,
        the one with the cheaper products.  The prediction sums parts timed apart, and
        between twins it errs by up to that much (torch mlp, 1 VJP + 1 JVP, no fused
        first JVP: kept_graph predicted 6% cheaper to 5% dearer than double_backward
        over construction runs, 4-6% dearer timed whole:
        ``torch.func.jvp`` costs more between other work than repeated); cheaper products
        also lose less when a point takes more products than the last.  Twins through a
        kind the work does not take are not (torch's kept_graph and recompute share JVPs;
        for VJP blocks their products differ, recompute's including the forward pass that
        kept_graph counts as set-up: the rule chose kept_graph's 16 backward passes,
        1.12x the vmapped pullback).  A cheapest strategy whose first JVP builds what
        the VJPs need (``first``, see ``_fuses``) is taken as predicted: that pass is
        timed whole, as it runs (torch stencil, 1 JVP then 1 VJP: kept_graph predicted
        8-10% cheaper than double_backward, 9% cheaper run in turn)."""
        if self._costs is None:
            return 0
        count = len(self._strategies)
        totals = [self._fixed_cost(i, work, first) + self._products_cost(i, work) for i in range(count)]
        best = min(range(count), key=totals.__getitem__)
        if self._fuses(best, work, first):
            return best
        kinds = self._kinds(work)
        close = [i for i in range(count) if totals[i] <= totals[best] * (1 + TWIN_MARGIN)
                 and (i == best or self._are_twins(i, best, kinds))]
        return min(close, key=lambda i: (self._products_cost(i, work), totals[i]))

    def _are_twins(self, i: int, j: int, kinds) -> bool:
        """Whether strategies i and j share products of one of ``kinds`` (either one
        names the other)."""
        return any(self._twin(a, kind) == b for a, b in ((i, j), (j, i)) for kind in kinds)

    def _decided(self, question: tuple, decide: Callable[[], Any]) -> Any:
        """``decide()``, memoized per question (shared with forks) until a block
        measurement changes the costs: a solver asks the same few questions at every
        point, and between large products the arithmetic runs with cold CPU caches
        (10-20 us a time measured at n = 5e3, several % of a 2 ms workload)."""
        decisions = self._shared["decisions"]
        if decisions.get("blocks") != len(self._shared["blocks"]):
            decisions.clear()
            decisions["blocks"] = len(self._shared["blocks"])
        answer = decisions.get(question, decisions)  # the dict itself: not decided yet
        if answer is decisions:
            answer = decisions[question] = decide()
        return answer

    @property
    def strategy(self) -> str:
        """The name of the strategy in use (or chosen next) at the current point."""
        index = self._strategy if self._strategy is not None else self._choose(self._expected)
        return self._strategies[index].name

    def _ensure_state(self, key: Any = None, count: int = 1):
        if self._state is None:
            fuse = False
            if key is None and self._shared["costs"] is _UNMEASURED:
                self._strategy = 0  # the value alone: no need to measure (rent-or-buy may switch later)
            else:
                work = dict(self._expected)
                if key is not None:
                    work[key] = max(work.get(key, 0), count)
                first = key if isinstance(key, str) else None  # the point's first product, if a single

                def decide():
                    index = self._choose(work, first)
                    return index, self._fuses(index, work, first)

                self._strategy, fuse = self._decided(("choose", first, *work.items()), decide)
            self._state = self._strategies[self._strategy].setup(self._x, self._ctx)
            if fuse:
                self._strategies[self._strategy].fuse(self._state)
        elif key is not None and self._shared["costs"] is not None and self._due(key, count):
            taken = dict(self._here)
            taken[key] = taken.get(key, 0) + count
            index = self._decided(("switch", self._strategy, *taken.items()), lambda: self._switch_to(taken))
            if index is not None:
                self._strategy = index
                self._state = self._strategies[index].setup(self._x, self._ctx)
        return self._strategies[self._strategy], self._state

    def _switch_to(self, taken: dict) -> int | None:
        """Rent-or-buy within a point: the strategy to switch to once the extra paid for
        the products ``taken`` so far would have bought its set-up (and preparations)."""
        now = self._products_cost(self._strategy, taken)
        for index in range(len(self._strategies)):
            if index == self._strategy:
                continue
            saved = now - self._products_cost(index, taken)
            if saved > 0 and saved >= self._fixed_cost(index, taken):
                return index
        return None

    def _due(self, key: Any, count: int) -> bool:
        """Whether the rent-or-buy test runs at this product: never while the products of
        its kind stay within the workload the strategy was chosen for (the choice already
        counted them: in a solver's loop, where every point takes the same products, no
        test runs at all); beyond it at the 1st, 2nd, 4th, 8th, ... product taken at the
        point and every 16th after (a switch comes at most about 2x later in products than
        with a test at every one, and single products skip the cost arithmetic)."""
        if self._here.get(key, 0) + count <= self._expected.get(key, 0):
            return False
        return count > 1 or _test_point(sum(self._here.values()) + count)

    def _modes(self, strategy: Any, kind: str, k: int | None) -> list:
        """The ways ``strategy`` can evaluate a product of ``kind`` (a block when k is
        given), the default first: its block modes (its twin's for products it shares with
        a twin); for ``G @ v`` also ("composed", mode): a JVP then a VJP, two calls, for
        where XLA's fusion of the two sweeps into one loop recomputes the intermediate (a
        stencil's neighbours) and costs more than the second dispatch."""
        twin = self._twin(self._strategies.index(strategy), kind)
        source = strategy if twin is None else self._strategies[twin]
        modes = list(source.modes) if k is not None else [None]
        return modes + [("composed", m) for m in modes] if kind == "gn" else modes

    @staticmethod
    def _apply(strategy: Any, kind: str, state: Any, seeds: Any, layout: Any, mode: Any) -> Any:
        if kind == "jvp":
            return strategy.jvp(state, seeds, layout, mode)
        if kind == "vjp":
            return strategy.vjp(state, seeds, layout, mode)
        if isinstance(mode, tuple):  # ("composed", block mode)
            return strategy.vjp(state, strategy.jvp(state, seeds, layout, mode[1]), layout, mode[1])
        return strategy.gauss_newton(state, seeds, layout, mode)

    def _block_modes(self, kind: str, seeds: Any, k: int | None, layout: Any) -> list | None:
        """[(mode, seconds) per strategy] for a block of ``kind`` with k columns (or a
        single ``G @ v`` where k is None): measured once (shared with forks) at the first
        such product, each strategy in each of its modes (a run that compiles, a
        warm-up run, then the fastest of alternating rounds, ``fastest_of_rounds``); None where not
        measured (a problem too small to measure, or k above ``BLOCK_MEASURE_MAX``)."""
        key = (kind, k)
        blocks = self._shared["blocks"]
        if key in blocks:
            return blocks[key]
        if self._costs is None or (k is not None and k > BLOCK_MEASURE_MAX):
            return None  # the default strategy in its default mode
        candidates = []  # (strategy index, mode, run)
        for index, strategy in enumerate(self._strategies):
            if self._twin(index, kind) is not None or not self._usable(index, kind):
                continue  # timed as its twin (see Strategy.same_products), or failed at construction
            if index == self._strategy and self._state is not None:
                state = self._state
            else:
                state = strategy.setup(self._x, self._ctx)
            for position, mode in enumerate(self._modes(strategy, kind, k)):
                def run(strategy=strategy, state=state, mode=mode):
                    start = time.perf_counter()
                    block(self._apply(strategy, kind, state, seeds, layout, mode))
                    return time.perf_counter() - start
                try:
                    run()  # compiles
                except Exception:  # noqa: BLE001 - a mode f does not support (vmap), never the default
                    if position == 0:
                        raise
                    continue
                candidates.append((index, mode, run))
        for _, _, run in candidates:  # once more each: the first runs after a compile touch fresh memory
            run()
        seconds = fastest_of_rounds([run for _, _, run in candidates])
        result = []
        for index in range(len(self._strategies)):
            twin = self._twin(index, kind)
            mine = [(seconds[p], mode) for p, (i, mode, _) in enumerate(candidates) if i == (index if twin is None
                                                                                           else twin)]
            fastest = min(mine, key=lambda pair: pair[0], default=(float("inf"), None))
            result.append((fastest[1], fastest[0]))
        blocks[key] = result
        return result

    def _fork(self) -> "JacobianOperator":
        """A second operator sharing the prepared strategies (own point and state)."""
        other = object.__new__(JacobianOperator)
        other.__dict__.update(self.__dict__)
        other._here, other._state, other._strategy = {}, None, None
        other._workspace = {}
        other.products = {"jvp": 0, "vjp": 0}
        return other

    # --- points -------------------------------------------------------------
    def update(self, x: Any, *contexts: Any) -> "JacobianOperator":
        """Move to a new point (same type, shape and dtype as before); returns ``self``."""
        if contexts or not matches_signature(x, self._sig):  # the common case without building a signature
            check_update(self._sig, self._ctx_kinds, x, contexts, "jacobian_operator")
        if contexts:
            self._ctx = unwrap_contexts(contexts)
            self._contexts = contexts
        self._state = None  # the previous point's state first: its memory serves the copy
        self._x = self._engine.copy_native(self._engine.to_native(x))
        if self._here:
            self._expected = self._here
        self._here = {}
        self._strategy = None
        return self

    @property
    def x(self) -> Any:
        """A copy of the current point."""
        return self._like(self._engine.copy_native(self._x), self._x_shape)

    @property
    def value(self) -> Any:
        """``f`` at the current point, shaped like f(x), in x's library."""
        strategy, state = self._ensure_state()
        y = strategy.value(state)
        if self._kind in (NUMPY, SCALAR):
            y = np.asarray(y).copy()
            return y[()] if y.ndim == 0 else y
        return y

    # --- shapes ---------------------------------------------------------------
    def ravel(self, a: Any) -> Any:
        """``a`` (shaped like x or like f(x)) as a flat vector."""
        return a.reshape(-1) if hasattr(a, "reshape") else np.reshape(a, -1)

    def unravel(self, v: Any, like: str | None = None) -> Any:
        """A flat vector shaped like x (``like="x"``) or f(x) (``like="y"``); by
        default by its length (x when both lengths agree)."""
        size = int(np.prod(np.shape(v)))
        if like is None:
            like = "x" if size == self.n else "y" if size == self.m else None
        if like not in ("x", "y") or size != (self.n if like == "x" else self.m):
            raise InvalidInputError(
                f"unravel: v has {size} entries; pass like='x' for {self.n} entries (x's shape "
                f"{self._x_shape}) or like='y' for {self.m} (f(x)'s shape {self._y_shape})"
            )
        shape = self._x_shape if like == "x" else self._y_shape
        return v.reshape(shape) if hasattr(v, "reshape") else np.reshape(v, shape)

    def _like(self, result: Any, shape: tuple) -> Any:
        if self._kind in (NUMPY, SCALAR):
            return np.asarray(result).reshape(shape)
        return result.reshape(shape)

    def _seeds(self, v: Any, size: int, inner: tuple, op: str) -> tuple[Any, int | None]:
        """(native seeds, k or None): a vector shaped ``inner``, or a block of k columns,
        either as given, ``(size, k)`` (engines that change the layout inside their
        compiled call: JAX, ``vmap(in_axes=-1)``), or as a contiguous ``(k,) + inner``
        array (NumPy, torch: a view where the block is k-leading in memory, else one
        transposing copy, see ``k_leading``)."""
        if self._kind in (NUMPY, SCALAR):
            v = np.asarray(v)
        native = self._engine.to_native(v)
        shape = tuple(native.shape)
        if shape == (size,):
            return (native if len(inner) == 1 else native.reshape(inner)), None
        if len(shape) == 2 and shape[0] == size:
            k = shape[1]
            if self._columns:
                return native, k
            from diffinterface.backends._jacobian_strategies import k_leading

            return k_leading(native, k, inner, self._workspace), k
        raise InvalidInputError(
            f"{op} needs a vector of shape ({size},) or a block ({size}, k), got {shape}; x and f(x) of any "
            "shape act as flat vectors (use J.ravel)"
        )

    def _finish(self, result: Any, size: int, k: int | None) -> Any:
        if k is None:
            out = result if len(result.shape) == 1 else result.reshape((size,))
        elif self._columns:  # already (size, k)
            out = result
        else:  # (k,) + shape: a transposed view
            out = (result if len(result.shape) == 2 else result.reshape((k, size))).T
        return np.asarray(out) if self._kind in (NUMPY, SCALAR) else out

    # --- products -------------------------------------------------------------
    def _product(self, kind: str, v: Any) -> Any:
        if (self._vectors_native and type(v) is self._sig[0] and v.shape == (self.m if kind == "vjp" else self.n,)
                and (kind != "gn" or (self._state is not None and ("gn", None) in self._shared["blocks"]))):
            # the hot path of a solver's loop: an engine's own vector (JAX, torch, NumPy for
            # autograd and finite differences) for 1-d x and f(x) needs no reshaping, layout
            # or result conversion (a GPU product can take 50 us, and on a CPU the Python
            # between large products runs with cold caches); G @ v once its modes are measured
            here = self._here
            taken = here.get(kind, 0) + 1
            if self._state is None or (taken > self._expected.get(kind, 0)
                                       and _test_point(sum(here.values()) + 1)):  # _due(kind, 1)
                strategy, state = self._ensure_state(kind, 1)
            else:
                strategy, state = self._strategies[self._strategy], self._state
            here[kind] = taken
            if kind == "jvp":
                self.products["jvp"] += 1
                result = strategy.jvp(state, v, False)
            elif kind == "vjp":
                self.products["vjp"] += 1
                result = strategy.vjp(state, v, False)
            else:
                self.products["jvp"] += 1
                self.products["vjp"] += 1
                mode = self._shared["blocks"][("gn", None)][self._strategy][0]
                result = self._apply(strategy, "gn", state, v, False, mode)
            if self._kind is NUMPY and type(result) is not np.ndarray:  # a plain array, as _finish gives
                result = np.asarray(result)
            return result
        size_in, inner, size_out = ((self.n, self._x_shape, self.m) if kind == "jvp" else
                                    (self.m, self._y_shape, self.n) if kind == "vjp" else
                                    (self.n, self._x_shape, self.n))
        seeds, k = self._seeds(v, size_in, inner, "J @ v" if kind == "jvp" else "J.T @ w" if kind == "vjp"
                               else "G @ v")
        if k is None and kind != "gn":
            strategy, state = self._ensure_state(kind, 1)
            result = (strategy.jvp if kind == "jvp" else strategy.vjp)(state, seeds, False)
            self._here[kind] = self._here.get(kind, 0) + 1
        else:  # a block, or G @ v: in the mode measured fastest at the first one
            layout = False if k is None else "columns" if self._columns else True
            key = kind if k is None else (kind, k)
            if self._state is None:
                self._ensure_state(key, 1)  # the point's set-up first (the measurement reuses it)
            measured = self._block_modes(kind, seeds, k, layout)
            strategy, state = self._ensure_state(key, 1)
            mode = measured[self._strategy][0] if measured is not None else None
            result = self._apply(strategy, kind, state, seeds, layout, mode)
            if self._workspace and _aliases(result, seeds):  # f the identity, say: never return our buffer
                result = result.clone() if hasattr(result, "clone") else np.array(result)
            self._here[key] = self._here.get(key, 0) + 1
        count = k or 1
        if kind != "vjp":
            self.products["jvp"] += count
        if kind != "jvp":
            self.products["vjp"] += count
        return self._finish(result, size_out, k)

    def _jvp(self, v: Any) -> Any:
        return self._product("jvp", v)

    def _vjp(self, w: Any) -> Any:
        return self._product("vjp", w)

    def _gauss_newton(self, v: Any) -> Any:
        return self._product("gn", v)

    def __matmul__(self, v: Any) -> Any:
        return self._product("jvp", v)

    def __rmatmul__(self, w: Any) -> Any:
        """``w @ J`` for ``w`` of shape (m,) -> (n,), or ``W`` of shape (k, m) -> (k, n)."""
        if np.ndim(w) == 2:
            return self._vjp(w.T).T
        return self._vjp(w)

    def matvec(self, v: Any) -> Any:
        return self._jvp(v)

    def rmatvec(self, w: Any) -> Any:
        return self._vjp(w)

    @property
    def T(self) -> "_Transposed":
        """The transposed map ``Jᵀ`` (shape (n, m)): ``J.T @ w`` is a VJP."""
        transposed = self.__dict__.get("_transposed")
        if transposed is None or transposed._op is not self:  # a fork copies the dict
            transposed = self._transposed = _Transposed(self)
        return transposed

    # --- conversions ------------------------------------------------------------
    def aslinearoperator(self):
        """A ``scipy.sparse.linalg.LinearOperator`` (matvec, rmatvec, matmat, rmatmat) on NumPy arrays."""
        return _scipy_operator(self.shape, self.dtype, self._jvp, self._vjp, self._kind, self._x)

    def todense(self) -> np.ndarray:
        """The Jacobian at the current point as a NumPy ``(m, n)`` array: min(m, n)
        products in one block (the finite-difference engine reuses its Jacobian)."""
        strategy, state = self._ensure_state()
        dense = strategy.dense(state)
        if dense is not None:
            return np.asarray(dense, dtype=self.dtype).reshape(self.m, self.n)
        op = self.aslinearoperator()
        if self.n <= self.m:
            return np.asarray(op.matmat(np.eye(self.n, dtype=self.dtype)))
        return np.asarray(op.rmatmat(np.eye(self.m, dtype=self.dtype))).T

    def tosparse(self):
        """The Jacobian at the current point as a 2-D ``(m, n)`` sparse matrix, for an
        operator built with an ``AutoSparse`` backend.

        The first call prepares ``di.prepare_jacobian(f, backend, x, *contexts)``
        (sparsity detection, coloring, compiled compressed evaluation) and keeps
        the prep; every later call, at this point or any other after
        ``update``, is one compressed evaluation and a decompression.  The type
        is that of ``di.jacobian`` with the same backend: ``scipy.sparse.csr_array``
        for NumPy x, ``jax.experimental.sparse.BCOO`` for JAX arrays, a sparse CSR
        tensor for torch (``di.to_scipy`` converts any of them).  Without
        ``AutoSparse`` it raises :class:`UnsupportedOperationError` (a dense
        Jacobian is ``J.todense()``; ``scipy.sparse.csr_array(J.todense())`` if
        a sparse type is needed anyway)."""
        if not self._sparse_backend:
            raise UnsupportedOperationError(
                f"J.tosparse() needs an AutoSparse backend, this operator uses {self.backend!r}: build it "
                f"with di.jacobian_operator(f, di.AutoSparse({self.backend!r}), x), or use J.todense() "
                "(scipy.sparse.csr_array(J.todense()) for a sparse type)"
            )
        from diffinterface.operators.first_order import jacobian, prepare_jacobian

        x = self.x
        if self._shared["sparse_prep"] is None:
            self._shared["sparse_prep"] = prepare_jacobian(self._f, self.backend, x, *self._contexts)
        return jacobian(self._f, self.backend, x, *self._contexts, prep=self._shared["sparse_prep"])

    @property
    def sparse_prep(self):
        """The ``AutoSparse`` Jacobian prep behind :meth:`tosparse` (None until its first call);
        ``di.ncolors(J.sparse_prep)``, ``di.sparsity_pattern(J.sparse_prep)``."""
        return self._shared["sparse_prep"]

    def __repr__(self) -> str:
        return (f"JacobianOperator(shape={self.shape}, dtype={self.dtype}, backend={self.backend!r}, "
                f"strategy={self.strategy})")


class _Transposed:
    """``Jᵀ`` as a view of a :class:`JacobianOperator`."""

    __array_ufunc__ = None

    def __init__(self, op: JacobianOperator) -> None:
        self._op = op
        self.shape = (op.n, op.m)
        self.dtype = op.dtype

    @property
    def T(self) -> JacobianOperator:
        return self._op

    def __matmul__(self, w: Any) -> Any:
        return self._op._product("vjp", w)

    def __rmatmul__(self, v: Any) -> Any:
        return self._op._jvp(v.T).T if np.ndim(v) == 2 else self._op._jvp(v)

    def matvec(self, w: Any) -> Any:
        return self._op._vjp(w)

    def rmatvec(self, v: Any) -> Any:
        return self._op._jvp(v)

    def __repr__(self) -> str:
        return f"{self._op!r}.T"


def _scipy_operator(shape, dtype, forward: Callable, backward: Callable, kind: str, like: Any):
    from scipy.sparse.linalg import LinearOperator

    to_numpy = (lambda a: a.detach().cpu().numpy()) if kind == TORCH else np.asarray
    if kind == TORCH:
        import torch

        to_native = lambda a: torch.as_tensor(a, dtype=like.dtype, device=like.device)  # noqa: E731
    elif kind not in (NUMPY, SCALAR):
        import jax.numpy as jnp

        to_native = lambda a: jnp.asarray(a, dtype=like.dtype)  # noqa: E731
    else:
        to_native = lambda a: a  # noqa: E731
    return LinearOperator(
        shape,
        matvec=lambda v: to_numpy(forward(to_native(np.reshape(v, -1)))),
        rmatvec=lambda w: to_numpy(backward(to_native(np.reshape(w, -1)))),
        matmat=lambda V: to_numpy(forward(to_native(V))),
        rmatmat=lambda W: to_numpy(backward(to_native(W))),
        dtype=dtype,
    )


def jacobian_operator(f: Callable, backend: Any, x: Any, *contexts: Any) -> JacobianOperator:
    """The Jacobian of ``f`` at ``x`` as a matrix-free operator of shape ``(f(x).size, x.size)``.

    >>> import numpy as np, diffinterface as di
    >>> J = di.jacobian_operator(lambda x: x[1:] * x[:-1], di.AutoFiniteDiff(method="complex"), np.arange(1.0, 4.0))
    >>> J.shape, J @ np.array([1.0, 0.0, 0.0]), J.T @ np.array([1.0, 1.0])
    ((2, 3), array([2., 0.]), array([2., 4., 2.]))
    """
    return JacobianOperator(f, backend, x, *contexts)
