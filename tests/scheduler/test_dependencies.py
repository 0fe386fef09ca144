#
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.
#
# Ported from OpenStack Heat (Apache-2.0): heat/tests/engine/test_dependencies.py of
# openstack-heat 27.0.1. Changed: the imports, HeatTestCase replaced by
# common.SchedulerTestCase, type hints and ruff's style fixes. spawnkit's own tests follow
# the ported ones, after the marked line.
"""Tests of spawnkit.core.dependencies: Heat's, then spawnkit's for the rest of the spec."""

import pickle
import unittest
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from spawnkit.core import dependencies

from . import common


class dependenciesTest(common.SchedulerTestCase):
    def _dep_test(
        self,
        func: Callable[[dependencies.Dependencies[str]], Iterator[str]],
        checkorder: Callable[[int, int], Any],
        deps: Sequence[tuple[str, str]],
    ) -> None:
        nodes = set.union(*[set(e) for e in deps])

        d = dependencies.Dependencies(deps)
        order = list(func(d))

        for n in nodes:
            self.assertIn(n, order, f'"{n}" is not in the sequence')
            self.assertEqual(1, order.count(n))

        self.assertEqual(len(nodes), len(order))

        for lr, fr in deps:
            checkorder(order.index(fr), order.index(lr))

    def _dep_test_fwd(self, *deps: tuple[str, str]) -> None:
        self._dep_test(iter, self.assertLess, deps)

    def _dep_test_rev(self, *deps: tuple[str, str]) -> None:
        self._dep_test(reversed, self.assertGreater, deps)

    def test_edges(self) -> None:
        input_edges = [("1", None), ("2", "3"), ("2", "4")]
        dp = dependencies.Dependencies(input_edges)
        self.assertEqual(set(input_edges), set(dp.graph().edges()))

    def test_repr(self) -> None:
        dp = dependencies.Dependencies([("1", None), ("2", "3"), ("2", "4")])
        s = "Dependencies([('1', None), ('2', '3'), ('2', '4')])"
        self.assertEqual(s, repr(dp))

    def test_single_node(self) -> None:
        d = dependencies.Dependencies([("only", None)])
        li = list(iter(d))
        self.assertEqual(1, len(li))
        self.assertEqual("only", li[0])

    def test_disjoint(self) -> None:
        d = dependencies.Dependencies([("1", None), ("2", None)])
        li = list(iter(d))
        self.assertEqual(2, len(li))
        self.assertIn("1", li)
        self.assertIn("2", li)

    def test_single_fwd(self) -> None:
        self._dep_test_fwd(("second", "first"))

    def test_single_rev(self) -> None:
        self._dep_test_rev(("second", "first"))

    def test_chain_fwd(self) -> None:
        self._dep_test_fwd(("third", "second"), ("second", "first"))

    def test_chain_rev(self) -> None:
        self._dep_test_rev(("third", "second"), ("second", "first"))

    def test_diamond_fwd(self) -> None:
        self._dep_test_fwd(("last", "mid1"), ("last", "mid2"), ("mid1", "first"), ("mid2", "first"))

    def test_diamond_rev(self) -> None:
        self._dep_test_rev(("last", "mid1"), ("last", "mid2"), ("mid1", "first"), ("mid2", "first"))

    def test_complex_fwd(self) -> None:
        self._dep_test_fwd(
            ("last", "mid1"),
            ("last", "mid2"),
            ("mid1", "mid3"),
            ("mid1", "first"),
            ("mid3", "first"),
            ("mid2", "first"),
        )

    def test_complex_rev(self) -> None:
        self._dep_test_rev(
            ("last", "mid1"),
            ("last", "mid2"),
            ("mid1", "mid3"),
            ("mid1", "first"),
            ("mid3", "first"),
            ("mid2", "first"),
        )

    def test_many_edges_fwd(self) -> None:
        self._dep_test_fwd(
            ("last", "e1"),
            ("last", "mid1"),
            ("last", "mid2"),
            ("mid1", "e2"),
            ("mid1", "mid3"),
            ("mid2", "mid3"),
            ("mid3", "e3"),
        )

    def test_many_edges_rev(self) -> None:
        self._dep_test_rev(
            ("last", "e1"),
            ("last", "mid1"),
            ("last", "mid2"),
            ("mid1", "e2"),
            ("mid1", "mid3"),
            ("mid2", "mid3"),
            ("mid3", "e3"),
        )

    def test_dbldiamond_fwd(self) -> None:
        self._dep_test_fwd(
            ("last", "a1"),
            ("last", "a2"),
            ("a1", "b1"),
            ("a2", "b1"),
            ("a2", "b2"),
            ("b1", "first"),
            ("b2", "first"),
        )

    def test_dbldiamond_rev(self) -> None:
        self._dep_test_rev(
            ("last", "a1"),
            ("last", "a2"),
            ("a1", "b1"),
            ("a2", "b1"),
            ("a2", "b2"),
            ("b1", "first"),
            ("b2", "first"),
        )

    def test_circular_fwd(self) -> None:
        d = dependencies.Dependencies(
            [("first", "second"), ("second", "third"), ("third", "first")]
        )
        self.assertRaises(dependencies.CircularDependencyException, list, iter(d))

    def test_circular_rev(self) -> None:
        d = dependencies.Dependencies(
            [("first", "second"), ("second", "third"), ("third", "first")]
        )
        self.assertRaises(dependencies.CircularDependencyException, list, reversed(d))

    def test_self_ref(self) -> None:
        d = dependencies.Dependencies([("node", "node")])
        self.assertRaises(dependencies.CircularDependencyException, list, iter(d))

    def test_complex_circular_fwd(self) -> None:
        d = dependencies.Dependencies(
            [
                ("last", "e1"),
                ("last", "mid1"),
                ("last", "mid2"),
                ("mid1", "e2"),
                ("mid1", "mid3"),
                ("mid2", "mid3"),
                ("mid3", "e3"),
                ("e3", "mid1"),
            ]
        )
        self.assertRaises(dependencies.CircularDependencyException, list, iter(d))

    def test_complex_circular_rev(self) -> None:
        d = dependencies.Dependencies(
            [
                ("last", "e1"),
                ("last", "mid1"),
                ("last", "mid2"),
                ("mid1", "e2"),
                ("mid1", "mid3"),
                ("mid2", "mid3"),
                ("mid3", "e3"),
                ("e3", "mid1"),
            ]
        )
        self.assertRaises(dependencies.CircularDependencyException, list, reversed(d))

    def test_noexist_partial(self) -> None:
        d = dependencies.Dependencies([("foo", "bar")])

        def get(i: str) -> dependencies.Dependencies[str]:
            return d[i]

        self.assertRaises(KeyError, get, "baz")

    def test_single_partial(self) -> None:
        d = dependencies.Dependencies([("last", "first")])
        p = d["last"]
        li = list(iter(p))
        self.assertEqual(1, len(li))
        self.assertEqual("last", li[0])

    def test_simple_partial(self) -> None:
        d = dependencies.Dependencies([("last", "middle"), ("middle", "first")])
        p = d["middle"]
        order = list(iter(p))
        self.assertEqual(2, len(order))
        for n in ("last", "middle"):
            self.assertIn(n, order, f"'{n}' not found in dependency order")
        self.assertGreater(order.index("last"), order.index("middle"))

    def test_simple_multilevel_partial(self) -> None:
        d = dependencies.Dependencies(
            [("last", "middle"), ("middle", "target"), ("target", "first")]
        )
        p = d["target"]
        order = list(iter(p))
        self.assertEqual(3, len(order))
        for n in ("last", "middle", "target"):
            self.assertIn(n, order, f"'{n}' not found in dependency order")

    def test_complex_partial(self) -> None:
        d = dependencies.Dependencies(
            [
                ("last", "e1"),
                ("last", "mid1"),
                ("last", "mid2"),
                ("mid1", "e2"),
                ("mid1", "mid3"),
                ("mid2", "mid3"),
                ("mid3", "e3"),
            ]
        )
        p = d["mid3"]
        order = list(iter(p))
        self.assertEqual(4, len(order))
        for n in ("last", "mid1", "mid2", "mid3"):
            self.assertIn(n, order, f"'{n}' not found in dependency order")

    def test_required_by(self) -> None:
        d = dependencies.Dependencies(
            [
                ("last", "e1"),
                ("last", "mid1"),
                ("last", "mid2"),
                ("mid1", "e2"),
                ("mid1", "mid3"),
                ("mid2", "mid3"),
                ("mid3", "e3"),
            ]
        )

        self.assertEqual(0, len(list(d.required_by("last"))))

        required_by = list(d.required_by("mid3"))
        self.assertEqual(2, len(required_by))
        for n in ("mid1", "mid2"):
            self.assertIn(n, required_by, f"'{n}' not found in required_by")

        required_by = list(d.required_by("e2"))
        self.assertEqual(1, len(required_by))
        self.assertIn("mid1", required_by, f"'{n}' not found in required_by")

        self.assertRaises(KeyError, d.required_by, "foo")

    def test_leaves(self) -> None:
        d = dependencies.Dependencies(
            [("last1", "mid"), ("last2", "mid"), ("mid", "first1"), ("mid", "first2")]
        )

        leaves = sorted(list(d.leaves()))

        self.assertEqual(["first1", "first2"], leaves)

    def test_roots(self) -> None:
        d = dependencies.Dependencies(
            [("last1", "mid"), ("last2", "mid"), ("mid", "first1"), ("mid", "first2")]
        )

        leaves = sorted(list(d.roots()))

        self.assertEqual(["last1", "last2"], leaves)


