"""Transfer Learning Studio: the frame around the pages, the script every browser tab runs.

`streamlit run app.py` serves it (app.py adds the server's own HTTP rules). It sets up the page,
draws the sidebar (language, device, online or offline, the job queue; see studio.page_frame)
and runs `st.navigation` over `pages/`. Each page is one lesson and stays thin (widgets in, tlcore calls, charts out).
"""

from __future__ import annotations

import logging

import streamlit as st

from tlcore.serve import cores

cores.wait_briefly()  # before torch is imported: its threads spin briefly, then sleep, while they wait (tlcore.serve.cores)

from studio import page_frame  # noqa: E402 -- after the line above
from studio.feedback import error as show_error  # noqa: E402
from studio.server import page_running  # noqa: E402

page_frame.start()
navigation = st.navigation(page_frame.pages())
page_frame.sidebar(navigation.url_path)
try:
    with page_running():  # a CPU server's training leaves the page a core meanwhile (tlcore.serve.cores)
        navigation.run()
except Exception as error:  # noqa: BLE001 -- a class must never see a raw traceback
    logging.getLogger("tlstudio").exception("page failed")  # the server's log keeps it for whoever fixes it
    show_error(page_frame.error_text(error))
