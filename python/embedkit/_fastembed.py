"""embedkit under fastembed's name, for the libraries that import fastembed themselves
(qdrant-client, LangChain, LlamaIndex, Haystack): see `install_as_fastembed`."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import sys
import types
from typing import Any

# The fastembed release whose API, names and outputs embedkit reproduces.
FASTEMBED_API = "0.9.1"
_MARK = "__embedkit_alias__"


def _alias_version() -> str:
    from . import __version__

    # A PEP 440 local version: fastembed's API release, then which embedkit serves it.
    return f"{FASTEMBED_API}+embedkit.{__version__.replace('-', '.')}"


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves `fastembed.X` to `embedkit.X` (the same module object, under both names),
    and answers importlib.metadata for the `fastembed` distribution when the real one is
    not installed (LangChain checks its version that way)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None):
        if name != "fastembed" and not name.startswith("fastembed."):
            return None
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        if spec.name == "fastembed":
            return sys.modules["fastembed"]
        target = "embedkit" + spec.name[len("fastembed"):]
        try:
            return importlib.import_module(target)
        except ImportError as e:
            raise ImportError(
                f"{spec.name} is a part of fastembed that embedkit does not provide "
                f"(looked for {target}); its public classes are importable from the "
                f"top-level fastembed module"
            ) from e

    def exec_module(self, module) -> None:
        # The embedkit module is already initialised.
        pass

    def find_distributions(self, context=importlib.metadata.DistributionFinder.Context()):
        if context.name not in ("fastembed", None):
            return iter(())
        if _real_distribution_installed():
            return iter(())
        return iter([_Distribution()])


def _real_distribution_installed() -> bool:
    for finder in sys.meta_path:
        if isinstance(finder, _Finder) or not hasattr(finder, "find_distributions"):
            continue
        context = importlib.metadata.DistributionFinder.Context(name="fastembed")
        if any(True for _ in finder.find_distributions(context)):
            return True
    return False


class _Distribution(importlib.metadata.Distribution):
    """Metadata of the alias: name fastembed, the alias version."""

    def read_text(self, filename: str):
        if filename == "METADATA":
            return (f"Metadata-Version: 2.1\nName: fastembed\nVersion: {_alias_version()}\n"
                    "Summary: embedkit serving fastembed's API\n")
        return None

    def locate_file(self, path):
        return path


def install_as_fastembed() -> None:
    """Makes `import fastembed` (and `fastembed.common`, `fastembed.rerank.cross_encoder`,
    ...) give embedkit, for libraries that import fastembed themselves. Call it once,
    before importing them::

        import embedkit; embedkit.install_as_fastembed()
        from qdrant_client import QdrantClient, models   # now runs on embedkit

    Calling it again does nothing. If the real fastembed is already imported it raises
    RuntimeError: the libraries that imported it hold its classes already.
    """
    current = sys.modules.get("fastembed")
    if current is not None:
        if getattr(current, _MARK, False):
            return
        raise RuntimeError(
            "the real fastembed is already imported, so libraries that imported it keep "
            "using it; call embedkit.install_as_fastembed() before importing fastembed or "
            "any library that imports it (qdrant_client, langchain, llama_index, ...)"
        )
    embedkit = importlib.import_module("embedkit")
    alias = types.ModuleType("fastembed", "embedkit, installed as fastembed")
    for name in getattr(embedkit, "__all__", []):
        setattr(alias, name, getattr(embedkit, name))
    alias.__version__ = _alias_version()
    alias.__path__ = []  # a package: its submodules come from the finder
    setattr(alias, _MARK, True)
    finder = _Finder()
    alias.__spec__ = importlib.machinery.ModuleSpec("fastembed", finder, is_package=True)
    sys.modules["fastembed"] = alias
    sys.meta_path.insert(0, finder)
