"""The student notebooks, their helpers (coursekit.notebook) and widgets (coursekit.widgets).

* helper and widget logic runs here without a browser or a kernel (pure functions, widget wiring);
* every notebook is executed with nbclient against the reference (no cell error, no ❌, no ⏳) and
  against freshly generated stubs (no cell error, the friendly ⏳ lines appear, no traceback);
* a mutant implementation makes the notebook's own checks print ❌ (they can fail).

Notebook 04 trains a convnet: it runs with ``COURSE_QUICK=1`` (one epoch on 1,000 digits), and its
run against the reference is marked slow.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from coursekit import notebook as nb
from coursekit import widgets as W

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SLOW_NOTEBOOKS = {"04_mnist_convnet.ipynb"}  # trains a model


@pytest.fixture(autouse=True)
def _student_package(monkeypatch):
    """Friendly lines name ``exercises/`` unless a test says otherwise."""
    monkeypatch.delenv("COURSE_IMPL", raising=False)


# -- coursekit.notebook ----------------------------------------------------------------------------

def _stub_conv2d(x, w):
    raise NotImplementedError("conv2d: replace this line with your code (conv.conv2d)")


def _stub_calling_pad(x, w):
    raise NotImplementedError("pad2d: replace this line with your code (padding.pad2d)")


_stub_calling_pad.__name__ = "conv2d"
_stub_calling_pad.__module__ = "exercises.conv"
_stub_conv2d.__module__ = "exercises.conv"
_stub_conv2d.__name__ = "conv2d"


def test_impl_package_defaults_to_exercises(monkeypatch):
    monkeypatch.delenv("COURSE_IMPL", raising=False)
    assert nb.impl_package() == "exercises"
    monkeypatch.setenv("COURSE_IMPL", "solutions")
    assert nb.impl_package() == "solutions"
    monkeypatch.setenv("COURSE_IMPL", "../etc")
    with pytest.raises(ValueError, match="COURSE_IMPL"):
        nb.impl_package()


def test_student_imports_the_chosen_package(monkeypatch):
    monkeypatch.setenv("COURSE_IMPL", "solutions")
    assert nb.student("strides").__name__ == "solutions.strides"
    assert nb.student("strides").conv_output_size(28, 3) == 26


def test_call_prints_one_friendly_line_for_a_stub(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_IMPL", raising=False)
    result = nb.call(_stub_conv2d, 1, 2)
    assert isinstance(result, nb.Pending) and not result
    assert capsys.readouterr().out == "⏳ conv2d is not implemented yet — open exercises/conv.py\n"


def test_call_names_the_stub_that_actually_raised(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_IMPL", raising=False)
    nb.call(_stub_calling_pad, 1, 2)
    assert capsys.readouterr().out == "⏳ conv2d needs pad2d, which is not implemented yet — open exercises/padding.py\n"


def test_pending_arguments_propagate_silently(capsys):
    pending = nb.call(_stub_conv2d, 1, 2)
    capsys.readouterr()
    assert nb.call(np.add, pending, 1) is pending
    assert nb.attempt(lambda a, *, k: a + k, 1, k=pending) is pending
    assert capsys.readouterr().out == ""
    assert nb.is_pending([1, (2, pending)]) and nb.ready(1, [2, 3]) and not nb.ready(1, {"a": pending})


def test_real_bugs_keep_their_traceback():
    with pytest.raises(ValueError, match="boom"):
        nb.call(lambda: (_ for _ in ()).throw(ValueError("boom")))


def test_check_reports_match_and_mismatch(capsys):
    assert nb.check("same", np.array([[1.0, 2.0]]), [[1, 2]])
    assert not nb.check("values", np.array([1.0, 2.5]), [1, 2])
    assert not nb.check("shape", np.zeros((2, 3)), np.zeros((3, 2)))
    assert nb.check("mixed", ((8, 1), "float32"), ((8, 1), "float32"))
    assert not nb.check("mixed", ((8, 1), "float64"), ((8, 1), "float32"))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✅ same"
    assert out[1].startswith("❌ values") and any(l.startswith("❌ shape: shape (2, 3), expected (3, 2)") for l in out)
    assert out[-2] == "✅ mixed" and out[-1].startswith("❌ mixed: item 1")
    pending = nb.attempt(_stub_conv2d, 1, 2)
    assert not nb.check("pending", pending, 1) and capsys.readouterr().out == ""


def test_quick_reads_the_environment(monkeypatch):
    monkeypatch.delenv("COURSE_QUICK", raising=False)
    assert not nb.quick()
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert nb.quick()
    monkeypatch.setenv("COURSE_QUICK", "0")
    assert not nb.quick()


# -- widget logic (no browser) ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference_ops():
    from solutions import conv, padding, pooling, strides

    return W.ConvOps(strides.conv_output_size, padding.pad2d, conv.conv2d), W.PoolOps(pooling.maxpool2d, pooling.avgpool2d)


@pytest.fixture(scope="module")
def stub_ops(tmp_path_factory):
    """The functions of freshly generated stubs (imported as package ``stubs_under_test``)."""
    import importlib

    from coursekit.course import load_course
    from grader.stubs import write_stubs

    folder = tmp_path_factory.mktemp("stub-ops")
    write_stubs(load_course(), folder / "stubs_under_test")
    sys.path.insert(0, str(folder))
    try:
        mods = {m: importlib.import_module(f"stubs_under_test.{m}") for m in ("strides", "padding", "conv", "pooling")}
    finally:
        sys.path.remove(str(folder))
    yield (W.ConvOps(mods["strides"].conv_output_size, mods["padding"].pad2d, mods["conv"].conv2d),
           W.PoolOps(mods["pooling"].maxpool2d, mods["pooling"].avgpool2d))
    for key in [k for k in sys.modules if k.startswith("stubs_under_test")]:
        del sys.modules[key]


@pytest.mark.parametrize("n, k, s, p, text", [
    (28, 3, 2, 1, "(28 + 2·1 − 3) // 2 + 1 = 14"),
    (28, 3, 1, 0, "(28 − 3) // 1 + 1 = 26"),
    (6, 3, 2, 0, "(6 − 3) // 2 + 1 = 2"),
])
def test_formula_text_fills_in_the_numbers(n, k, s, p, text):
    assert W.formula_text(n, k, s, p, W.window_positions(n, k, s, p)) == text
    assert W.formula_text(n, k, s, p, None).endswith("= ?")


def test_reveal_hides_cells_after_the_position():
    shown = W.reveal(np.arange(6.0).reshape(2, 3), 3)
    assert shown[0].tolist() == [0, 1, 2] and shown[1, 0] == 3 and np.isnan(shown[1, 1:]).all()


def test_conv_frame_with_the_reference(reference_ops):
    image = np.random.default_rng(1).random((9, 7))
    kernel = W.KERNEL_PRESETS["sharpen"]
    frame = W.conv_frame(image, kernel, stride=2, padding=1, position=5, ops=reference_ops[0])
    assert frame.messages == []
    assert frame.formula == "height: (9 + 2·1 − 3) // 2 + 1 = 5; width: (7 + 2·1 − 3) // 2 + 1 = 4"
    assert frame.out_shape == (5, 4) and frame.output.shape == (5, 4)
    assert frame.cell == (1, 1) and frame.window == (2, 2, 3, 3)
    padded = np.pad(image, 1)
    assert frame.padded.shape == (11, 9) and np.allclose(frame.padded, padded)
    by_hand = (padded[2:5, 2:5] * kernel).sum()  # the window at (2, 2), not flipped
    assert frame.value == pytest.approx(by_hand)
    assert np.isnan(frame.revealed.reshape(-1)[6:]).all() and np.isfinite(frame.revealed.reshape(-1)[:6]).all()


def test_conv_frame_clamps_the_position(reference_ops):
    frame = W.conv_frame(np.ones((5, 5)), np.ones((3, 3)), 1, 0, 99, reference_ops[0])
    assert frame.position == 8 and frame.cell == (2, 2)


def test_conv_frame_with_stubs_shows_the_friendly_lines(stub_ops):
    frame = W.conv_frame(np.ones((6, 6)), np.ones((3, 3)), 1, 1, 0, stub_ops[0])
    assert frame.output is None and frame.formula.endswith("= ?")
    assert any(m.startswith("⏳ conv_output_size is not implemented yet") for m in frame.messages)
    assert any(m.startswith("⏳ pad2d is not implemented yet") for m in frame.messages)
    assert any(m.startswith("⏳ conv2d is not implemented yet") for m in frame.messages)
    assert np.isnan(frame.padded[0]).all() and (frame.padded[1:-1, 1:-1] == 1).all()  # the border left empty


def test_conv_frame_flags_a_wrong_output_size_and_a_student_error(reference_ops):
    ops = reference_ops[0]

    def off_by_one(n, k, stride=1, padding=0):
        return (n + 2 * padding - k) // stride

    def conv2d(*_args, **_kwargs):  # a student's bug
        raise IndexError("index 7 is out of bounds")

    frame = W.conv_frame(np.ones((8, 8)), np.ones((3, 3)), 1, 0, 0, W.ConvOps(off_by_one, ops.pad2d, conv2d))
    assert frame.formula == "(8 − 3) // 1 + 1 = 5"
    assert any("returned 5, but the window fits 6 times" in m for m in frame.messages)
    assert any(m.startswith("❌ conv2d raised IndexError") for m in frame.messages) and frame.output is None


def test_pool_frame(reference_ops, stub_ops):
    image = np.arange(25.0).reshape(5, 5)
    frame = W.pool_frame(image, 2, 2, "max", 3, reference_ops[1])
    assert frame.formula == "(5 − 2) // 2 + 1 = 2" and frame.output.tolist() == [[6, 8], [16, 18]]
    assert frame.cell == (1, 1) and frame.window == (2, 2, 2, 2) and frame.value == 18
    avg = W.pool_frame(image, 3, 1, "average", 0, reference_ops[1])
    assert avg.output.shape == (3, 3) and avg.value == pytest.approx(image[:3, :3].mean())
    pending = W.pool_frame(image, 2, 2, "max", 0, stub_ops[1])
    assert pending.output is None and pending.messages == ["⏳ maxpool2d is not implemented yet — open exercises/pooling.py"]


def test_centre_position_lands_on_contrast():
    image = np.zeros((10, 10))
    image[6:, 6:] = 1.0
    i, j = divmod(W.centre_position(image, 3, 1), 8)
    window = image[i:i + 3, j:j + 3]
    assert 0 < window.mean() < 1


def test_conv_explorer_widget_reacts_to_its_controls(reference_ops):
    explorer = W.ConvExplorer(image="square", kernel="identity", ops=reference_ops[0])
    assert "(12 − 3) // 1 + 1 = 10" in explorer.formula.value and explorer.message.value == ""
    output_before = explorer.output_view.value
    explorer.stride.value = 2
    assert "(12 − 3) // 2 + 1 = 5" in explorer.formula.value
    assert explorer.position.max == 24 and explorer.output_view.value != output_before
    explorer.padding.value = 1
    assert "(12 + 2·1 − 3) // 2 + 1 = 6" in explorer.formula.value and explorer.frame.out_shape == (6, 6)
    before = explorer.output_view.value
    explorer.position.value = 0
    assert explorer.frame.cell == (0, 0) and explorer.output_view.value != before
    # identity kernel: the output is the (padded) input sampled at the window centres
    assert np.allclose(explorer.frame.output, np.pad(W.synthetic_images()["square"], 1)[1:-1:2, 1:-1:2])
    explorer.cells[4].value = 2.0  # editing a value switches to the custom kernel
    assert explorer.kernel.value == W.CUSTOM and explorer.kernel_values()[1, 1] == 2.0
    explorer.kernel.value = "blur (box)"
    assert np.allclose([c.value for c in explorer.cells], np.round(np.full(9, 1 / 9), 4))
    assert "conv-explorer" in explorer.widget._dom_classes and "conv-explorer-formula" in explorer.formula._dom_classes


def test_conv_explorer_serialises_updates_from_several_threads(reference_ops):
    """ipykernel 7 may deliver two slider moves on two threads: the second must wait, not vanish."""
    import threading
    import time

    ops = reference_ops[0]
    started = threading.Event()

    def slow_conv2d(*args, **kwargs):
        started.set()
        time.sleep(0.3)
        return ops.conv2d(*args, **kwargs)

    explorer = W.ConvExplorer(image="square", ops=ops)
    explorer.ops = W.ConvOps(ops.conv_output_size, ops.pad2d, slow_conv2d)
    stride_move = threading.Thread(target=setattr, args=(explorer.stride, "value", 2))
    stride_move.start()
    assert started.wait(10)
    explorer.padding.value = 1  # arrives while the stride redraw is still running
    stride_move.join(10)
    assert "(12 + 2·1 − 3) // 2 + 1 = 6" in explorer.formula.value
    assert explorer.frame.out_shape == (6, 6) and explorer.frame.output.shape == (6, 6)


def test_conv_explorer_widget_shows_stub_messages(stub_ops):
    explorer = W.ConvExplorer(image="cross", ops=stub_ops[0])
    assert "= ?" in explorer.formula.value
    assert "⏳ conv2d is not implemented yet — open exercises/conv.py" in explorer.message.value
    assert bytes(explorer.output_view.value).startswith(b"\x89PNG")


def test_pool_explorer_widget(reference_ops, stub_ops):
    explorer = W.PoolExplorer(image="checkerboard", ops=reference_ops[1])
    assert "(12 − 2) // 2 + 1 = 6" in explorer.formula.value
    explorer.size.value = 3
    assert "(12 − 3) // 2 + 1 = 5" in explorer.formula.value
    explorer.mode.value = "average"
    assert explorer.frame.mode == "average" and "mean value" in explorer.value.value
    stub = W.PoolExplorer(image="square", ops=stub_ops[1])
    assert "maxpool2d is not implemented yet" in stub.message.value


@pytest.fixture(scope="module")
def reference_models():
    import torch

    from solutions import convnet

    torch.manual_seed(0)
    return convnet.build_convnet(), convnet.build_convnet_no_maxpool()


def test_layer_shapes_pooled_vs_not(reference_models):
    pooled, unpooled = (W.layer_shapes(m) for m in reference_models)
    convs = [r for r in pooled if r.name == "Conv2d"]
    assert [r.shape for r in convs] == [(32, 26, 26), (64, 11, 11), (64, 3, 3)]
    assert [r.receptive_field for r in convs] == [3, 8, 18]
    assert [r.receptive_field for r in pooled if r.name in ("Flatten", "Linear")] == [0, 0, 0]  # no map any more
    assert [r.params for r in pooled if r.params] == [320, 18_496, 36_928, 36_928, 650]
    assert pooled[-1].shape == (10,)
    free = [r for r in unpooled if r.name == "Conv2d"]
    assert [r.shape for r in free] == [(32, 26, 26), (64, 24, 24), (64, 22, 22)]
    assert free[-1].values == 30_976 and [r.receptive_field for r in free] == [3, 5, 7]
    assert sum(r.params for r in unpooled) == 55_744
    text = W.comparison_summary(pooled, unpooled)
    assert "22·22·64 = 30,976" in text and "576" in text and "1,982,528" in text and "7×7" in text and "18×18" in text


def test_feature_maps_and_viewer(reference_models):
    model = reference_models[0]
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[5:23, 12:16] = 255
    maps = W.feature_maps(model, digit)
    assert [m.name for m in maps] == ["conv 1", "conv 2", "conv 3"]
    assert [m.maps.shape for m in maps] == [(32, 26, 26), (64, 11, 11), (64, 3, 3)]
    assert all((m.maps >= 0).all() for m in maps)  # after ReLU
    viewer = W.feature_map_viewer(model, np.stack([digit, digit[::-1]]), np.array([1, 1]))
    assert viewer.explorer.layer.options == ("conv 1", "conv 2", "conv 3")
    first = viewer.explorer.maps_view.value
    viewer.explorer.layer.value = "conv 2"
    assert viewer.explorer.maps_view.value != first and "label 1" in viewer.explorer.caption.value


def test_widgets_accept_a_pending_model():
    pending = nb.attempt(_stub_conv2d, 1, 2)
    assert "not implemented yet" in W.feature_map_viewer(pending, np.zeros((1, 28, 28))).value
    assert "not implemented yet" in W.pooling_comparison(pending, pending).value


# -- executing the notebooks -----------------------------------------------------------------------

def _outputs(notebook) -> tuple[str, list[str]]:
    """All text the code cells printed or displayed, and the names of the errors they raised."""
    texts, errors = [], []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                texts.append(out.text)
            elif out.output_type == "error":
                errors.append(f"{out.ename}: {out.evalue}")
            elif "text/plain" in out.get("data", {}):
                texts.append(out["data"]["text/plain"])
    return "\n".join(texts), errors


def _execute(path: Path, env: dict[str, str], workdir: Path):
    """Run every cell in a fresh python3 kernel (``allow_errors``: the caller inspects the outputs).

    The kernel talks over Unix sockets in a short temporary folder: TCP ports can clash on a busy
    machine, and a socket path must stay under ~100 characters.
    """
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    sockets = Path(tempfile.mkdtemp(prefix="nb-"))
    try:
        km = AsyncKernelManager(kernel_name="python3", transport="ipc", connection_file=str(sockets / "kernel.json"))
        client = NotebookClient(notebook, km=km, kernel_name="python3", timeout=600, allow_errors=True,
                                resources={"metadata": {"path": str(workdir)}})
        inline = "module://matplotlib_inline.backend_inline"
        client.execute(env={**os.environ, "COURSE_QUICK": "1", "MPLBACKEND": inline, **env})
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return notebook


def _widget_texts(notebook) -> str:
    """The widget state nbclient stored (the explorers' HTML: formulas, messages)."""
    state = notebook.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    return "\n".join(str(m.get("state", {}).get("value", "")) for m in state.get("state", {}).values())


@pytest.fixture(scope="session")
def stub_package(tmp_path_factory) -> Path:
    """A folder holding a freshly generated ``exercises`` package (the untouched stubs)."""
    from coursekit.course import load_course
    from grader.stubs import write_stubs

    folder = tmp_path_factory.mktemp("fresh-stubs")
    write_stubs(load_course(), folder / "exercises")
    return folder


def _params(slow_names):
    return [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.name in slow_names else []) for p in NOTEBOOKS]


