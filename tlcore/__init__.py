"""Transfer Learning Studio's engine: models, data, strategies, training and jobs.

Everything the app shows is computed here, so it can be tested and scripted without a
browser. This package never imports streamlit or plotly (the figures are drawn in `studio.plots`).
"""

__version__ = "0.1.0"
