"""Streamlit helpers shared by the pages: i18n, session state, the job panel, widget groups.

Dependencies run one way: pages -> studio -> tlcore. Nothing in tlcore imports this.
"""
