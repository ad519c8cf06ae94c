"""Transfer Learning Studio's server: run it with `streamlit run app.py`.

Streamlit finds `app` below and serves `frame.py` (the frame around the lesson pages, run once per
browser tab) through it, with two HTTP rules of the studio's own (studio.asgi): the learner
cookie is set by the server, HttpOnly, and `/_stcore/metrics` answers this machine only.
"""

from __future__ import annotations

import streamlit as st
from starlette.middleware import Middleware

from tlcore.serve import cores

cores.wait_briefly()  # before torch is imported (by studio): its threads then sleep while they wait (tlcore.serve.cores)

from studio import preload, server  # noqa: E402 -- after the line above
from studio.asgi import LearnerCookie, MetricsForThisMachine  # noqa: E402

preload()  # every page's modules before the server answers: the first student's page does not wait for them
server.start_first_views()  # pages 1 and 3's first feature views, in the background from now
app = st.App("frame.py", middleware=[Middleware(MetricsForThisMachine), Middleware(LearnerCookie)])