def test_there_is_one_notebook_per_part():
    assert [p.name for p in NOTEBOOKS] == ["01_convolution.ipynb", "02_padding_and_strides.ipynb",
                                           "03_max_pooling.ipynb", "04_mnist_convnet.ipynb"]


@pytest.mark.parametrize("path", _params(SLOW_NOTEBOOKS))
def test_notebook_runs_against_the_reference(path, tmp_path):
    notebook = _execute(path, {"COURSE_IMPL": "solutions"}, tmp_path)
    text, errors = _outputs(notebook)
    assert errors == [], f"{path.name}: cells raised {errors}"
    assert "❌" not in text, f"{path.name}: a self-check failed against the reference:\n{text}"
    assert "⏳" not in text and "✅" in text
    assert "not implemented" not in _widget_texts(notebook)


@pytest.mark.parametrize("path", _params(set()))
def test_notebook_runs_against_the_stubs(path, tmp_path, stub_package):
    env = {"COURSE_IMPL": "exercises", "PYTHONPATH": os.pathsep.join([str(stub_package), os.environ.get("PYTHONPATH", "")])}
    notebook = _execute(path, env, tmp_path)
    text, errors = _outputs(notebook)
    assert errors == [], f"{path.name}: cells raised {errors}"
    assert "Traceback" not in text
    assert "⏳" in text and "is not implemented yet — open exercises/" in text, text
    passed = [line for line in text.splitlines() if line.startswith("✅")]
    assert passed in ([], ["✅ parameters of the chapter's three conv layers"]), passed  # plain arithmetic only


MUTANT_CONV = '''
import numpy as np
from solutions.conv import conv2d  # noqa: F401  (the reference)


def correlate2d(image, kernel):
    """A classic mistake: the kernel is flipped (textbook convolution)."""
    from solutions.conv import correlate2d as reference
    return reference(image, np.asarray(kernel)[::-1, ::-1])
'''


def test_notebook_checks_catch_a_flipped_kernel(tmp_path):
    package = tmp_path / "pkg" / "mutant"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "conv.py").write_text(textwrap.dedent(MUTANT_CONV))
    for module in ("strides", "padding", "pooling"):
        (package / f"{module}.py").write_text(f"from solutions.{module} import *  # noqa: F401,F403\n")
    env = {"COURSE_IMPL": "mutant", "PYTHONPATH": os.pathsep.join([str(tmp_path / "pkg"), os.environ.get("PYTHONPATH", "")])}
    notebook = _execute(ROOT / "notebooks" / "01_convolution.ipynb", env, tmp_path)
    text, errors = _outputs(notebook)
    assert errors == []
    assert "❌ correlate2d finds the edge" in text
    assert "❌ a flipped kernel gives the textbook convolution" in text
