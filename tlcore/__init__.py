"""Transfer Learning Studio's engine, in packages whose imports run one way (pyproject.toml's
contracts): `core` < `data` < `models` < `train` < `text` < `lab` | `serve` | `takehome` |
`explain` < `cli`. What each holds is in its own docstring and in the README's layout table.

Everything the app shows is computed here, so it can be tested and scripted without a
browser. This package never imports streamlit or plotly (the figures are drawn in `studio.plots`).
"""

__version__ = "0.1.0"
