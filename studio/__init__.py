"""Streamlit helpers shared by the pages; all of it is UI, so no module carries a `_ui` suffix (a
function that draws a widget group and returns the choice does, `backbone_ui()`). By area:

- the server and the learner: server, learner, hosts, asgi, download_hold, upload_slots
- what a learner chose: state, bound_widgets, choices, widgets
- a run on screen: job_panel, time_notes, results, plots, forgetting_panel, takehome,
  frozen_blocks, image_panels, feature_space_panel
- the Text page: text (its pickers and its real-text parts)
- the class: teacher, class_panels, class_view
- around every page: page_frame, i18n, feedback

Dependencies run one way: pages -> studio -> tlcore. Nothing in tlcore imports this.
"""

# The heavy libraries are imported here, once per server process, in one order, before any
# page code runs and before the job queue starts its threads. Imported lazily from several
# threads at once (a page building a chart while a worker builds a model or a store reads a
# table), Python's import machinery can hand one thread a half-initialised module: a page of
# a freshly (re)started server failed with "partially initialized module 'pandas' has no
# attribute 'Series'" (plotly asks for pandas while validating a figure). The first page of
# a server needs most of these anyway (page 1 shows the ImageNet model's top 5), so this moves
# their cost (about 4 s on the 2-core CPU) rather than adding it.
import numpy  # noqa: F401
import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import timm  # noqa: F401
import torch  # noqa: F401
import torchvision  # noqa: F401


def preload() -> None:
    """Import every module of the studio now (app.py calls it before the server answers): the
    first page of a fresh server then runs the script alone. Measured on the 2-core box
    (tools.firstpage): the first page of a fresh server spent about 1 s importing (and, after an
    update, compiling) the pages' helpers before it drew anything."""
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(__path__, f"{__name__}."):
        importlib.import_module(module.name)
    _warm_first_page()


def _warm_first_page() -> None:
    """What every first page computes and the process keeps, computed before the server answers:
    the default backbone's layer groups (the freeze-depth slider) and page 1's first-layer filters
    (two models built). About 1.4 s of the first page on the 2-core box (py-spy). Then page 1's
    "Try it" panel (the first sample photo: scikit-image's reader, imported on first use; the ImageNet
    model built and its top 5 for the photo) and the time notes' FLOPs per layer group: about 2.5 s of
    the first page's script (py-spy, session 40); page 1 whole 6.50 -> 5.85 s after the server answers,
    which it does about 1.4 s later (tools.firstpage)."""
    import logging

    from streamlit import delta_generator

    from studio.state import DEFAULTS
    from tlcore.lab.experiments import first_layer_filters
    from tlcore.models import catalog, imagenet
    from tlcore.train import time_estimate

    # Streamlit's first element of a process looks for a REPL through inspect.stack(), which reads
    # source files (0.2 s); under `streamlit run` it never warns, so it is marked as done.
    if hasattr(delta_generator, "_use_warning_has_been_displayed"):
        delta_generator._use_warning_has_been_displayed = True
    try:
        catalog.group_param_counts(DEFAULTS["backbone"])
        first_layer_filters(pretrained=False, backbone=DEFAULTS["backbone"])
        first_layer_filters(pretrained=True, backbone=DEFAULTS["backbone"])
        time_estimate.group_gflops(DEFAULTS["backbone"], DEFAULTS["image_size"])  # pages 1 and 3's time notes
        if catalog.backbone(catalog.offline_default()).pretrained_on == "imagenet":  # as image_panels.try_image_panel
            imagenet.sample_top_ids(catalog.offline_default(), imagenet.SAMPLE_PHOTOS[0].name)
    except Exception:  # noqa: BLE001 -- e.g. the offline weights missing: the page says so when it gets there
        logging.getLogger("tlstudio").info("the first page's models were not built ahead", exc_info=True)
