"""Streamlit helpers shared by the pages; all of it is UI, so no module carries a `_ui` suffix (a
function that draws a widget group and returns the choice does, `backbone_ui()`). By area:

- the server and the learner: server, learner, hosts, asgi, download_hold, upload_slots
- what a learner chose: state, bound_widgets, choices, widgets, text_widgets
- a run on screen: job_panel, time_notes, results, plots, forgetting_panel, takehome,
  frozen_blocks, image_panels, feature_space_panel, text_pretraining
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
