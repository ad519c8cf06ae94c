"""tools/walks.py's measure on a made-up call path (the modules in the order entered, and what counts as a
climb back), and issue 55's limit on climbs held by the two real walks. (They cross more than issue 55's 8
modules: `python -m tools.walks` prints how many, and the README, below "How a download flows", says why.)"""

from __future__ import annotations

import pytest

from tools.walks import LIMITS, WALKS, Tracer, Walk, layer


def _function(module: str, source: str):
    """A function whose frames say they run in `module`."""
    scope = {"__name__": module}
    exec(source, scope)  # noqa: S102 -- a made-up module's one function
    return scope["f"]


def test_the_layers_are_the_import_contracts():
    assert layer("studio.takehome") > layer("tlcore.takehome.model_files") == layer("tlcore.serve.jobs")
    assert layer("tlcore.serve.jobs") > layer("tlcore.train.recipe") > layer("tlcore.models.catalog")
    assert layer("tlcore.models.catalog") > layer("tlcore.data.datasets") > layer("tlcore.core.events") == layer("tlcore")


def test_a_walk_down_the_layers_has_no_climb_and_a_callback_up_is_one():
    page = _function("studio.fake_page", "def f(down, callback):\n    return down(callback)")
    engine = _function("tlcore.train.fake_engine", "def f(callback):\n    return [g(callback) for g in (core, core)]")
    engine.__globals__["core"] = _function("tlcore.core.fake_core", "def f(callback):\n    return callback()")
    up = _function("studio.fake_page", "def f():\n    return 1")
    walk = Walk("made up")
    with Tracer(walk) as tracer:
        tracer.recording = True
        page(engine, up)
    assert walk.modules == ["studio.fake_page", "tlcore.train.fake_engine", "tlcore.core.fake_core"]
    # core -> page: a lower layer calls a higher one (once, however often it is taken); also back into a
    # module with a frame on the stack
    assert [(a, b) for a, b, _ in walk.climbs] == [("tlcore.core.fake_core", "studio.fake_page")]


def test_calling_back_into_a_module_already_left_within_one_package_is_a_climb():
    first = _function("tlcore.takehome.fake_a", "def f():\n    return b(again)")
    first.__globals__["b"] = _function("tlcore.takehome.fake_b", "def f(g):\n    return g()")
    first.__globals__["again"] = _function("tlcore.takehome.fake_a", "def f():\n    return 2")
    walk = Walk("made up")
    with Tracer(walk) as tracer:
        tracer.recording = True
        first()
    assert [(a, b, why) for a, b, why in walk.climbs] == [
        ("tlcore.takehome.fake_b", "tlcore.takehome.fake_a", "back into a module already left")
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(WALKS))
def test_each_real_walk_climbs_back_at_most_issue_55s_twice(name):
    """A real small run and its downloads, traced (`python -m tools.walks`): the run's two climbs left are
    its two hooks into the queue that runs it, its event stream (emit) and its Stop button (should_stop);
    the layers below the trainer hand values up and never call back into it."""
    walk = WALKS[name]()
    assert walk.modules and walk.modules[0].startswith("studio.")  # traced from the page's side
    assert len(walk.climbs) <= LIMITS["climbs"], walk.summary()
