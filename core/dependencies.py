"""Dependency graphs of hashable keys, and their topological order.

An edge ``(requirer, required)`` says that ``requirer`` needs ``required`` first. Iterating a
:class:`Dependencies` gives the keys required ones first; ``reversed()`` gives the opposite. A
cycle raises :class:`CircularDependencyException` when the graph is iterated, not when built.

API-compatible with OpenStack Heat's ``heat.engine.dependencies`` (Apache-2.0).
"""

from __future__ import annotations

import collections
import functools
import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any, Generic, Self, TypeVar, cast

__all__ = ["CircularDependencyException", "Dependencies", "Graph", "Node"]

_K = TypeVar("_K", bound=Hashable)
_U = TypeVar("_U", bound=Hashable)
_V = TypeVar("_V")


class CircularDependencyException(Exception):
    """A dependency graph has a cycle, so it has no topological order."""

    msg_fmt = "Circular Dependency Found: %(cycle)s"

    def __init__(self, *, cycle: str) -> None:
        # Keyword-only, as in Heat, whose exceptions take only keyword arguments.
        self.cycle = cycle
        self.kwargs: dict[str, Any] = {"cycle": cycle}
        self.message: str = self.msg_fmt % self.kwargs
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # The default would call the class with the message as a positional argument.
        return (functools.partial(type(self), cycle=self.cycle), ())


class Node(Generic[_K]):
    """A node of a dependency graph: the keys it requires and the keys that require it."""

    __slots__ = ("require", "satisfy")

    def __init__(
        self,
        requires: Iterable[_K] | None = None,
        required_by: Iterable[_K] | None = None,
    ) -> None:
        """Make a node, copying the optional sets of required and requiring keys."""
        self.require: set[_K] = set(requires) if requires else set()
        self.satisfy: set[_K] = set(required_by) if required_by else set()

    def copy(self) -> Node[_K]:
        """Return a copy of the node."""
        return Node(self.require, self.satisfy)

    def reverse_copy(self) -> Node[_K]:
        """Return a copy of the node with the edge directions reversed."""
        return Node(self.satisfy, self.require)

    def required_by(self, source: _K | None = None) -> Iterator[_K]:
        """Iterate over the keys that require this node, after adding ``source`` if given."""
        if source is not None:
            self.satisfy.add(source)
        return iter(self.satisfy)

    def requires(self, target: _K | None = None) -> Iterator[_K]:
        """Iterate over the keys this node requires, after adding ``target`` if given."""
        if target is not None:
            self.require.add(target)
        return iter(self.require)

    def __isub__(self, target: _K) -> Self:
        """Remove a key that this node requires (``KeyError`` if it does not)."""
        self.require.remove(target)
        return self

    def __bool__(self) -> bool:
        """Return True if this node is not a leaf (it requires other nodes)."""
        return bool(self.require)

    def stem(self) -> bool:
        """Return True if this node is a stem (required by nothing)."""
        return not self.satisfy

    def disjoint(self) -> bool:
        """Return True if this node is both a leaf and a stem."""
        return not self and self.stem()

    def __len__(self) -> int:
        """Count the keys this node requires."""
        return len(self.require)

    def __iter__(self) -> Iterator[_K]:
        """Iterate over the keys this node requires."""
        return iter(self.require)

    def __str__(self) -> str:
        return "{" + ", ".join(str(n) for n in self) + "}"

    def __repr__(self) -> str:
        return repr(self.require)


class Graph(collections.defaultdict[_K, Node[_K]]):
    """A mutable mapping of keys to the :class:`Node` of each; a missing key reads as a new
    node with no edges."""

    def __init__(self, nodes: Mapping[_K, Node[_K]] | Iterable[tuple[_K, Node[_K]]] = ()) -> None:
        super().__init__(Node, nodes)

    def map(self, func: Callable[[Node[_K]], _V]) -> dict[_K, _V]:
        """Return a dict of each key to ``func`` applied to its node."""
        return {k: func(n) for k, n in self.items()}

    def copy(self) -> Graph[_K]:
        """Return a copy of the graph, nodes copied too."""
        return Graph(self.map(lambda n: n.copy()))

    def reverse_copy(self) -> Graph[_K]:
        """Return a copy of the graph with the edges reversed."""
        return Graph(self.map(lambda n: n.reverse_copy()))

    def edges(self) -> Iterator[tuple[_K, _K | None]]:
        """Iterate over the edges; a key with no edge at all gives ``(key, None)``."""

        def outgoing_edges(rqr: _K, node: Node[_K]) -> Iterator[tuple[_K, _K | None]]:
            if node.disjoint():
                yield (rqr, None)
            else:
                for rqd in node:
                    yield (rqr, rqd)

        return itertools.chain.from_iterable(outgoing_edges(*i) for i in self.items())

    def __delitem__(self, key: _K) -> None:
        """Delete a key's node, and the key from the requirements of the nodes requiring it."""
        # Heat reads through self[...], which on this defaultdict would bring back a node
        # already deleted as an empty one; plain lookups keep deletion free of side effects.
        node = self.get(key)
        if node is None:
            # As in Heat, deleting a missing key is not an error.
            return
        for src in node.required_by():
            src_node = self.get(src)
            if src_node is not None and key in src_node.require:
                src_node -= key
        super().__delitem__(key)

    def __str__(self) -> str:
        return "{" + ", ".join(f"{k}: {v}" for k, v in self.items()) + "}"

    @staticmethod
    def toposort(graph: Graph[_K]) -> Iterator[_K]:
        """Iterate over the keys of ``graph`` in topological order, required keys first.

        This empties ``graph`` as it goes. A cycle raises :class:`CircularDependencyException`
        once no remaining key is free of requirements.
        """
        # Always the first free key in the graph's order, as in Heat: group tasks start in a
        # predictable order, which the users of a scheduler see.
        for _ in range(len(graph)):
            for key, node in graph.items():
                if not node:
                    yield key
                    del graph[key]
                    break
            else:
                raise CircularDependencyException(cycle=str(graph))