# ---- spawnkit's own tests: the rules of the spec that the ported tests leave open -------------


class OwnDependenciesTest(common.SchedulerTestCase):
    def test_requires(self) -> None:
        d = dependencies.Dependencies([("last", "a"), ("last", "b"), ("a", "first")])
        self.assertEqual({"a", "b"}, set(d.requires("last")))
        self.assertEqual(set(), set(d.requires("first")))
        self.assertIsInstance(d.requires("last"), Iterator)
        self.assertRaises(KeyError, d.requires, "missing")

    def test_iadd(self) -> None:
        d: dependencies.Dependencies[str] = dependencies.Dependencies()
        self.assertEqual([], list(d))
        d += ("second", "first")
        d += ("lonely", None)
        self.assertEqual({"first", "lonely"}, set(d.leaves()))
        self.assertEqual(["first"], list(d.requires("second")))
        self.assertEqual(["second"], list(d.required_by("first")))

    def test_iter_is_a_fresh_order_each_time(self) -> None:
        d = dependencies.Dependencies([("c", "b"), ("b", "a")])
        self.assertEqual(["a", "b", "c"], list(d))
        self.assertEqual(["a", "b", "c"], list(d))
        self.assertEqual(["c", "b", "a"], list(reversed(d)))

    def test_getitem_returns_new_dependencies(self) -> None:
        d = dependencies.Dependencies([("c", "b"), ("b", "a"), ("x", "a")])
        part = d["b"]
        self.assertIsInstance(part, dependencies.Dependencies)
        self.assertEqual(["b", "c"], list(part))
        self.assertEqual({"a", "b", "c", "x"}, set(d))

    def test_translate(self) -> None:
        d = dependencies.Dependencies([("b", "a"), ("lonely", None)])
        t = d.translate(str.upper)
        self.assertEqual("Dependencies([('B', 'A'), ('LONELY', None)])", repr(t))
        self.assertEqual("Dependencies([('b', 'a'), ('lonely', None)])", repr(d))

    def test_translate_keeps_the_subclass(self) -> None:
        class MyDependencies(dependencies.Dependencies[str]):
            pass

        t = MyDependencies([("b", "a")]).translate(str.upper)
        self.assertIs(MyDependencies, type(t))

    def test_str(self) -> None:
        d = dependencies.Dependencies([("b", "a")])
        self.assertEqual(str(d.graph()), str(d))
        self.assertIn(str(d), ("{a: {}, b: {a}}", "{b: {a}, a: {}}"))

    def test_graph_is_a_copy(self) -> None:
        d = dependencies.Dependencies([("b", "a")])
        g = d.graph()
        del g["a"]
        g["c"].requires("b")
        self.assertEqual(["a", "b"], list(d))
        self.assertEqual(["a"], list(d.requires("b")))

    def test_graph_reverse(self) -> None:
        d = dependencies.Dependencies([("b", "a")])
        g = d.graph(reverse=True)
        self.assertEqual({"b"}, set(g["a"]))
        self.assertFalse(g["b"])
        self.assertEqual(["b", "a"], list(dependencies.Graph.toposort(g)))

    def test_roots_and_leaves_of_disjoint_keys(self) -> None:
        d = dependencies.Dependencies([("only", None)])
        self.assertEqual(["only"], list(d.leaves()))
        self.assertEqual(["only"], list(d.roots()))

    def test_cycle_raised_on_iteration_not_on_build(self) -> None:
        d = dependencies.Dependencies([("a", "b"), ("b", "a"), ("c", None)])
        it = iter(d)
        self.assertEqual("c", next(it))
        exc = self.assertRaises(dependencies.CircularDependencyException, next, it)
        # The graph in its insertion order: "b" was first seen, as required by "a".
        self.assertEqual("{b: {a}, a: {b}}", exc.cycle)
        self.assertEqual("Circular Dependency Found: {b: {a}, a: {b}}", str(exc))

    def test_self_reference_message(self) -> None:
        d = dependencies.Dependencies([("node", "node")])
        exc = self.assertRaises(dependencies.CircularDependencyException, list, d)
        self.assertEqual("Circular Dependency Found: {node: {node}}", str(exc))

    def test_circular_exception(self) -> None:
        exc = dependencies.CircularDependencyException(cycle="{x: {x}}")
        self.assertIsInstance(exc, Exception)
        self.assertEqual({"cycle": "{x: {x}}"}, exc.kwargs)
        copy = pickle.loads(pickle.dumps(exc))
        self.assertEqual(str(exc), str(copy))
        self.assertEqual(exc.cycle, copy.cycle)

    def test_repr_empty(self) -> None:
        self.assertEqual("Dependencies([])", repr(dependencies.Dependencies()))


