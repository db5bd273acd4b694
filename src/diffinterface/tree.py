"""Pytrees: nested dicts, lists, tuples, namedtuples and dataclasses of arrays.

Operators differentiate a pytree ``x`` through its flattened vector: the
leaves are raveled and concatenated (in the leaves' own library, so inside a
JAX trace, a torch graph or an autograd trace too), ``f`` is called on the
tree rebuilt from slices of that vector, and results are rebuilt into the
structure of ``x`` (gradients, pullbacks, HVPs) or ``y`` (pushforwards).
Jacobians and Hessians follow JAX's nesting: ``y``'s structure outside, ``x``'s
inside, leaves of shape ``y_leaf.shape + x_leaf.shape``;
:func:`flatten_jacobian` turns them into 2-D arrays.

``optree`` does the flattening (imported on first use); dataclasses are
registered with it on the fly.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np

from diffinterface._arrays import array_kind

__all__ = ["TreeSpec", "is_tree", "tree_spec", "flatten_jacobian"]

_NAMESPACE = "diffinterface"


def _optree():
    import optree

    return optree


def _register_dataclasses(tree: Any) -> None:
    """Register every dataclass type found in ``tree`` with optree (once)."""
    optree = _optree()
    stack = [tree]
    while stack:
        node = stack.pop()
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            cls = type(node)
            if cls not in _registered:
                names = tuple(f.name for f in dataclasses.fields(cls))
                optree.register_pytree_node(
                    cls,
                    lambda obj, names=names: (tuple(getattr(obj, n) for n in names), names, names),
                    lambda names, children, cls=cls: cls(**dict(zip(names, children))),
                    namespace=_NAMESPACE,
                )
                _registered.add(cls)
            stack.extend(getattr(node, f.name) for f in dataclasses.fields(node))
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


_registered: set = set()


def is_tree(x: Any) -> bool:
    """True for containers (dict, list, tuple, namedtuple, dataclass), False for arrays and floats."""
    if array_kind(x) is not None:
        return False
    return isinstance(x, (dict, list, tuple)) or (dataclasses.is_dataclass(x) and not isinstance(x, type))


def _namespace_of(leaf: Any):
    module = type(leaf).__module__
    if module.startswith(("jax", "jaxlib")):
        import jax.numpy as jnp

        return jnp.concatenate
    if module.startswith("torch"):
        import torch

        return torch.cat
    if module.startswith("autograd"):
        import autograd.numpy as anp

        return anp.concatenate
    return np.concatenate


def ravel_leaves(leaves: list) -> Any:
    """Concatenate raveled leaves in their own library (works on tracers and boxes)."""
    if not leaves:
        return np.zeros(0)
    concatenate = _namespace_of(next((l for l in leaves if not isinstance(l, (float, int))), leaves[0]))
    flat = [l.reshape(-1) if hasattr(l, "reshape") else np.reshape(l, -1) for l in leaves]
    return concatenate(flat) if len(flat) > 1 else flat[0]


class TreeSpec:
    """The structure of a pytree of arrays: treedef, leaf shapes and offsets."""

    def __init__(self, tree: Any) -> None:
        optree = _optree()
        _register_dataclasses(tree)
        leaves, self.treedef = optree.tree_flatten(tree, namespace=_NAMESPACE)
        if not leaves:
            raise ValueError("the pytree has no array leaves")
        self.shapes = [tuple(np.shape(l)) for l in leaves]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).tolist()
        self.size = self.offsets[-1]
        self.kinds = [array_kind(l) for l in leaves]
        self.dtypes = [str(getattr(l, "dtype", "float64")) for l in leaves]

    def leaves(self, tree: Any) -> list:
        return _optree().tree_leaves(tree, namespace=_NAMESPACE)

    def matching_leaves(self, tree: Any) -> list | None:
        """The leaves of ``tree`` if it has this structure, leaf shapes and dtypes, else None
        (one flatten and a few comparisons: the hot-path check of a prepared call)."""
        try:
            leaves, treedef = _optree().tree_flatten(tree, namespace=_NAMESPACE)
        except (TypeError, ValueError):
            return None
        if treedef != self.treedef:
            return None
        for leaf, shape, dtype in zip(leaves, self.shapes, self.dtypes):
            if tuple(np.shape(leaf)) != shape or str(getattr(leaf, "dtype", "float64")) != dtype:
                return None
        return leaves

    def unflatten(self, leaves: list) -> Any:
        return _optree().tree_unflatten(self.treedef, list(leaves))

    def signature(self) -> tuple:
        return (str(self.treedef), tuple(self.shapes), tuple(self.dtypes))

    def ravel(self, tree: Any) -> Any:
        """The flat vector of a tree with this structure."""
        leaves = self.leaves(tree)
        if len(leaves) != len(self.shapes):
            raise ValueError(f"the pytree has {len(leaves)} leaves, expected {len(self.shapes)}")
        return ravel_leaves([_as_array(l) for l in leaves])

    def unravel(self, flat: Any) -> Any:
        """The tree with this structure whose leaves are slices of ``flat``."""
        leaves = [flat[a:b].reshape(shape) for a, b, shape in zip(self.offsets[:-1], self.offsets[1:], self.shapes)]
        return _optree().tree_unflatten(self.treedef, leaves)

    def unravel_rows(self, matrix: Any, outer_shape: tuple) -> Any:
        """Split the columns of a (m, size) matrix into a tree of leaves of shape outer_shape + leaf shape."""
        leaves = [matrix[:, a:b].reshape(tuple(outer_shape) + shape)
                  for a, b, shape in zip(self.offsets[:-1], self.offsets[1:], self.shapes)]
        return _optree().tree_unflatten(self.treedef, leaves)


def _as_array(leaf: Any) -> Any:
    if isinstance(leaf, (float, int)):
        return np.asarray(leaf, dtype=np.float64)
    return leaf


def tree_spec(tree: Any) -> TreeSpec:
    return TreeSpec(tree)


def nest_jacobian(flat: Any, y_spec: TreeSpec | None, y_shape: tuple, x_spec: TreeSpec | None, x_shape: tuple) -> Any:
    """A (y.size, x.size) Jacobian nested like JAX's ``jacobian`` of tree -> tree."""
    if y_spec is None:
        if x_spec is None:
            return flat.reshape(tuple(y_shape) + tuple(x_shape))
        return x_spec.unravel_rows(flat, y_shape)
    blocks = []
    for a, b, shape in zip(y_spec.offsets[:-1], y_spec.offsets[1:], y_spec.shapes):
        rows = flat[a:b]
        blocks.append(rows.reshape(tuple(shape) + tuple(x_shape)) if x_spec is None else x_spec.unravel_rows(rows, shape))
    return _optree().tree_unflatten(y_spec.treedef, blocks)


