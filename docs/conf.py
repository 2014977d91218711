"""Sphinx configuration of the previsio_sdk documentation.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` from the repository root.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

# Document the working tree even when the package is not installed (an installed copy would do as well).
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import previsio_sdk  # noqa: E402

# -- Project -----------------------------------------------------------------------------------------------------
project = "previsio_sdk"
author = "The previsio_sdk authors"
copyright = f"{date.today().year}, {author}"
release = previsio_sdk.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
root_doc = "index"
language = "en"
pygments_style = "sphinx"
pygments_dark_style = "monokai"

# -- autodoc and napoleon ----------------------------------------------------------------------------------------
autodoc_typehints = "description"
# Types of documented parameters only: the attrs resources document their fields under "Attributes", which is
# enough; repeating every constructor parameter without a description would only add noise.
autodoc_typehints_description_target = "documented_params"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_class_signature = "mixed"
autodoc_default_options = {
    "members": True,
}
# The SDK only imports requests and attrs at import time; the server package needs its own dependencies, which
# the base install brings. Nothing has to be mocked.
autodoc_mock_imports: list[str] = []

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_include_init_with_doc = False
napoleon_use_admonition_for_examples = False
# Render "Attributes:" sections as fields of the class, so that autodoc never describes an attribute twice.
napoleon_use_ivar = True
napoleon_use_rtype = False
napoleon_preprocess_types = False

# -- intersphinx -------------------------------------------------------------------------------------------------
# No network at build time: no inventories are fetched. Add entries here (with a local inventory file as the
# second element of each tuple) to link to Python, pandas or pyarrow.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
intersphinx_disabled_reftypes = ["*"]

# -- HTML --------------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"previsio_sdk {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": True,
}
html_show_sourcelink = False


# -- Hooks -------------------------------------------------------------------------------------------------------
def _attrs_factory_defaults(app, what, name, obj, options, signature, return_annotation):  # type: ignore[no-untyped-def]
    """Show ``<factory>`` (as dataclasses do) instead of attrs' ``NOTHING`` for fields with a default factory."""
    if signature and "=NOTHING" in signature:
        signature = signature.replace("=NOTHING", "=<factory>")
    return signature, return_annotation


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("autodoc-process-signature", _attrs_factory_defaults)
