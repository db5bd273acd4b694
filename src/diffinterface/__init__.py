"""diffinterface: one interface to every automatic-differentiation engine.

>>> import numpy as np
>>> import diffinterface as di
>>> f = lambda x: np.sum(np.sin(x) * x ** 2)
>>> di.gradient(f, di.AutoFiniteDiff(), np.array([1.0, 2.0])).round(6)
array([2.223244, 1.972602])

Backends: ``AutoJAX``, ``AutoTorch``, ``AutoAutograd``, ``AutoFiniteDiff``
(and ``SecondOrder`` pairs).  Operators: ``derivative``, ``gradient``,
``jacobian``, ``pushforward``, ``pullback``, each with ``value_and_*`` and
``prepare_*``.  See ``README.md`` and ``DESIGN.md`` for the whole map.
"""

from diffinterface._errors import (
    DifferentiationError,
    EngineNotInstalledError,
    InvalidInputError,
    PreparationMismatchError,
    UnsupportedOperationError,
    WrongEngineError,
)
from diffinterface.backends import (
    AbstractBackend,
    AutoAutograd,
    AutoFiniteDiff,
    AutoJAX,
    AutoTorch,
    SecondOrder,
)
from diffinterface.contexts import Cache, Constant
from diffinterface.inplace import InPlace
from diffinterface.operators.first_order import (
    derivative,
    gradient,
    jacobian,
    prepare_derivative,
    prepare_gradient,
    prepare_jacobian,
    prepare_pullback,
    prepare_pushforward,
    pullback,
    pushforward,
    value_and_derivative,
    value_and_gradient,
    value_and_jacobian,
    value_and_pullback,
    value_and_pushforward,
)
from diffinterface.operators.second_order import (
    gradient_and_hvp,
    hessian,
    hvp,
    prepare_hessian,
    prepare_hvp,
    prepare_second_derivative,
    second_derivative,
    value_derivative_and_second_derivative,
    value_gradient_and_hessian,
)
from diffinterface.linear_operators import HessianOperator, hessian_operator
from diffinterface.jacobian_operators import JacobianOperator, jacobian_operator
from diffinterface.gauss_newton import GaussNewtonOperator, gauss_newton_operator
from diffinterface._least_squares import scipy_least_squares
from diffinterface.prep import Prep
from diffinterface.rules import custom_rule
from diffinterface.tree import flatten_jacobian
from diffinterface.scipy_adapters import scipy_objective
from diffinterface.sparse._autosparse import (
    AutoSparse,
    DenseFallbackWarning,
    column_colors,
    ncolors,
    row_colors,
    sparsity_pattern,
    to_scipy,
)
from diffinterface.sparse import (
    ColoringResult,
    GreedyColoringAlgorithm,
    KnownSparsity,
    TracerLocalSparsityDetector,
    TracerSparsityDetector,
    UnknownOperationWarning,
    check_coloring,
    coloring,
    hessian_sparsity,
    jacobian_sparsity,
)

__version__ = "0.1.0"

__all__ = [
    "AbstractBackend", "AutoAutograd", "AutoFiniteDiff", "AutoJAX", "AutoTorch", "SecondOrder",
    "Cache", "Constant", "InPlace", "Prep", "flatten_jacobian", "custom_rule",
    "DifferentiationError", "EngineNotInstalledError", "InvalidInputError",
    "PreparationMismatchError", "UnsupportedOperationError", "WrongEngineError",
    "derivative", "value_and_derivative", "prepare_derivative",
    "gradient", "value_and_gradient", "prepare_gradient",
    "jacobian", "value_and_jacobian", "prepare_jacobian",
    "pushforward", "value_and_pushforward", "prepare_pushforward",
    "pullback", "value_and_pullback", "prepare_pullback",
    "second_derivative", "value_derivative_and_second_derivative", "prepare_second_derivative",
    "hvp", "gradient_and_hvp", "prepare_hvp",
    "hessian", "value_gradient_and_hessian", "prepare_hessian",
    "HessianOperator", "hessian_operator", "scipy_objective",
    "JacobianOperator", "jacobian_operator", "GaussNewtonOperator", "gauss_newton_operator",
    "scipy_least_squares",
    "ColoringResult", "GreedyColoringAlgorithm", "check_coloring", "coloring",
    "KnownSparsity", "TracerLocalSparsityDetector", "TracerSparsityDetector",
    "UnknownOperationWarning", "hessian_sparsity", "jacobian_sparsity",
    "AutoSparse", "DenseFallbackWarning", "column_colors", "ncolors", "row_colors", "sparsity_pattern", "to_scipy",
]