def flatten_jacobian(jacobian: Any, x: Any) -> Any:
    """A nested Jacobian (or Hessian) as a 2-D array of shape (y.size, x.size).

    ``x`` is the point (or any tree of its structure and shapes); the outer
    structure of ``jacobian`` is ``y``'s, the inner one ``x``'s, as returned by
    ``di.jacobian`` and ``di.hessian`` (and ``jax.jacobian``).

    >>> import numpy as np, diffinterface as di
    >>> x = {"a": np.ones(2), "b": np.ones(3)}
    >>> jac = {"a": np.ones((4, 2)), "b": np.zeros((4, 3))}
    >>> di.flatten_jacobian(jac, x).shape
    (4, 5)
    """
    if not is_tree(x):
        size = int(np.prod(np.shape(x)))
        if not is_tree(jacobian):
            return jacobian.reshape(-1, size)
        blocks = _optree().tree_leaves(jacobian, namespace=_NAMESPACE)
        return _concat([b.reshape(-1, size) for b in blocks], axis=0)
    spec = TreeSpec(x)
    leaves = _optree().tree_leaves(jacobian, namespace=_NAMESPACE)
    per_row = len(spec.shapes)
    rows = []
    for start in range(0, len(leaves), per_row):
        group = leaves[start:start + per_row]
        outer = int(np.prod(np.shape(group[0]))) // spec.sizes[0] if spec.sizes[0] else 0
        rows.append(_concat([g.reshape(outer, size) for g, size in zip(group, spec.sizes)], axis=1))
    return _concat(rows, axis=0)


def _concat(parts: list, axis: int) -> Any:
    module = type(parts[0]).__module__
    if module.startswith("torch"):
        return sys.modules["torch"].cat(parts, dim=axis)
    if module.startswith(("jax", "jaxlib")):
        return sys.modules["jax.numpy"].concatenate(parts, axis=axis)
    return np.concatenate(parts, axis=axis)