class Dependencies(Generic[_K]):
    """A dependency graph built from ``(requirer, required)`` edges."""

    def __init__(self, edges: Iterable[tuple[_K, _K | None]] | None = None) -> None:
        """Make the graph from edges; ``(key, None)`` adds a key with no requirements."""
        self._graph: Graph[_K] = Graph()
        for e in edges or ():
            self += e

    def __iadd__(self, edge: tuple[_K, _K | None]) -> Self:
        """Add another edge, a ``(requirer, required)`` tuple."""
        requirer, required = edge
        if required is None:
            # Reading a missing key of the defaultdict creates its node.
            self._graph[requirer]
        else:
            self._graph[required].required_by(requirer)
            self._graph[requirer].requires(required)
        return self

    def required_by(self, last: _K) -> Iterator[_K]:
        """Iterate over the keys that require ``last`` (``KeyError`` if unknown)."""
        if last not in self._graph:
            raise KeyError(last)
        return self._graph[last].required_by()

    def requires(self, source: _K) -> Iterator[_K]:
        """Iterate over the keys that ``source`` requires (``KeyError`` if unknown)."""
        if source not in self._graph:
            raise KeyError(source)
        return self._graph[source].requires()

    def __getitem__(self, last: _K) -> Dependencies[_K]:
        """Return the partial graph of ``last`` and of every key that requires it, directly or
        not (``KeyError`` if unknown)."""
        if last not in self._graph:
            raise KeyError(last)

        def get_edges(key: _K) -> Iterator[tuple[_K, _K | None]]:
            # A loop, not recursion: a chain of thousands of tasks is a plain task file.
            seen, todo = {key}, [key]
            while todo:
                current = todo.pop()
                for rqr in self._graph[current].required_by():
                    yield (rqr, current)
                    if rqr not in seen:
                        seen.add(rqr)
                        todo.append(rqr)

        if self._graph[last].stem():
            # Nothing requires it: the key alone.
            return Dependencies([(last, None)])
        return Dependencies(get_edges(last))

    def leaves(self) -> Iterator[_K]:
        """Iterate over the keys that require nothing."""
        return (requirer for requirer, required in self._graph.items() if not required)

    def roots(self) -> Iterator[_K]:
        """Iterate over the keys that nothing requires."""
        return (requirer for requirer, required in self.graph(reverse=True).items() if not required)

    def translate(self, transform: Callable[[_K], _U]) -> Dependencies[_U]:
        """Return a new graph of the same type with every key mapped by ``transform``."""

        def transform_key(key: _K | None) -> _U | None:
            return transform(key) if key is not None else None

        # type(self) keeps a subclass a subclass, as in Heat.
        cls = cast("type[Dependencies[_U]]", type(self))
        edges = self._graph.edges()
        return cls((transform(rqr), transform_key(rqd)) for rqr, rqd in edges)

    def __str__(self) -> str:
        return str(self._graph)

    def __repr__(self) -> str:
        edge_reprs = sorted(repr(e) for e in self._graph.edges())
        return f"Dependencies([{', '.join(edge_reprs)}])"

    def graph(self, reverse: bool = False) -> Graph[_K]:
        """Return a copy of the graph, with the edges reversed if ``reverse``."""
        if reverse:
            return self._graph.reverse_copy()
        return self._graph.copy()

    def __iter__(self) -> Iterator[_K]:
        """Iterate over the keys in topological order, required keys first."""
        return Graph.toposort(self.graph())

    def __reversed__(self) -> Iterator[_K]:
        """Iterate over the keys in reverse topological order, requiring keys first."""
        return Graph.toposort(self.graph(reverse=True))
