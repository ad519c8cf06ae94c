"""Transfer Learning Studio's engine: models, data, strategies, training and jobs.

Everything the app shows is computed here, so it can be tested and scripted without a
browser. This package never imports streamlit; only `tlcore.plots` imports plotly.
"""

__version__ = "0.1.0"