class OwnGraphTest(common.SchedulerTestCase):
    def _graph(self) -> dependencies.Graph[str]:
        return dependencies.Dependencies([("c", "b"), ("c", "a"), ("b", "a"), ("x", None)]).graph()

    def test_is_a_defaultdict_of_nodes(self) -> None:
        g: dependencies.Graph[str] = dependencies.Graph()
        node = g["new"]
        self.assertIsInstance(node, dependencies.Node)
        self.assertIn("new", g)
        self.assertTrue(node.disjoint())

    def test_map(self) -> None:
        self.assertEqual({"a": 0, "b": 1, "c": 2, "x": 0}, self._graph().map(len))

    def test_copy_copies_nodes(self) -> None:
        g = self._graph()
        c = g.copy()
        self.assertIsInstance(c, dependencies.Graph)
        c["b"] -= "a"
        self.assertEqual({"a"}, set(g["b"]))

    def test_reverse_copy(self) -> None:
        r = self._graph().reverse_copy()
        self.assertEqual({"b", "c"}, set(r["a"]))
        self.assertEqual({"c"}, set(r["b"]))
        self.assertEqual(set(), set(r["c"]))
        self.assertEqual({"a"}, set(r["b"].required_by()))

    def test_edges(self) -> None:
        self.assertEqual(
            {("c", "b"), ("c", "a"), ("b", "a"), ("x", None)}, set(self._graph().edges())
        )

    def test_del_removes_key_from_requirers(self) -> None:
        g = self._graph()
        del g["a"]
        self.assertNotIn("a", g)
        self.assertEqual(set(), set(g["b"]))
        self.assertEqual({"b"}, set(g["c"]))

    def test_del_does_not_bring_back_deleted_keys(self) -> None:
        g = self._graph()
        del g["c"]
        del g["b"]
        del g["a"]
        self.assertEqual(["x"], list(g))

    def test_del_missing_key_is_no_error(self) -> None:
        g = self._graph()
        del g["missing"]
        self.assertNotIn("missing", g)

    def test_str(self) -> None:
        g = dependencies.Dependencies([("b", "a")]).graph()
        self.assertEqual("{a: {}, b: {a}}", str(g))

    def test_toposort_is_destructive(self) -> None:
        g = self._graph()
        self.assertEqual(["a", "b", "c", "x"], sorted(dependencies.Graph.toposort(g)))
        self.assertEqual({}, dict(g))

    def test_toposort_order(self) -> None:
        order = list(dependencies.Graph.toposort(self._graph()))
        self.assertLess(order.index("a"), order.index("b"))
        self.assertLess(order.index("b"), order.index("c"))


