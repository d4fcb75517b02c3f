"""The package's layers, as docs/architecture.md draws them, hold in the code.

Every `import` and `from ... import` of a legan_tf module, at module level or inside a function, is an
edge of the import graph (read from the source with `ast`, nothing is imported). A module may import
modules of its own layer and of the layers below it, never of a layer above; and the graph has no
cycle, within a layer or across. The package's `__init__` is outside the layers: `import legan_tf`
registers every network with Keras, so it imports the models.

The studies (studies/<study>/) stand outside the product: nothing of the package, the scripts, the serving
scripts or the tools imports one, and a study imports only the package's public modules and names (no part
starting with an underscore) and its own folder.
"""

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "legan_tf")

# Bottom to top. A name is a module or a package (all of its modules). Keep in step with
# docs/architecture.md.
LAYERS = (
    ("kernel", ("legan_tf.errors", "legan_tf.backend", "legan_tf.hparams", "legan_tf.random_streams",
                "legan_tf.labels", "legan_tf.layers", "legan_tf.losses", "legan_tf.geometry", "legan_tf.precision",
                "legan_tf.optimizers", "legan_tf.visualize", "legan_tf.statistics", "legan_tf.output_dirs",
                "legan_tf.local_http", "legan_tf.digests", "legan_tf.adversarial")),
    ("data", ("legan_tf.data",)),
    ("models", ("legan_tf.models",)),
    ("gan", ("legan_tf.gan",)),
    ("pretrained", ("legan_tf.pretrained",)),
    ("runs", ("legan_tf.runs",)),
    ("tasks", ("legan_tf.tasks",)),
    ("serving", ("legan_tf.serving",)),
    ("training", ("legan_tf.training",)),
    ("photos", ("legan_tf.photos",)),
    ("naturalness", ("legan_tf.naturalness",)),
    ("evaluation", ("legan_tf.evaluation",)),
    ("augmentation", ("legan_tf.augmentation",)),
    ("commands", ("legan_tf.benchmark", "legan_tf.cli", "legan_tf.commands")),
)
MAX_MODULE_LINES = 800


def _modules():
    """{module name: file path} of every module of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                found[module.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _resolve(name):
    """The longest prefix of a dotted name that is a module of the package."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module, path):
    """The package's modules that `module` imports."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(_resolve(alias.name) for alias in node.names if alias.name.startswith("legan_tf"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            if base == "legan_tf" or base.startswith("legan_tf."):
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in MODULES else _resolve(base))
    found.discard(module)
    found.discard("")
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def layer_of(module):
    for index, (_, names) in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in names):
            return index
    return None


def test_every_module_has_a_layer():
    unplaced = sorted(module for module in MODULES if module != "legan_tf" and layer_of(module) is None)
    assert not unplaced, f"modules in no layer (add them to LAYERS and docs/architecture.md): {unplaced}"


def test_no_import_runs_up_the_layers():
    upward = []
    for module, imported in sorted(GRAPH.items()):
        if module == "legan_tf":
            continue
        for target in sorted(imported):
            if target != "legan_tf" and layer_of(target) > layer_of(module):
                upward.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                              f"({LAYERS[layer_of(target)][0]})")
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    graph = {module: {target for target in imported if target != "legan_tf"}
             for module, imported in GRAPH.items() if module != "legan_tf"}
    assert not _cycles(graph), f"import cycles: {_cycles(graph)}"


def test_the_checks_can_fail():
    """The cycle finder finds a planted cycle, and the layer order places a module of a higher layer above."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("legan_tf.training.train_lib") > layer_of("legan_tf.tasks.base") > layer_of("legan_tf.losses")


def test_no_module_is_too_long():
    too_long = {}
    for module, path in sorted(MODULES.items()):
        with open(path, encoding="utf-8") as handle:
            lines = sum(1 for _ in handle)
        if lines > MAX_MODULE_LINES:
            too_long[os.path.relpath(path, REPO)] = lines
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {too_long}"


# ---- the studies: outside the product, on its public surface

STUDIES = os.path.join(REPO, "studies")
# The repository's own top-level Python folders: an import of one of them is first-party.
FIRST_PARTY = ("legan_tf", "scripts", "serving", "studies", "tools", "tests")
PRODUCT = ("legan_tf", "scripts", "serving", "tools")


def _python_files(top):
    for folder, _, files in os.walk(os.path.join(REPO, top)):
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def _first_party_imports(path, source=None):
    """(line, module, imported names) of every first-party import of a file (relative ones resolved)."""
    if source is None:
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
    package = os.path.relpath(os.path.dirname(path), REPO).replace(os.sep, ".")
    found = []
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package
                for _ in range(node.level - 1):
                    parent = parent.rpartition(".")[0]
                base = f"{parent}.{base}" if base else parent
            found.append((node.lineno, base, tuple(alias.name for alias in node.names)))
    return [entry for entry in found if entry[1].split(".")[0] in FIRST_PARTY]


def _study_import_faults(path, source=None):
    """What a study's file imports that it may not: anything first-party but the package's public modules and
    names and its own study."""
    study = os.path.relpath(path, STUDIES).split(os.sep)[0]
    faults = []
    for line, module, names in _first_party_imports(path, source):
        parts = module.split(".")
        if parts[0] == "legan_tf":
            private = [part for part in parts + [name for name in names if name != "*"] if part.startswith("_")]
            if private:
                faults.append(f"line {line}: {module} ({', '.join(private)}: not public)")
        elif parts[:2] != ["studies", study]:
            faults.append(f"line {line}: {module} (a study imports legan_tf and its own folder only)")
    return faults


def test_nothing_of_the_product_imports_a_study():
    found, scanned = [], 0
    for top in PRODUCT:
        for path in _python_files(top):
            scanned += 1
            found += [f"{os.path.relpath(path, REPO)}:{line}: {module}"
                      for line, module, _ in _first_party_imports(path) if module.split(".")[0] == "studies"]
    assert scanned > 100  # the scan saw the package and the scripts
    assert not found, "the product imports studies:\n" + "\n".join(found)


def test_a_study_imports_only_the_products_public_modules_and_itself():
    paths = [path for path in _python_files("studies") if os.path.dirname(path) != STUDIES]
    assert len(paths) >= 8  # the scan saw the studies, not an empty folder
    found = [f"{os.path.relpath(path, REPO)}: {fault}" for path in paths for fault in _study_import_faults(path)]
    assert not found, "studies importing what they may not:\n" + "\n".join(found)


def test_the_study_checks_can_fail():
    """Planted imports: a private name, a private module, a script, another study; and a clean file."""
    path = os.path.join(STUDIES, "example", "run.py")
    planted = ("from legan_tf.data.numpy_input import _collate\nimport legan_tf._hidden\n"
               "from scripts import train\nfrom studies.other import thing\n")
    assert [fault.split(":")[0] for fault in _study_import_faults(path, planted)] == [
        "line 1", "line 2", "line 3", "line 4"]
    clean = "import numpy\nfrom legan_tf.data import open_source\nfrom studies.example import model\nfrom . import x\n"
    assert _study_import_faults(path, clean) == []
