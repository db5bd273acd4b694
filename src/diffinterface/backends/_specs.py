"""Backend specifications: small frozen dataclasses that name an engine and its mode.

A backend spec holds configuration only; the engine that does the work is
looked up (and its library imported) the first time an operator needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diffinterface._errors import InvalidInputError

__all__ = [
    "AbstractBackend",
    "AutoJAX",
    "AutoTorch",
    "AutoAutograd",
    "AutoFiniteDiff",
    "SecondOrder",
]

Mode = Literal["reverse", "forward"]


def _check_choice(name: str, value: object, choices: tuple[str, ...], owner: str) -> None:
    if value not in choices:
        raise InvalidInputError(
            f"{owner}({name}={value!r}) is not a valid {name}; choose one of "
            + ", ".join(repr(c) for c in choices)
        )


class AbstractBackend:
    """Base class of every backend spec (used for ``isinstance`` checks)."""

    __slots__ = ()

    @property
    def engine_name(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class AutoJAX(AbstractBackend):
    """Differentiate with JAX (``f`` written with ``jax.numpy``).

    ``mode`` chooses how gradients and Jacobians are computed: ``"reverse"``
    (``jax.grad`` / ``jax.jacrev``) or ``"forward"`` (``jax.jacfwd``).
    Prepared operators are ``jax.jit``-compiled once.

    >>> AutoJAX()
    AutoJAX(mode='reverse')
    """

    mode: Mode = "reverse"

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, ("reverse", "forward"), "AutoJAX")

    @property
    def engine_name(self) -> str:
        return "jax"


@dataclass(frozen=True, slots=True)
class AutoTorch(AbstractBackend):
    """Differentiate with PyTorch (``f`` written with ``torch`` operations).

    ``mode="reverse"`` uses ``torch.autograd`` / ``torch.func.jacrev``;
    ``mode="forward"`` uses forward-mode ``torch.func`` (``jvp``, ``jacfwd``).

    >>> AutoTorch(mode="forward")
    AutoTorch(mode='forward')
    """

    mode: Mode = "reverse"

    def __post_init__(self) -> None:
        _check_choice("mode", self.mode, ("reverse", "forward"), "AutoTorch")

    @property
    def engine_name(self) -> str:
        return "torch"


@dataclass(frozen=True, slots=True)
class AutoAutograd(AbstractBackend):
    """Differentiate with HIPS autograd (``f`` written with ``autograd.numpy``).

    >>> AutoAutograd()
    AutoAutograd()
    """

    @property
    def engine_name(self) -> str:
        return "autograd"


@dataclass(frozen=True, slots=True)
class AutoFiniteDiff(AbstractBackend):
    """Finite differences on NumPy: works for any black-box ``f``.

    ``method``: ``"forward"`` (one extra evaluation per direction, ~1e-8
    accurate), ``"central"`` (two, ~1e-10) or ``"complex"`` (complex step:
    exact to rounding, needs ``f`` to accept complex input and be real-analytic).
    ``rel_step`` overrides the relative step (defaults: eps**(1/2), eps**(1/3),
    1e-20).

    >>> AutoFiniteDiff()
    AutoFiniteDiff(method='central', rel_step=None)
    """

    method: Literal["forward", "central", "complex"] = "central"
    rel_step: float | None = None

    def __post_init__(self) -> None:
        _check_choice("method", self.method, ("forward", "central", "complex"), "AutoFiniteDiff")
        if self.rel_step is not None and not (self.rel_step > 0):
            raise InvalidInputError(
                f"AutoFiniteDiff(rel_step={self.rel_step!r}) must be a positive float or None"
            )

    @property
    def engine_name(self) -> str:
        return "finite_diff"


@dataclass(frozen=True, slots=True)
class SecondOrder(AbstractBackend):
    """A pair of backends for second-order operators.

    ``inner`` computes the gradient, ``outer`` differentiates it; for example
    ``SecondOrder(AutoJAX(mode="forward"), AutoJAX())`` is forward-over-reverse.

    >>> SecondOrder(AutoFiniteDiff(), AutoTorch())
    SecondOrder(outer=AutoFiniteDiff(method='central', rel_step=None), inner=AutoTorch(mode='reverse'))
    """

    outer: AbstractBackend
    inner: AbstractBackend

    def __post_init__(self) -> None:
        for name in ("outer", "inner"):
            value = getattr(self, name)
            if not isinstance(value, AbstractBackend) or isinstance(value, SecondOrder):
                raise InvalidInputError(
                    f"SecondOrder({name}={value!r}) must be a first-order backend such as "
                    "AutoJAX(), AutoTorch(), AutoAutograd() or AutoFiniteDiff()"
                )

    @property
    def engine_name(self) -> str:
        return self.inner.engine_name