class OwnNodeTest(common.SchedulerTestCase):
    def test_empty(self) -> None:
        node: dependencies.Node[str] = dependencies.Node()
        self.assertFalse(node)
        self.assertTrue(node.stem())
        self.assertTrue(node.disjoint())
        self.assertEqual(0, len(node))
        self.assertEqual([], list(node))

    def test_requires_and_required_by(self) -> None:
        node: dependencies.Node[str] = dependencies.Node()
        self.assertEqual(["a"], list(node.requires("a")))
        self.assertEqual(["z"], list(node.required_by("z")))
        self.assertEqual(["a"], list(node.requires()))
        self.assertEqual(["z"], list(node.required_by()))
        self.assertTrue(node)
        self.assertFalse(node.stem())
        self.assertFalse(node.disjoint())
        self.assertEqual(1, len(node))
        self.assertEqual(["a"], list(node))

    def test_leaf_that_is_required_is_not_disjoint(self) -> None:
        node = dependencies.Node(required_by={"z"})
        self.assertFalse(node)
        self.assertFalse(node.stem())
        self.assertFalse(node.disjoint())

    def test_isub(self) -> None:
        node = dependencies.Node({"a", "b"})
        node -= "a"
        self.assertEqual({"b"}, set(node))
        with self.assertRaises(KeyError):
            node -= "a"

    def test_init_copies_sets(self) -> None:
        requires = {"a"}
        node = dependencies.Node(requires)
        requires.add("b")
        self.assertEqual({"a"}, set(node))

    def test_copy(self) -> None:
        node = dependencies.Node({"a"}, {"z"})
        copy = node.copy()
        copy.requires("b")
        self.assertEqual({"a"}, set(node))
        self.assertEqual({"z"}, set(copy.required_by()))

    def test_reverse_copy(self) -> None:
        node = dependencies.Node({"a"}, {"z"})
        rev = node.reverse_copy()
        self.assertEqual({"z"}, set(rev.requires()))
        self.assertEqual({"a"}, set(rev.required_by()))

    def test_str_and_repr(self) -> None:
        node = dependencies.Node({"a"})
        self.assertEqual("{a}", str(node))
        self.assertEqual("{'a'}", repr(node))
        self.assertEqual("{}", str(dependencies.Node()))


_names = st.sampled_from("abcdefgh")


class OwnOrderProperties(unittest.TestCase):
    @given(st.lists(st.tuples(_names, _names), max_size=20))
    @settings(max_examples=60, deadline=None)
    def test_topological_order_or_cycle(self, edges: list[tuple[str, str]]) -> None:
        d = dependencies.Dependencies(edges)
        keys = {k for edge in edges for k in edge}
        try:
            order = list(d)
        except dependencies.CircularDependencyException:
            self.assertTrue(_has_cycle(edges))
            return
        self.assertFalse(_has_cycle(edges))
        self.assertEqual(keys, set(order))
        self.assertEqual(len(keys), len(order))
        for requirer, required in edges:
            self.assertLess(order.index(required), order.index(requirer))
        rev = list(reversed(d))
        for requirer, required in edges:
            self.assertLess(rev.index(requirer), rev.index(required))


def _has_cycle(edges: list[tuple[str, str]]) -> bool:
    requires: dict[str, set[str]] = {}
    for requirer, required in edges:
        requires.setdefault(requirer, set()).add(required)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in requires.get(start, ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, goal, seen):
                    return True
        return False

    return any(reaches(k, k, set()) for k in requires)
