"""Every public function and class of the reference states its formula and links its docs page.

Learners read the docstring next to the code, then follow the link to the derivation. Public
means: the module's ``__all__`` if it has one, else the functions and classes it defines whose
names do not start with ``_``; for a class also the ``forward``, ``backward``, ``step`` and
``update`` it has (inherited ones included, each function checked once).
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

MODULES = (
    "refcnn.im2col",
    "refcnn.functional",
    "refcnn.functional.activations",
    "refcnn.functional.conv",
    "refcnn.functional.dropout",
    "refcnn.functional.linear",
    "refcnn.functional.losses",
    "refcnn.functional.normalization",
    "refcnn.functional.pooling",
    "refcnn.functional.softmax",
    "refcnn.optim",
    "refcnn.optim_book",
    "refcnn.layers",
    "refcnn.networks",
    "refcnn.gradcheck",
    "refcnn.geometry",
)
METHODS = ("forward", "backward", "step", "update")
PAGE = re.compile(r"docs/[\w./-]+?\.md")


def _public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module_name
    ]


def _public_items() -> dict[str, object]:
    """``{"module.qualname": function or class}``, each object once (re-exports are skipped)."""
    items: dict[str, object] = {}
    seen: set[int] = set()

    def add(label: str, value: object) -> None:
        if id(value) not in seen:
            seen.add(id(value))
            items[label] = value

    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in _public_names(module_name):
            value = getattr(module, name)
            if not (inspect.isfunction(value) or inspect.isclass(value)):
                continue  # constants and type aliases: SELU_ALPHA, optim.State
            label = f"{value.__module__}.{value.__qualname__}"
            add(label, value)
            if inspect.isclass(value):
                for method in METHODS:
                    function = getattr(value, method, None)
                    if inspect.isfunction(function):
                        # named after the class that defines it, unless that class is private
                        owner = function.__qualname__.rsplit(".", 1)[0]
                        public = not owner.startswith("_")
                        qualname = (
                            function.__qualname__ if public else f"{value.__qualname__}.{method}"
                        )
                        add(f"{function.__module__}.{qualname}", function)
    return items


ITEMS = _public_items()


def _docstring(label: str) -> str:
    """The object's OWN docstring (inspect.getdoc would fall back to a base class's)."""
    doc = ITEMS[label].__doc__
    assert doc and doc.strip(), f"{label} has no docstring"
    return doc


def test_the_collection_finds_the_public_api() -> None:
    expected = {
        "refcnn.im2col.col2im",
        "refcnn.functional.conv.conv2d_backward",
        "refcnn.functional.activations.relu_backward",
        "refcnn.optim.Adam",
        "refcnn.optim.Optimizer.step",
        "refcnn.optim_book.Momentum",
        "refcnn.layers.Affine.backward",
        "refcnn.layers.Relu",
        "refcnn.networks.SimpleConvNet.backward",
        "refcnn.gradcheck.numerical_gradient",
        "refcnn.geometry.pooling_geometry",
    }
    assert expected <= set(ITEMS), f"not collected: {sorted(expected - set(ITEMS))}"
    assert not any(label.rsplit(".", 1)[-1].startswith("_") for label in ITEMS)


@pytest.mark.parametrize("label", list(ITEMS))
def test_docstring_links_an_existing_docs_page(label: str) -> None:
    doc = _docstring(label)
    pages = PAGE.findall(doc)
    assert pages, f"{label}'s docstring names no page: end it with a line 'See docs/<page>.md.'"
    missing = [page for page in pages if not (ROOT / page).is_file()]
    assert not missing, f"{label}'s docstring links {missing}, which do not exist under {ROOT}"


@pytest.mark.parametrize(
    "label",
    [
        label
        for label in ITEMS
        if label.endswith("_backward") or label.rsplit(".", 1)[-1] == "backward"
    ],
)
def test_backward_docstring_states_its_formula(label: str) -> None:
    doc = _docstring(label)
    assert "=" in doc, f"{label}'s docstring states no formula (no '=' in {doc!r})"


@pytest.mark.parametrize("module_name", MODULES)
def test_pages_named_in_module_docstrings_exist(module_name: str) -> None:
    doc = importlib.import_module(module_name).__doc__ or ""
    missing = [page for page in PAGE.findall(doc) if not (ROOT / page).is_file()]
    assert not missing, f"{module_name}'s module docstring links {missing}, which do not exist"
